"""Training: the loop (any model, data set and objective), its settings, batches and evaluation."""
from .batches import iterate_batches, world
from .config import TrainConfig, resolve_device
from .loop import TrainResult, evaluate, evaluate_accuracy, train

__all__ = ["TrainConfig", "TrainResult", "evaluate", "evaluate_accuracy", "iterate_batches", "resolve_device",
           "train", "world"]
