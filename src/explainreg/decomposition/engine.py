"""The contextual-decomposition engine: trace any network with torch.fx and run the CD rules.

``decompose(model, x, mask)`` splits every logit into ``rel`` (due to the masked region) and
``irrel`` (everything else, biases included) with ``rel + irrel = model(x)`` (documentation: methods/annotation, methods/decomposition,
B.2 §2.1). Both parts are propagated by every rule (two streams), and the bias of a unit that
receives neither part (both exactly 0: a zero background, zero padding, a unit cut off by ReLUs) is
split by the relevant share of the sample's input (:func:`~explainreg.decomposition.rules.split_bias`),
so an all-ones mask leaves irrel = 0 and an all-zeros mask rel = 0 at any depth, up to rounding.
Several blobs are decomposed in one pass by stacking them into the batch dimension.
"""
from __future__ import annotations

import weakref
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import fx, nn
from torch.nn.utils import rnn as rnn_utils

from .._validation import check_batch
from ..inputs import normalize_mask  # the one mask parser (re-exported here)
from ..modes import unwrap_parallel  # re-exported: decompose takes wrapped models
from .rules import (FUNCTION_RULES, RULES, UNSUPPORTED, Decomposed, UnsupportedLayerError, affine_batch_norm,
                    dead_unit_share, find_rule, input_share, max_pool, max_pool_function, relevant_first, seed_arithmetic)
from .sparse import SparsePass, relevant_share, sparse_start

#: how :func:`decompose` splits token ids (an integer batch B×T): the function :mod:`.recurrent` registers
_TOKEN_IDS: Callable[..., tuple[torch.Tensor, torch.Tensor]] | None = None


def register_token_decomposer(fn: Callable[..., tuple[torch.Tensor, torch.Tensor]]) -> Callable:
    """Make ``fn(model, ids, token_mask)`` the decomposition :func:`decompose` runs on token ids (an integer
    batch); :mod:`explainreg.decomposition.recurrent` registers :func:`~explainreg.decomposition.decompose_tokens`
    when it loads. Returns ``fn``.

    Example::

        >>> from explainreg.decomposition import decompose_tokens
        >>> from explainreg.decomposition.engine import register_token_decomposer
        >>> register_token_decomposer(decompose_tokens) is decompose_tokens
        True
    """
    global _TOKEN_IDS
    if not callable(fn):
        raise TypeError(f"a token decomposer must be callable as fn(model, ids, token_mask), got {fn!r}")
    _TOKEN_IDS = fn
    return fn


#: the orders in which CD may visit a ReLU directly followed by a max-pool
ORDERS = ("forward", "seed")
_RELU_TARGETS = (F.relu, torch.relu, "relu")
_POOL_TARGETS = (F.max_pool1d, F.max_pool2d, F.max_pool3d)


#: calls that build or read a PackedSequence: recorded whole (not traced into), and refused on a decomposition
_PACKING = (rnn_utils.pack_padded_sequence, rnn_utils.pack_sequence, rnn_utils.pad_packed_sequence)


class _LeafTracer(fx.Tracer):
    """torch.nn modules and every module type with a registered rule stay whole (one node); the
    PackedSequence functions are recorded as calls, so that a forward that packs is refused by name."""

    def __init__(self) -> None:
        super().__init__(autowrap_functions=_PACKING)
        if isinstance(getattr(self, "_autowrap_search", None), list):
            self._autowrap_search.append(rnn_utils)  # also nn.utils.rnn.pack_padded_sequence(...)

    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
        return find_rule(type(m)) is not None or super().is_leaf_module(m, qualname)


#: model -> {trace key: graph}; a few keys per model (CDEP in training mode, evaluation in eval mode)
_GRAPHS: "weakref.WeakKeyDictionary[nn.Module, dict[tuple, fx.Graph]]" = weakref.WeakKeyDictionary()
_GRAPHS_PER_MODEL = 8
_PLAIN = (bool, int, float, str, type(None))


def _plain(value: Any) -> bool:
    return isinstance(value, _PLAIN) or (isinstance(value, tuple) and all(isinstance(v, _PLAIN) for v in value))


def _settings(m: nn.Module) -> tuple:
    """The module's public plain attributes (flags, sizes, rates): a traced forward bakes in their values."""
    return tuple(sorted((k, v) for k, v in vars(m).items() if not k.startswith("_") and _plain(v)))


def trace_key(model: nn.Module) -> tuple:
    """Everything a symbolic trace of ``model.forward`` specialises on.

    torch.fx runs the Python of every module it traces through (the root and every non-leaf
    module) with the input as a symbolic proxy: a branch on ``self.training``, a
    ``F.dropout(..., training=self.training)`` or a plain attribute (``self.scale = 0.5``) is
    recorded with the value it had, while the input's shape, dtype and device stay symbolic (a branch
    on them cannot be traced and is refused). The key therefore holds, per module, its name, its type
    and whether it is a leaf (which depends on the rule registry), and for each traced-through module
    its ``training`` flag and plain attributes. Leaf modules read their mode when the rules run.

    Args:
        model: the network.

    Returns:
        A hashable tuple; two calls with equal keys share one graph.

    Example::

        >>> from torch import nn
        >>> net = nn.Sequential(nn.Linear(2, 2), nn.Dropout())
        >>> trace_key(net.train()) == trace_key(net.eval())     # Sequential's mode is baked in
        False
    """
    tracer = _LeafTracer()
    leaf_types: dict[type, bool] = {}  # whether a module is a leaf depends on its type only
    key = []
    for name, m in model.named_modules():
        if type(m) not in leaf_types:
            leaf_types[type(m)] = tracer.is_leaf_module(m, name)
        if name and leaf_types[type(m)]:
            key.append((name, type(m), True))
        else:
            key.append((name, type(m), False, m.training, _settings(m)))
    return tuple(key)


def trace(model: nn.Module) -> fx.Graph:
    """The fx graph of ``model.forward``, cached per model and :func:`trace_key` (the model's mode,
    structure, plain settings and the rule registry's leaves): a model decomposed in training mode
    and then in eval mode is traced once in each mode."""
    key = trace_key(model)
    cached = _GRAPHS.setdefault(model, {})
    graph = cached.get(key)
    if graph is not None:
        return graph
    try:
        graph = _LeafTracer().trace(model)
    except Exception as exc:  # fx raises many kinds of errors on untraceable code
        raise UnsupportedLayerError(
            f"contextual decomposition could not trace {type(model).__name__}.forward with torch.fx ({exc}). "
            "Write the forward without data-dependent control flow, or register a rule for the module "
            "that contains it: explainreg.decomposition.register_rule(ModuleType, rule)") from exc
    if len(cached) >= _GRAPHS_PER_MODEL:
        cached.pop(next(iter(cached)))
    cached[key] = graph
    return graph


def _fetch_attr(model: nn.Module, target: str) -> Any:
    obj: Any = model
    for part in target.split("."):
        obj = getattr(obj, part)
    return obj


def _has_decomposed(value: Any) -> bool:
    if isinstance(value, Decomposed):
        return True
    if isinstance(value, (list, tuple)):
        return any(_has_decomposed(v) for v in value)
    if isinstance(value, dict):
        return any(_has_decomposed(v) for v in value.values())
    return False


def _name(target: Any) -> str:
    if isinstance(target, str):
        return f"Tensor.{target}"
    module = getattr(target, "__module__", None) or ""
    return f"{module}.{getattr(target, '__name__', repr(target))}".lstrip(".")


def supported_layers() -> list[str]:
    """The module types :func:`decompose` has a rule for, read from the rule registry: a registered
    base class (``_BatchNorm``) is listed as the ``torch.nn`` classes that use its rule
    (``BatchNorm1d``, …); types whose registered rule is a refusal (:data:`~.rules.UNSUPPORTED`) are left out.

    Returns:
        Sorted class names (a rule registered with :func:`register_rule` appears under its class's name).

    Example::

        >>> names = supported_layers()
        >>> "Conv2d" in names, "BatchNorm2d" in names, "RNN" in names
        (True, True, False)
    """
    names = set()
    for cls, rule in RULES.items():
        if cls in UNSUPPORTED:
            continue
        if not cls.__name__.startswith("_"):
            names.add(cls.__name__)
            continue
        names.update(c.__name__ for c in vars(nn).values()
                     if isinstance(c, type) and issubclass(c, cls) and not c.__name__.startswith(("_", "Lazy"))
                     and c not in UNSUPPORTED and find_rule(c) is rule)
    return sorted(names)


def _refuse_call(model: nn.Module, node: fx.Node) -> None:
    if node.target in _PACKING:
        raise UnsupportedLayerError(
            f"contextual decomposition cannot follow a PackedSequence ({_name(node.target)} in "
            f"{type(model).__name__}.forward): the LSTM/GRU rules run on a padded B×T×… tensor. Run the "
            "recurrent layer on the padded batch (batch_first=True) and read each sequence's last real step "
            "with out[torch.arange(B), lengths - 1]; decompose_tokens(model, ids, mask, lengths=lengths) keeps "
            "the padding out of rel (a bidirectional layer's backward direction then starts on the padding)")


def _refuse_module(model: nn.Module, node: fx.Node, module: nn.Module, args: tuple, kwargs: dict) -> None:
    name = type(module).__name__
    if isinstance(module, nn.RNNBase) and (len(args) > 1 or kwargs):
        raise UnsupportedLayerError(
            f"contextual decomposition of {name} '{node.target}' (in {type(model).__name__}.forward) starts from "
            f"a zero initial state, but the forward passes it an initial state (h0 / hx: a learned or given "
            f"state has no CD rule, it is neither the masked input nor the rest). Call the {name} without one "
            "(a zero state), or register a rule for the module that holds it: "
            "explainreg.decomposition.register_rule(ModuleType, rule)")
    if len(args) != 1 or kwargs or not isinstance(args[0], Decomposed):
        raise UnsupportedLayerError(f"module '{node.target}' ({name}) must be called on one decomposed tensor, "
                                    f"got {len(args)} positional and {len(kwargs)} keyword arguments")


def _is_relu(model: nn.Module, node: fx.Node) -> bool:
    if node.op == "call_module":
        return type(model.get_submodule(node.target)) is nn.ReLU
    return node.op in ("call_function", "call_method") and node.target in _RELU_TARGETS


def _is_max_pool(model: nn.Module, node: fx.Node) -> bool:
    if node.op == "call_module":
        return isinstance(model.get_submodule(node.target), nn.modules.pooling._MaxPoolNd)
    return node.op == "call_function" and node.target in _POOL_TARGETS


def _affine_bn_pairs(model: nn.Module, graph: fx.Graph) -> dict[fx.Node, fx.Node]:
    """BatchNorm node -> the Linear/Conv node whose output is its only input (and has no other use)."""
    pairs = {}
    for n in graph.nodes:
        if n.op != "call_module" or len(n.users) != 1:
            continue
        user = next(iter(n.users))
        layer = model.get_submodule(n.target)
        if type(layer) not in (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d) or user.op != "call_module":
            continue
        bn = model.get_submodule(user.target)
        if type(bn) in (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d) and user.args == (n,) and not user.kwargs:
            pairs[user] = n
    return pairs


def _seed_swaps(model: nn.Module, graph: fx.Graph) -> set[fx.Node]:
    """The ReLU nodes whose only user is a max-pool: the seed decomposes those as pool → ReLU."""
    return {n for n in graph.nodes if _is_relu(model, n) and len(n.users) == 1
            and _is_max_pool(model, next(iter(n.users)))}


def _seed_pool_call(model: nn.Module, node: fx.Node, args: tuple, kwargs: dict):
    """``t -> (pooled, indices)`` for a max-pool node (module or functional call)."""
    if node.op == "call_module":
        m = model.get_submodule(node.target)
        fn = max_pool_function(m)
        return lambda t: fn(t, m.kernel_size, m.stride, m.padding, m.dilation, ceil_mode=m.ceil_mode,
                            return_indices=True)
    options = {k: v for k, v in kwargs.items() if k != "return_indices"}
    return lambda t: node.target(t, *args[1:], return_indices=True, **options)


def run_rules(model: nn.Module, start: Any, *, record: dict[str, Decomposed] | None = None,
              order: str = "forward", step: Callable[[fx.Node, dict], bool] | None = None) -> Decomposed:
    """Propagate a decomposition of the input through ``model``'s traced forward pass.

    ``order="seed"`` visits every ReLU that feeds a max-pool after the pool, as CDEP's
    ``cd(..., model_type="mnist")`` does (conv → pool → ReLU; documentation: methods/decomposition): the forward values
    are the same, the decomposition is not (the pool's indices then come from the pre-ReLU values).
    It also computes as the seed's code does (:func:`~.rules.seed_arithmetic`): each max-pool reads
    both parts at the argmax of ``rel + irrel``, and Linear/Conv layers round as the seed's
    ``propagate_conv_linear``, so that exact ties in a window go where the seed's rounding sends them.
    ``step(node, env)``, when given, sees every node first and returns True where it has set
    ``env[node]`` itself (the receptive-field sparse pass, :class:`~.sparse.SparsePass`).
    """
    if order not in ORDERS:
        raise ValueError(f"order must be one of {ORDERS}, got {order!r}")
    with seed_arithmetic(order == "seed"):
        return _propagate(model, start, record, order, step)


def _propagate(model: nn.Module, start: Any, record: dict[str, Decomposed] | None, order: str,
               step: Callable[[fx.Node, dict], bool] | None) -> Decomposed:
    model = unwrap_parallel(model)
    graph = trace(model)
    swapped = _seed_swaps(model, graph) if order == "seed" else set()
    fused = _affine_bn_pairs(model, graph)
    folded = set(fused.values())
    deferred: set[fx.Node] = set()
    env: dict[fx.Node, Any] = {}
    placeholders = 0
    for node in graph.nodes:
        if node in swapped and isinstance(env.get(node.args[0]), Decomposed):
            env[node] = env[node.args[0]]  # the ReLU runs after the pool that uses it
            deferred.add(next(iter(node.users)))
            continue
        if node.op == "placeholder":
            if placeholders == 0:
                env[node] = start
            elif node.args:
                env[node] = node.args[0]
            else:
                raise UnsupportedLayerError(f"contextual decomposition feeds only the first input of "
                                            f"{type(model).__name__}.forward; '{node.target}' has no default")
            placeholders += 1
            continue
        if step is not None and step(node, env):
            continue
        if node.op == "output":
            out = fx.node.map_arg(node.args[0], lambda n: env[n])
            if not isinstance(out, Decomposed):
                raise UnsupportedLayerError(f"{type(model).__name__} must return one logits tensor to be decomposed, "
                                            f"got {type(out).__name__}")
            return out
        if node.op == "get_attr":
            env[node] = _fetch_attr(model, node.target)
            continue
        args = fx.node.map_arg(node.args, lambda n: env[n])
        kwargs = fx.node.map_arg(node.kwargs, lambda n: env[n])
        if node in deferred:  # the seed's pool → ReLU, with the seed's pooling indices
            env[node] = relevant_first(max_pool(args[0], _seed_pool_call(model, node, args, kwargs), pick="sum"),
                                       F.relu)
            if record is not None:
                record[node.target if node.op == "call_module" else node.name] = env[node]
            continue
        if node.op == "call_module":
            module = model.get_submodule(node.target)
            if not _has_decomposed(args) and not _has_decomposed(kwargs):
                env[node] = module(*args, **kwargs)
                continue
            if node in folded and isinstance(args[0], Decomposed) and record is None:
                env[node] = args[0]  # decomposed together with the BatchNorm that follows
                continue
            if node in fused and fused[node] in folded and isinstance(env[fused[node]], Decomposed):
                layer_node = fused[node]
                env[node] = affine_batch_norm(model.get_submodule(layer_node.target), module, env[layer_node.args[0]])
                if record is not None:
                    record[node.target] = env[node]
                continue
            rule = find_rule(type(module))
            if rule is None:
                why = next((why for cls, why in UNSUPPORTED.items() if isinstance(module, cls)), None)
                raise UnsupportedLayerError(
                    f"contextual decomposition has no rule for {type(module).__name__} (module '{node.target}' of "
                    f"{type(model).__name__}){': ' + why if why else ''}. Supported layers: "
                    f"{', '.join(supported_layers())}. Add one with "
                    f"explainreg.decomposition.register_rule({type(module).__name__}, rule), where "
                    "rule(module, d: Decomposed) -> Decomposed(rel, irrel, total)")
            if getattr(rule, "takes_call", False):  # attention: query, key, value and masks (rules.call_rule)
                env[node] = rule(module, *args, **kwargs)
            else:
                _refuse_module(model, node, module, args, kwargs)
                env[node] = rule(module, args[0])
        elif node.op in ("call_function", "call_method"):
            if not _has_decomposed(args) and not _has_decomposed(kwargs):
                if node.op == "call_function":
                    env[node] = node.target(*args, **kwargs)
                else:
                    env[node] = getattr(args[0], node.target)(*args[1:], **kwargs)
                continue
            _refuse_call(model, node)
            rule = FUNCTION_RULES.get(node.target)
            if rule is None:
                raise UnsupportedLayerError(
                    f"contextual decomposition has no rule for the call {_name(node.target)} (node '{node.name}' "
                    f"in {type(model).__name__}.forward). Use a supported module (e.g. nn.ReLU) or add one with "
                    f"explainreg.decomposition.register_function_rule({_name(node.target)}, rule)")
            env[node] = rule(*args, **kwargs)
        else:  # pragma: no cover - fx has no other node kinds
            raise UnsupportedLayerError(f"unexpected fx node {node.op}")
        if record is not None and isinstance(env[node], Decomposed):
            record[node.target if node.op == "call_module" else node.name] = env[node]
    raise UnsupportedLayerError(f"{type(model).__name__}.forward has no output")  # pragma: no cover


def decompose(model: nn.Module, x: torch.Tensor, mask: Any, *, blobs: bool = False,
              return_layers: bool = False, order: str = "forward", sparse: bool = False):
    """Contextual decomposition of the logits of ``model`` at ``x`` for the region ``mask``.

    At the input ``rel = m ⊙ x`` and ``irrel = (1 − m) ⊙ x``; the per-layer rules (B.2 §2.1, see
    :mod:`explainreg.decomposition.rules`) carry the split to the logits, with
    ``rel + irrel = model(x)`` at every layer. Returns ``(rel, irrel)``, each B×K, or B×N×K
    for ``blobs=True`` / a list of masks (N blobs decomposed in one pass, stacked into the batch).

    ``mask``: one for the batch (H×W), or per image (B×H×W, B×1×H×W, B×C×H×W); with
    ``blobs=True``: N×H×W (shared) or B×N×H×W / B×N×C×H×W (per image). Values in [0, 1].
    The pass is differentiable w.r.t. the model's parameters (and x). Modules are used in their
    current mode (the seed put the model in eval mode for good). ``return_layers=True`` also
    returns ``{name: (rel, irrel)}`` for every decomposed intermediate activation (modules by their
    qualified name, e.g. ``"0"`` or ``"features.conv1"``; functions by their fx node name).
    ``order="seed"`` decomposes a ReLU that feeds a max-pool after the pool, as CDEP's code does
    (see :func:`run_rules`), and gives the bias of a unit whose two parts are both 0 to irrel (CDEP's
    code drops it); the default follows the model's forward order and splits that bias by the
    relevant share of the sample's input (see :func:`~explainreg.decomposition.rules.split_bias`).

    ``sparse=True`` propagates blobs that cover a small part of an image (B×C×H×W) only over their
    receptive field until a layer that mixes the whole map (:mod:`explainreg.decomposition.sparse`;
    the CDEP penalty does): equal to the dense pass in exact arithmetic (float64: to 1e-12), values and
    gradients; in float32 its other summation order moves rel within the rounding band of the dense
    rules on deep stacks (documentation: methods/decomposition), so the default stays dense.

    Args:
        model: maps x to logits B×K (traceable by torch.fx, every layer with a rule).
        x: B×C×S floats or B×F features (B×T token ids: :func:`decompose_tokens`).
        mask: any form of :func:`explainreg.inputs.normalize_mask` (the package's one mask parser),
            or a list of masks (blobs). blobs: read a tensor mask as N blobs.
        return_layers: also return every decomposed intermediate. order: ``"forward"`` or ``"seed"``.
        sparse: use the receptive-field sparse pass where it applies (``order="forward"``, no
            ``return_layers``, blobs covering less than half of the image).

    Shape:
        rel, irrel B×K (B×N×K for blobs).

    Returns:
        ``(rel, irrel)``, or ``(rel, irrel, layers)`` with ``return_layers``.

    Example::

        >>> net = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
        >>> x = torch.randn(5, 4)
        >>> rel, irrel = decompose(net, x, torch.tensor([1.0, 1.0, 0.0, 0.0]))
        >>> bool(torch.allclose(rel + irrel, net(x), atol=1e-6))
        True
    """
    model = unwrap_parallel(model)  # a user's nn.DataParallel / DDP wrapper: the network inside
    if isinstance(x, torch.Tensor) and not x.is_floating_point() and not x.is_complex() and x.dtype != torch.bool:
        if _TOKEN_IDS is None:
            raise UnsupportedLayerError("no decomposition of token ids is registered: import "
                                        "explainreg.decomposition (its recurrent module registers decompose_tokens)")
        return _TOKEN_IDS(model, x, mask)  # token ids B×T, mask B×T over tokens (documentation: methods/decomposition)
    check_batch(x)
    is_stack = blobs or isinstance(mask, (list, tuple))
    m = normalize_mask(mask, x, blobs=blobs)
    if not bool((m != 0).any()):
        raise ValueError("mask selects no input element (all zeros): there is no relevant region to decompose")
    n = m.shape[0]
    out = _decompose_sparse(model, x, m) if sparse and order == "forward" and not return_layers else None
    if out is not None:
        return _blob_major(out, n, x.shape[0], is_stack)
    rows = (n * x.shape[0], *x.shape[1:])
    rel0 = (m * x.unsqueeze(0)).reshape(rows)
    irrel0 = ((1 - m) * x.unsqueeze(0)).reshape(rows)
    record: dict[str, Decomposed] | None = {} if return_layers else None
    mask_mean = m.expand(n, *x.shape).reshape(rows).flatten(1).mean(1)  # for an input that is 0 everywhere
    share = None if order == "seed" else input_share(rel0, irrel0, mask_mean)
    with dead_unit_share(share):
        out = run_rules(model, Decomposed(rel0, irrel0, x), record=record, order=order)
    rel, irrel = _blob_major(out, n, x.shape[0], is_stack)
    if return_layers:
        layers = {name: (d.rel, d.irrel) for name, d in record.items()}
        return rel, irrel, layers
    return rel, irrel


def _blob_major(out: Decomposed, n: int, b: int, is_stack: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """The logits' parts, B×K (B×N×K for blobs)."""
    rel, irrel = out.rel, out.irrel
    if rel.dim() != 2:
        raise ValueError(f"the model must return logits of shape B×K, got {tuple(out.total.shape)}")
    if is_stack:
        rel = rel.view(n, b, -1).transpose(0, 1)
        irrel = irrel.view(n, b, -1).transpose(0, 1)
    return rel, irrel


def _decompose_sparse(model: nn.Module, x: torch.Tensor, m: torch.Tensor) -> Decomposed | None:
    """The receptive-field sparse pass (:mod:`.sparse`) for images and blobs that cover a small part
    of them; None where it does not apply (the dense pass runs)."""
    if x.dim() != 4:
        return None
    start = sparse_start(x, m)
    if start is None:
        return None
    share = relevant_share(x, m)
    step = SparsePass(model, share, _affine_bn_pairs(model, trace(model)))
    with dead_unit_share(share):
        return run_rules(model, start, step=step)


__all__ = ["ORDERS", "Decomposed", "UnsupportedLayerError", "decompose", "normalize_mask", "register_token_decomposer",
           "run_rules", "trace",
           "supported_layers", "trace_key", "unwrap_parallel"]
