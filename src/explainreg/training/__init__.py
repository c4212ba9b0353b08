"""Training: the loop (any model, data set and objective), its settings, batches, checkpoints and evaluation."""
from .batches import iterate_batches, world
from .checkpoint import Checkpoint
from .config import TrainConfig, resolve_device
from .loop import TrainResult, evaluate, evaluate_accuracy, train
from .selection import Selection

__all__ = ["Checkpoint", "Selection", "TrainConfig", "TrainResult", "evaluate", "evaluate_accuracy",
           "iterate_batches", "resolve_device", "train", "world"]
