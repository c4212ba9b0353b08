"""explainreg: train neural networks with constrained explanations and measure their faithfulness."""
from . import data, models, penalties, runs, training, transforms
from .objective import Objective, ObjectiveOutput
from .saliency import minmax_normalize, saliency

__version__ = "0.1.0"

__all__ = ["Objective", "ObjectiveOutput", "data", "minmax_normalize", "models", "penalties", "saliency",
           "transforms", "__version__"]
