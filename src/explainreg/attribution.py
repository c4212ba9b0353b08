"""Attributions for evaluation, through Captum, batched on the model's device (methods.md A.5).

``attribute(model, x, target, method)`` returns a detached tensor of the shape of ``x``. The target
is the class explained for each sample: pass the true labels ``y`` (the seed's convention); ``None``
explains the model's own prediction. Methods:

- ``saliency``: |∂z_t/∂x| (Captum ``Saliency``, ``abs=True`` as the seed; ``abs=False`` for signed).
- ``integrated_gradients``: (x − x′) ⊙ ∫₀¹ ∂z_t(x′ + α(x − x′))/∂x dα, baseline x′ = 0, ``n_steps`` = 50.
- ``smoothgrad``: mean over ``nt_samples`` of |∂z_t/∂x| at x + ``stdevs``·ε, ε ~ N(0, 1) (default 0.15, 10 samples).
- ``deeplift``: DeepLift (rescale rule), baseline 0.
- ``gradient_shap``: mean over ``n_samples`` (5) of (x̃ − x′) ⊙ ∂z_t/∂x at x′ + α(x̃ − x′), with
  x̃ = x + ``stdevs``·ε (ε ~ N(0, 1), ``stdevs`` = 0.09), α ~ U(0, 1) and x′ drawn uniformly from
  ``baselines`` (M×... or one baseline; default 0), as Captum's ``GradientShap``, in one batched backward.
- ``input_x_gradient``: x ⊙ ∂z_t/∂x.
- ``occlusion``: z_t(x) − z_t(x with a sliding window set to 0), windows ``window``×``window``.
- ``gradcam``: ReLU-free Grad-CAM on a named layer (default: the last ``Conv2d``, or ``Conv1d`` for
  B×C×T inputs, upsampled linearly in time), bilinearly
  upsampled to H×W and repeated over channels.
- ``random``: U(0, 1) noise, a control.

Options are checked per method (``OPTIONS``): an option the method does not use raises an error
naming the ones it accepts.

Randomness (smoothgrad, gradient_shap, random) is drawn per image from a generator keyed by ``seed``
and the image's position ``index[b]`` (default b; see :mod:`explainreg._random`): the result does not
depend on ``max_batch`` or on how the caller batches, and the caller's global random state is untouched.
"""
from __future__ import annotations

from typing import Any, Callable

import torch
from torch import nn

from ._random import as_index, keyed_draw
from ._validation import check_batch, check_choice, check_labels, check_logits, check_range

METHODS = ("saliency", "integrated_gradients", "smoothgrad", "deeplift", "gradient_shap", "input_x_gradient",
           "occlusion", "gradcam", "random")
ALIASES = {"ig": "integrated_gradients", "intgrad": "integrated_gradients", "grad": "saliency",
           "gradient": "saliency", "sg": "smoothgrad", "gradshap": "gradient_shap", "shap": "gradient_shap",
           "ixg": "input_x_gradient", "inputxgradient": "input_x_gradient", "grad_cam": "gradcam",
           "layergradcam": "gradcam"}
#: the options each method accepts (besides ``max_batch`` and ``seed``).
OPTIONS: dict[str, tuple[str, ...]] = {
    "saliency": ("abs",), "integrated_gradients": ("baselines", "n_steps", "integration"),
    "smoothgrad": ("stdevs", "nt_samples", "nt_type", "abs"), "deeplift": ("baselines",),
    "gradient_shap": ("baselines", "n_samples", "stdevs"), "input_x_gradient": (),
    "occlusion": ("window", "stride", "baselines"), "gradcam": ("layer", "relu"), "random": (),
}


def check_options(method: str, options: dict[str, Any]) -> None:
    """Raise a ``ValueError`` naming the options of ``method`` (canonical name) when ``options``
    holds one it does not accept (such an option would otherwise be silently ignored)."""
    accepted = OPTIONS[method]
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise ValueError(f"attribution option{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))} "
                         f"not accepted by method {method!r}; it accepts "
                         f"{', '.join(accepted) if accepted else 'no options'} (and max_batch, seed)")


def resolve_method(method: str) -> str:
    """The canonical name of an attribution method (accepts the aliases in ``ALIASES``)."""
    if not isinstance(method, str):
        raise TypeError(f"method must be a string naming an attribution method, got {type(method).__name__}")
    key = method.lower().replace("-", "_")
    key = ALIASES.get(key, key)
    if key not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)} (aliases: {', '.join(sorted(ALIASES))}); "
                         f"got {method!r}")
    return key


def model_device(model: nn.Module) -> torch.device:
    """The device of the model's first parameter or buffer (CPU for a parameter-free model)."""
    for tensor in list(model.parameters()) + list(model.buffers()):
        return tensor.device
    return torch.device("cpu")


def predict_labels(model: nn.Module, x: torch.Tensor, max_batch: int = 1024) -> torch.Tensor:
    """argmax_k f(x)_k, chunked by ``max_batch``."""
    out = []
    with torch.no_grad():
        for chunk in x.split(max_batch):
            out.append(model(chunk).argmax(1))
    return torch.cat(out)


class _EvalMode:
    """Temporarily put a model in eval mode and restore each module's flag afterwards."""

    def __init__(self, model: nn.Module) -> None:
        self.model = model

    def __enter__(self) -> nn.Module:
        self.flags = [(m, m.training) for m in self.model.modules()]
        self.model.eval()
        return self.model

    def __exit__(self, *exc) -> None:
        for module, flag in self.flags:
            module.train(flag)


def _find_layer(model: nn.Module, layer: str | nn.Module | None, input_dim: int = 4) -> nn.Module:
    """The module named ``layer`` (a dotted name, e.g. ``"layer4.1.conv2"``), or by default the last
    convolution of the input's kind: ``Conv1d`` for B×C×T inputs (``input_dim`` 3), ``Conv2d`` for B×C×H×W."""
    if isinstance(layer, nn.Module):
        return layer
    modules = dict(model.named_modules())
    if layer is None:
        kind = nn.Conv1d if input_dim == 3 else nn.Conv2d
        convs = [m for m in modules.values() if isinstance(m, kind)]
        if not convs:
            raise ValueError("gradcam needs a convolutional layer: pass layer='<name>' (one of "
                             f"{', '.join(n for n in modules if n) or 'none'})")
        return convs[-1]
    if layer not in modules:
        raise ValueError(f"layer must name a module of the model, one of {', '.join(n for n in modules if n)}; "
                         f"got {layer!r}")
    return modules[layer]


def _gradient_shap(model: nn.Module, x: torch.Tensor, t: torch.Tensor, opts: dict[str, Any], seed: int,
                   index: torch.Tensor) -> torch.Tensor:
    """Captum's GradientShap estimator with keyed per-image draws (see the module doc)."""
    shape = tuple(x.shape[1:])
    baselines = opts.get("baselines")
    if baselines is None:
        baselines = torch.zeros((1,) + shape, device=x.device, dtype=x.dtype)
    baselines = torch.as_tensor(baselines, device=x.device, dtype=x.dtype)
    if baselines.dim() == len(shape):
        baselines = baselines[None]
    if baselines.dim() != x.dim() or tuple(baselines.shape[1:]) != shape:
        raise ValueError(f"baselines must have shape M×{shape} (or {shape}), got {tuple(baselines.shape)}")
    n = int(opts.get("n_samples", 5))
    if n < 1:
        raise ValueError(f"n_samples must be a positive integer, got {n}")
    stdev = float(opts.get("stdevs", 0.09))
    b = x.shape[0]
    eps = keyed_draw("normal", seed, index, (n,) + shape, "gradient_shap_noise", device=x.device, dtype=x.dtype)
    u = keyed_draw("uniform", seed, index, (n, 2), "gradient_shap", device=x.device, dtype=x.dtype)
    alpha = u[..., 0].view((b, n) + (1,) * len(shape))
    choice = (u[..., 1] * len(baselines)).long().clamp_max(len(baselines) - 1)
    base = baselines[choice]                                                      # B×n×...
    noisy = x.detach()[:, None] + stdev * eps
    point = (base + alpha * (noisy - base)).flatten(0, 1).requires_grad_(True)
    z = model(point).gather(1, t.repeat_interleave(n)[:, None]).sum()
    (g,) = torch.autograd.grad(z, point)
    return ((noisy - base) * g.view((b, n) + shape)).mean(1)


def _attribute_chunk(model: nn.Module, x: torch.Tensor, t: torch.Tensor, method: str, opts: dict[str, Any],
                     seed: int, index: torch.Tensor) -> torch.Tensor:
    import captum.attr as ca

    x = x.detach().clone().requires_grad_(True)
    if method == "saliency":
        return ca.Saliency(model).attribute(x, target=t, abs=opts.get("abs", True))
    if method == "integrated_gradients":
        baseline = opts.get("baselines", 0.0)
        return ca.IntegratedGradients(model).attribute(
            x, baselines=baseline, target=t, n_steps=opts.get("n_steps", 50),
            method=opts.get("integration", "gausslegendre"), internal_batch_size=opts["max_batch"])
    if method == "smoothgrad":
        sal = ca.Saliency(model)
        stdev = opts.get("stdevs", 0.15)
        n = opts.get("nt_samples", 10)
        kind = opts.get("nt_type", "smoothgrad")
        check_choice("nt_type", kind, ("smoothgrad", "smoothgrad_sq", "vargrad"))
        noise = keyed_draw("normal", seed, index, (n,) + tuple(x.shape[1:]), "smoothgrad", device=x.device,
                           dtype=x.dtype).transpose(0, 1) * stdev                   # n×B×...
        noisy = (x.detach()[None] + noise).flatten(0, 1).requires_grad_(True)
        g = sal.attribute(noisy, target=t.repeat(n), abs=opts.get("abs", True)).view((n,) + tuple(x.shape))
        if kind == "smoothgrad":
            return g.mean(0)
        if kind == "smoothgrad_sq":
            return (g ** 2).mean(0)
        return g.var(0, unbiased=False)
    if method == "deeplift":
        return ca.DeepLift(model).attribute(x, target=t, baselines=opts.get("baselines", 0.0))
    if method == "gradient_shap":
        return _gradient_shap(model, x, t, opts, seed, index)
    if method == "input_x_gradient":
        return ca.InputXGradient(model).attribute(x, target=t)
    if method == "occlusion":
        w = opts.get("window", 4)
        s = opts.get("stride", 2)
        c = x.shape[1]
        return ca.Occlusion(model).attribute(
            x, sliding_window_shapes=(c, w, w), strides=(c, s, s), baselines=opts.get("baselines", 0.0),
            target=t, perturbations_per_eval=max(1, opts["max_batch"] // len(x)))
    if method == "gradcam":
        layer = _find_layer(model, opts.get("layer"), x.dim())
        cam = ca.LayerGradCam(model, layer).attribute(x, target=t, relu_attributions=opts.get("relu", False))
        if cam.dim() != x.dim():
            raise ValueError(f"gradcam: layer {opts.get('layer')!r} outputs shape {tuple(cam.shape)}, which cannot be "
                             f"mapped onto inputs {tuple(x.shape)}; name a convolutional layer (B×C×T or B×C×H×W)")
        mode = "linear" if x.dim() == 3 else "bilinear"  # Conv1d (time series) or Conv2d (images)
        up = ca.LayerAttribution.interpolate(cam, tuple(x.shape[2:]), interpolate_mode=mode)
        return up.expand_as(x)
    if method == "random":
        return keyed_draw("uniform", seed, index, tuple(x.shape[1:]), "random", device=x.device, dtype=x.dtype)
    raise AssertionError(method)


def attribute(model: nn.Module, x: torch.Tensor, target: torch.Tensor | None = None, method: str = "saliency", *,
              max_batch: int = 256, seed: int = 0, index: torch.Tensor | None = None, **options: Any) -> torch.Tensor:
    """Attributions of ``method`` for ``x`` (B×...), explaining class ``target`` (B,) of each sample.

    ``target`` = the true labels y by convention (methods.md A.5); ``None`` explains the predicted
    class. Runs on the model's device in chunks of ``max_batch`` samples (integrated gradients and
    occlusion also use it as their internal batch), in eval mode (restored afterwards); returns a
    detached tensor of the shape of ``x`` on that device. Options per method: see the module doc
    (``abs``, ``n_steps``, ``baselines``, ``stdevs``, ``nt_samples``, ``nt_type``, ``n_samples``,
    ``window``, ``stride``, ``layer``, ``relu``; ``OPTIONS`` lists them per method, others raise).
    ``index`` (B,): the samples' positions in the data set, which key their random draws (default
    0..B−1), so that stochastic methods give each sample the same draws however it is batched.
    """
    method = resolve_method(method)
    check_options(method, options)
    check_batch(x, target)
    if int(max_batch) < 1:
        raise ValueError(f"max_batch must be a positive number of samples, got {max_batch}")
    device = model_device(model)
    x = x.detach().to(device)
    index = as_index(index, len(x))
    opts = dict(options, max_batch=int(max_batch))
    if "stdevs" in opts:
        check_range("stdevs", float(opts["stdevs"]), 0.0)
    with _EvalMode(model):
        with torch.no_grad():
            probe = model(x[:1])
        check_logits(probe, 1)
        if target is None:
            target = predict_labels(model, x, max_batch)
        target = target.to(device).long()
        check_labels(target, probe.shape[1])
        if method == "random":
            return keyed_draw("uniform", seed, index, tuple(x.shape[1:]), "random", device=device, dtype=x.dtype)
        chunk_size = int(max_batch)
        if method == "smoothgrad":
            chunk_size = max(1, chunk_size // int(opts.get("nt_samples", 10)))
        elif method == "occlusion":  # few images per chunk, many occluded copies per forward pass
            chunk_size = max(1, chunk_size // 16)
        out = []
        with torch.enable_grad():
            for xs, ts, ix in zip(x.split(chunk_size), target.split(chunk_size), index.split(chunk_size)):
                out.append(_attribute_chunk(model, xs, ts, method, opts, int(seed), ix).detach())
    a = torch.cat(out)
    if a.shape != x.shape:  # pragma: no cover - Captum always returns input-shaped attributions
        a = a.expand_as(x)
    return a


Explainer = Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor]


def explainer(method: str | Explainer = "saliency", **options: Any) -> Explainer:
    """A function ``(model, x, target, index=None) -> attributions`` for ``method`` with fixed
    ``options``, checked now (a callable is returned unchanged and takes no options); used by
    metrics that re-explain perturbed inputs."""
    if callable(method):
        if options:
            raise ValueError(f"attribution options {', '.join(map(repr, sorted(options)))} apply only to a method "
                             f"named by a string; pass them inside your callable instead")
        return method
    method = resolve_method(method)
    check_options(method, {k: v for k, v in options.items() if k not in ("max_batch", "seed")})

    def explain(model: nn.Module, x: torch.Tensor, target: torch.Tensor,
                index: torch.Tensor | None = None) -> torch.Tensor:
        return attribute(model, x, target, method, index=index, **options)

    explain.__name__ = f"explain_{method}"
    return explain
