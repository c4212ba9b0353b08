"""Finding a layer of a model: by dotted name, as a module, or by default the convolution of a kind
whose output reaches the model's output (the default Grad-CAM layer of the evaluation attributions and
of the XIL penalties).

The default is read from the autograd graph of one forward pass of a sample: among the convolutions
whose output reaches the model's output without passing through another convolution, the deepest
(the longest chain of convolutions from the input). In a residual block whose shortcut is a 1×1
convolution, that is the main path's last convolution (one more convolution deep than the shortcut),
wherever the shortcut is registered or run; two such convolutions equally deep (parallel branches
feeding one sum or concatenation) are refused, naming them, as are models without one.
"""
from __future__ import annotations

import weakref
from typing import Any, Iterator

import torch
from torch import nn

#: model → {(kind, sample shape, the candidates' ids): chosen name}: the graph is read once per model
_CHOSEN: "weakref.WeakKeyDictionary[nn.Module, dict]" = weakref.WeakKeyDictionary()


def find_layer(model: nn.Module, layer: str | nn.Module | None = None, kind: type = nn.Conv2d,
               who: str = "Grad-CAM", sample: torch.Tensor | None = None) -> nn.Module:
    """The module named ``layer`` in ``model.named_modules()`` (e.g. ``"layer4.1.conv2"``), ``layer``
    itself when it is a module, or by default the module of type ``kind`` whose output reaches the
    model's output, found from one forward pass of ``sample`` (a batch of the model's inputs; one row
    is used) as the module doc says. A model with one such module needs no ``sample``.

    Example::

        >>> net = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Conv2d(4, 4, 3))
        >>> find_layer(net, sample=torch.rand(1, 1, 8, 8)) is net[2], find_layer(net, "0") is net[0]
        (True, True)
    """
    if isinstance(layer, nn.Module):
        return layer
    modules = dict(model.named_modules())
    names = ", ".join(n for n in modules if n) or "none"
    if layer is not None:
        if layer not in modules:
            raise ValueError(f"layer must name a module of the model, one of {names}; got {layer!r}")
        return modules[layer]
    found = {n: m for n, m in modules.items() if isinstance(m, kind)}
    if not found:
        raise ValueError(f"{who} needs a convolutional layer and the model has no nn.{kind.__name__}: pass "
                         f"layer='<name>', one of {names}")
    if len(found) == 1:
        return next(iter(found.values()))
    if sample is None:
        raise ValueError(f"{who}: the model has {len(found)} nn.{kind.__name__} layers ({', '.join(found)}); pass "
                         "layer='<name>' or a sample input to choose the one whose output reaches the model's output")
    key = (kind, tuple(sample.shape[1:]), tuple(id(m) for m in found.values()))
    cache = _CHOSEN.setdefault(model, {})
    if key not in cache:
        cache[key] = _output_layer(model, found, sample, who)
    return found[cache[key]]


def _output_layer(model: nn.Module, found: dict[str, nn.Module], sample: torch.Tensor, who: str) -> str:
    """The name of the convolution of ``found`` whose output reaches the model's output (module doc)."""
    nodes, outputs = _trace(model, found, sample)
    depth = _conv_depths(outputs, nodes)
    last: dict[str, int] = {}  # name → depth of the convs reaching the output (a module run twice: the deeper)
    for node in _nearest_convs(outputs, nodes):
        last[nodes[node]] = max(last.get(nodes[node], 0), depth[node])
    listed = ", ".join(found)
    if not last:
        raise ValueError(f"{who}: no convolution's output reaches the model's output in a forward pass; pass "
                         f"layer='<name>', one of {listed}")
    deepest = max(last.values())
    chosen = sorted(n for n, d in last.items() if d == deepest)
    if len(chosen) > 1:
        raise ValueError(f"{who}: the default layer is ambiguous: {', '.join(chosen)} are equally deep and each "
                         f"feeds the model's output; pass layer='<name>', one of {listed}")
    return chosen[0]


def _trace(model: nn.Module, found: dict[str, nn.Module], sample: torch.Tensor) -> tuple[dict, list]:
    """One eval-mode forward of ``sample[:1]`` with grad: {autograd node of a conv's output: its name}
    and the output tensors' nodes. The model's train/eval flags are restored after."""
    nodes: dict[Any, str] = {}
    handles = [m.register_forward_hook(lambda mod, i, o, name=n: _record(nodes, o, name))
               for n, m in found.items()]
    flags = [(m, m.training) for m in model.modules()]
    try:
        model.eval()
        with torch.inference_mode(False), torch.enable_grad():
            x = sample[:1].detach().clone()
            out = model(x.requires_grad_(True) if x.is_floating_point() else x)
    finally:
        for h in handles:
            h.remove()
        for m, flag in flags:
            m.training = flag
    return nodes, [t.grad_fn for t in _tensors(out) if t.grad_fn is not None]


def _record(nodes: dict, output: Any, name: str) -> None:
    if isinstance(output, torch.Tensor) and output.grad_fn is not None:
        nodes[output.grad_fn] = name


def _tensors(out: Any) -> Iterator[torch.Tensor]:
    if isinstance(out, torch.Tensor):
        yield out
    elif isinstance(out, (tuple, list)):
        for o in out:
            yield from _tensors(o)
    elif isinstance(out, dict):
        for o in out.values():
            yield from _tensors(o)


def _parents(node: Any) -> Iterator[Any]:
    for parent, _ in getattr(node, "next_functions", ()):
        if parent is not None:
            yield parent


def _nearest_convs(outputs: list, nodes: dict) -> set:
    """The conv nodes reached from the outputs without passing through another conv node."""
    seen, stack, hit = set(outputs), list(outputs), set()
    while stack:
        node = stack.pop()
        if node in nodes:
            hit.add(node)
            continue
        for parent in _parents(node):
            if parent not in seen:
                seen.add(parent)
                stack.append(parent)
    return hit


def _conv_depths(outputs: list, nodes: dict) -> dict:
    """{conv node: the most conv nodes on a path from the input to it, itself included}."""
    below: dict[Any, int] = {}  # node → the most conv nodes on a path from the input to it
    stack = [(n, False) for n in outputs]
    while stack:
        node, expanded = stack.pop()
        if node in below:
            continue
        parents = list(_parents(node))
        if not expanded:
            stack.append((node, True))
            stack.extend((p, False) for p in parents if p not in below)
            continue
        below[node] = max((below.get(p, 0) for p in parents), default=0) + (node in nodes)
    return {n: below[n] for n in nodes if n in below}


__all__ = ["find_layer"]
