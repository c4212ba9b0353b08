"""Explanation penalties: a pure function for each (``explainreg.penalties.functional``) and a small
class holding its settings, called as ``penalty(model, x, y, **extras)`` -> raw scalar R."""
from . import functional
from .base import PENALTIES, Penalty, PenaltyContext, build_penalty
from .gradient import Consistency, Fidelity, GradientL1, Locality, Smoothness, Symmetry
from .annotation import CDEP, RRR, ExpectedGradients

__all__ = [
    "PENALTIES", "Penalty", "PenaltyContext", "build_penalty", "functional",
    "GradientL1", "Smoothness", "Locality", "Fidelity", "Consistency", "Symmetry",
    "CDEP", "RRR", "ExpectedGradients",
]
from .saliency_guided import SaliencyGuided, kl_divergence, saliency_guided_mask  # noqa: E402

__all__ += ["SaliencyGuided", "saliency_guided_mask", "kl_divergence"]
from .xil import HINT, RBR, RRRGradCAM  # noqa: E402

__all__ += ["RRRGradCAM", "HINT", "RBR"]
