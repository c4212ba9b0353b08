"""Contextual decomposition (CD, Murdoch et al. 2018; as used by CDEP, documentation: methods/annotation; the CDEP code).

``decompose(model, x, mask) -> (rel, irrel)`` splits each logit into the part due to the masked
input region and the rest, for any network built from supported layers (traced with torch.fx),
with ``rel + irrel = logits`` at every layer. Extend it with :func:`register_rule` (modules) and
:func:`register_function_rule` (functions / tensor methods in a custom forward).
"""
from .engine import UnsupportedLayerError, decompose, normalize_mask, run_rules, supported_layers, trace
from .rules import EPS, FUNCTION_RULES, RULES, Decomposed, find_rule, register_function_rule, register_rule

__all__ = [
    "Decomposed", "EPS", "FUNCTION_RULES", "RULES", "UnsupportedLayerError", "decompose", "find_rule",
    "normalize_mask", "register_function_rule", "register_rule", "run_rules", "supported_layers", "trace",
]
from .recurrent import decompose_tokens  # noqa: E402  (sequence rules: LSTM, GRU, indexing, pooling)

__all__ += ["decompose_tokens"]
from . import attention  # noqa: E402,F401  (attention rules: MultiheadAttention, Transformer layers, SDPA; A.15)
