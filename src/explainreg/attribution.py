"""Attributions for evaluation, through Captum, batched on the model's device.

``attribute(model, x, target, method)`` returns a detached tensor of the shape of ``x``. The target
is the class explained for each sample: pass the true labels ``y`` (the seed's convention); ``None``
explains the model's own prediction. Methods:

- ``gradient``: ∂z_t/∂x, the signed input gradient (:func:`explainreg.input_gradient` with ``score="logit"``,
  detached).
- ``saliency``: |∂z_t/∂x|, the gradient's magnitude: the saliency map of Simonyan et al. 2014 (Captum ``Saliency``,
  as the seed).
- ``integrated_gradients``: (x − x′) ⊙ ∫₀¹ ∂z_t(x′ + α(x − x′))/∂x dα, baseline x′ = 0, ``n_steps`` = 50.
- ``smoothgrad``: mean over ``nt_samples`` of |∂z_t/∂x| at x + ``stdevs``·ε, ε ~ N(0, 1) (default 0.15, 10 samples):
  smoothed saliency maps; ``abs=False`` averages the signed gradients.
- ``deeplift``: DeepLift (rescale rule), baseline 0.
- ``deeplift_shap``: Captum's DeepLiftShap, the mean of DeepLift over the ``baselines`` (M×...; default 0).
- ``gradient_shap``: mean over ``n_samples`` (5) of (x̃ − x′) ⊙ ∂z_t/∂x at x′ + α(x̃ − x′), with
  x̃ = x + ``stdevs``·ε (ε ~ N(0, 1), ``stdevs`` = 0.09), α ~ U(0, 1) and x′ drawn uniformly from
  ``baselines`` (M×... or one baseline; default 0), as Captum's ``GradientShap``, in one batched backward.
- ``input_x_gradient``: x ⊙ ∂z_t/∂x.
- ``occlusion``: z_t(x) − z_t(x with a sliding window set to 0), windows ``window``×``window``.
- ``gradcam``: ReLU-free Grad-CAM on a named layer (default: the ``Conv2d``, or ``Conv1d`` for
  B×C×T inputs, whose output reaches the model's output: in a residual block with a 1×1 shortcut
  convolution, the main path's last one; see :func:`explainreg.layers.find_layer`), bilinearly
  upsampled to H×W and repeated over channels.
- ``random``: U(0, 1) noise, a control.

Token ids (B×T integers) are explained at the output e of the model's embedding (B×T×E, see
:class:`explainreg.inputs.ExplainedInput`): the method runs on e, with the model run from e, and the
attribution is summed over E into one score per token (padding 0), B×T. ``input_x_gradient`` then
gives Σ_e g·e, ``integrated_gradients`` Σ_e e·mean_α ∂z_t/∂e(α·e) (baseline: the zero embedding),
``smoothgrad`` and ``gradient_shap`` add noise of standard deviation ``stdevs`` to e. Methods that
slide windows over, or read layers of, an image (``occlusion``, ``gradcam``) and Captum's DeepLift
family (hooks on the model's modules) are refused on token ids.

Methods are registered with :func:`register_attribution` (``ATTRIBUTION_METHODS``: name, function,
accepted options, chunk size). Options are checked per method: an option the method does not use raises an error
naming the ones it accepts.

Randomness (smoothgrad, gradient_shap, random) is drawn per image from a generator keyed by ``seed``
and the image's position ``index[b]`` (default b; see :mod:`explainreg._random`): the result does not
depend on ``max_batch`` or on how the caller batches, and the caller's global random state is untouched.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import torch
from torch import nn

from .inputs import ExplainedInput, replaced_output, series_padding
from .gradcam import find_conv_layer, forward_with_activation, grad_cam, resize_map
from ._random import as_index, keyed_draw
from ._validation import check_batch, check_choice, check_labels, check_logits, check_model_input, check_range
from .modes import eval_mode, model_device
from .registry import Registry, first_line

@dataclass(frozen=True)
class AttributionMethod:
    """One registered attribution method (see :func:`register_attribution`).

    Args:
        name: the canonical name.
        function: ``(model, x, target, opts, seed, index) -> a`` run on one chunk (x B×... with
            ``requires_grad``, ``opts`` the caller's options plus ``max_batch``).
        options: the options it accepts besides ``max_batch`` and ``seed``.
        chunk: ``(max_batch, opts) -> samples per call`` (default: ``max_batch``).

    Shape:
        ``function``: x (B, ...), target (B,) → a (B, ...).

    Returns:
        A frozen record; ``chunk_size(max_batch, opts)`` gives the samples per call.

    Example::

    >>> from explainreg.attribution import ATTRIBUTION_METHODS
    >>> m = ATTRIBUTION_METHODS["smoothgrad"]; m.options, m.chunk_size(100, {"nt_samples": 10})
    (('stdevs', 'nt_samples', 'nt_type', 'abs'), 10)
    """

    name: str
    function: Callable[..., torch.Tensor]
    options: tuple[str, ...] = ()
    chunk: Callable[[int, dict[str, Any]], int] | None = None

    def chunk_size(self, max_batch: int, opts: dict[str, Any]) -> int:
        return max(1, int(self.chunk(max_batch, opts)) if self.chunk is not None else int(max_batch))


#: the attribution methods by name and alias (:class:`~explainreg.registry.Registry`), in registration order.
ATTRIBUTION_METHODS: Registry[AttributionMethod] = Registry("attribution method")


def register_attribution(name: str, *, options: tuple[str, ...] = (), aliases: tuple[str, ...] = (),
                         chunk: Callable[[int, dict[str, Any]], int] | None = None):
    """Function decorator: register ``function(model, x, target, opts, seed, index)`` as attribution method
    ``name``; adding a method is this one function plus its test.

    Args:
        name: the canonical name (refused if taken).
        options: the options the method accepts (others raise in :func:`attribute`).
        aliases: other spellings.
        chunk: ``(max_batch, opts) -> samples per call``.

    Shape:
        ``function``: x (B, ...) → a (B, ...).

    Returns:
        The decorator (it returns the function unchanged).

    Example::

    >>> import torch; from torch import nn
    >>> from explainreg.attribution import ATTRIBUTION_METHODS, attribute, register_attribution
    >>> @register_attribution("ones_times_input")
    ... def _ones(model, x, target, opts, seed, index):
    ...     return x.detach()
    >>> attribute(nn.Flatten(), torch.full((1, 2), 3.0), None, "ones_times_input")
    tensor([[3., 3.]])
    >>> _ = ATTRIBUTION_METHODS.pop("ones_times_input")
    """

    def decorate(function: Callable[..., torch.Tensor]) -> Callable[..., torch.Tensor]:
        ATTRIBUTION_METHODS.register(name, AttributionMethod(name, function, tuple(options), chunk), aliases=aliases,
                                     description=first_line(function) or _documented(name))
        return function

    return decorate


def _documented(name: str) -> str:
    """The module docstring's line about method ``name`` (``- ``name``: ...``), joined, for listings."""
    lines = (__doc__ or "").splitlines()
    start = next((i for i, line in enumerate(lines) if line.startswith(f"- ``{name}``: ")), None)
    if start is None:
        return ""
    text = [lines[start].split(": ", 1)[1]]
    for line in lines[start + 1:]:
        if not line.startswith("  "):
            break
        text.append(line.strip())
    return " ".join(text)


def check_options(method: str, options: dict[str, Any]) -> None:
    """Raise a ``ValueError`` naming the options of ``method`` when ``options`` holds one it does not accept (such
    an option would otherwise be silently ignored).

    Args:
        method: a canonical method name.
        options: the options given.

    Shape:
        (no tensors)

    Returns:
        None; raises on an unknown option.

    Example::

    >>> from explainreg.attribution import check_options
    >>> check_options("smoothgrad", {"n_steps": 4})
    Traceback (most recent call last):
    ...
    ValueError: attribution option 'n_steps' not accepted by method 'smoothgrad'; it accepts stdevs, nt_samples,
    nt_type, abs (and max_batch, seed)
    """
    accepted = ATTRIBUTION_METHODS[method].options
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        hint = ("; 'saliency' is the gradient's magnitude |∂z_t/∂x|, method 'gradient' the signed gradient"
                if method == "saliency" and "abs" in unknown else "")
        raise ValueError(f"attribution option{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))} "
                         f"not accepted by method {method!r}; it accepts "
                         f"{', '.join(accepted) if accepted else 'no options'} (and max_batch, seed){hint}")


def resolve_method(method: str) -> str:
    """The canonical name of an attribution method (accepts its aliases, ``ATTRIBUTION_METHODS.aliases``).

    Args:
        method: a name or alias (case and ``-``/``_`` free).

    Shape:
        (no tensors)

    Returns:
        The canonical name.

    Example::

    >>> from explainreg.attribution import resolve_method
    >>> resolve_method("IG"), resolve_method("grad-cam")
    ('integrated_gradients', 'gradcam')
    """
    if not isinstance(method, str):
        raise TypeError(f"method must be a string naming an attribution method, got {type(method).__name__}")
    if method not in ATTRIBUTION_METHODS:
        raise ValueError(f"method must be one of {', '.join(ATTRIBUTION_METHODS)} "
                         f"(aliases: {', '.join(sorted(ATTRIBUTION_METHODS.aliases))}); got {method!r}")
    return ATTRIBUTION_METHODS.resolve(method)


def predict_labels(model: nn.Module, x: torch.Tensor, max_batch: int = 1024) -> torch.Tensor:
    """argmax_k f(x)_k, chunked by ``max_batch``, without gradients.

    Args:
        model: the classifier.
        x: the inputs.
        max_batch: samples per forward pass.

    Shape:
        x: (B, ...); output: (B,), int64.

    Returns:
        The predicted classes.

    Example::

    >>> import torch; from torch import nn; from explainreg.attribution import attribute
    >>> _ = torch.manual_seed(0); model = nn.Sequential(nn.Flatten(), nn.Linear(16, 3))
    >>> x, y = torch.rand(4, 1, 4, 4), torch.tensor([0, 1, 2, 0])
    >>> from explainreg.attribution import predict_labels
    >>> predict_labels(model, x).shape
    torch.Size([4])
    """
    out = []
    with torch.no_grad():
        for chunk in x.split(max_batch):
            out.append(model(chunk).argmax(1))
    return torch.cat(out)


def _baseline_stack(baselines: Any, x: torch.Tensor) -> torch.Tensor:
    """``baselines`` (M×..., one baseline of x's sample shape, or None → zeros) as an M×... tensor."""
    shape = tuple(x.shape[1:])
    if baselines is None:
        baselines = torch.zeros((1,) + shape, device=x.device, dtype=x.dtype)
    baselines = torch.as_tensor(baselines, device=x.device, dtype=x.dtype)
    if baselines.dim() == len(shape):
        baselines = baselines[None]
    if baselines.dim() != x.dim() or tuple(baselines.shape[1:]) != shape:
        raise ValueError(f"baselines must have shape M×{shape} (or {shape}), got {tuple(baselines.shape)}")
    return baselines


def _n_baselines(baselines: Any) -> int:
    """M for an M×... stack of baselines (1 for None, a number or a single baseline image)."""
    if not isinstance(baselines, torch.Tensor) or baselines.dim() < 2:
        return 1
    return int(baselines.shape[0])


@register_attribution("gradient", aliases=("grad", "input_gradient"))
def _gradient(model, x, t, opts, seed, index):
    import captum.attr as ca

    return ca.Saliency(model).attribute(x, target=t, abs=False, additional_forward_args=_args(opts))


@register_attribution("saliency")
def _saliency(model, x, t, opts, seed, index):
    import captum.attr as ca

    return ca.Saliency(model).attribute(x, target=t, abs=True, additional_forward_args=_args(opts))


@register_attribution("integrated_gradients", options=("baselines", "n_steps", "integration"),
                      aliases=("ig", "intgrad"))
def _integrated_gradients(model, x, t, opts, seed, index):
    import captum.attr as ca

    return ca.IntegratedGradients(model).attribute(
        x, baselines=opts.get("baselines", 0.0), target=t, n_steps=opts.get("n_steps", 50),
        method=opts.get("integration", "gausslegendre"), internal_batch_size=opts["max_batch"],
        additional_forward_args=_args(opts))


@register_attribution("smoothgrad", options=("stdevs", "nt_samples", "nt_type", "abs"), aliases=("sg",),
                      chunk=lambda max_batch, opts: max_batch // int(opts.get("nt_samples", 10)))
def _smoothgrad(model, x, t, opts, seed, index):
    import captum.attr as ca

    stdev = opts.get("stdevs", 0.15)
    n = opts.get("nt_samples", 10)
    kind = opts.get("nt_type", "smoothgrad")
    check_choice("nt_type", kind, ("smoothgrad", "smoothgrad_sq", "vargrad"))
    noise = keyed_draw("normal", seed, index, (n,) + tuple(x.shape[1:]), "smoothgrad", device=x.device,
                       dtype=x.dtype).transpose(0, 1) * stdev                   # n×B×...
    noisy = (x.detach()[None] + noise).flatten(0, 1).requires_grad_(True)
    g = ca.Saliency(model).attribute(noisy, target=t.repeat(n), abs=opts.get("abs", True),
                                     additional_forward_args=_args(opts, n, "repeat")).view((n,) + tuple(x.shape))
    if kind == "smoothgrad":
        return g.mean(0)
    if kind == "smoothgrad_sq":
        return (g ** 2).mean(0)
    return g.var(0, unbiased=False)


@register_attribution("deeplift", options=("baselines",))
def _deeplift(model, x, t, opts, seed, index):
    import captum.attr as ca

    return ca.DeepLift(model).attribute(x, target=t, baselines=opts.get("baselines", 0.0))


@register_attribution("deeplift_shap", options=("baselines",), aliases=("deepliftshap", "dlshap"),
                      chunk=lambda max_batch, opts: max_batch // max(2, _n_baselines(opts.get("baselines"))))
def _deeplift_shap(model, x, t, opts, seed, index):
    """Captum's ``DeepLiftShap``: the mean over the M baselines b_m of DeepLift(x; b_m); for a linear
    model mean_m (x − b_m) ⊙ w_t. ``baselines`` M×... (default: the zero image)."""
    import captum.attr as ca

    baselines = _baseline_stack(opts.get("baselines"), x)
    if len(baselines) == 1:  # Captum needs two or more; the mean over two copies is the same
        baselines = baselines.expand((2,) + tuple(baselines.shape[1:]))
    return ca.DeepLiftShap(model).attribute(x, baselines=baselines.contiguous(), target=t)


@register_attribution("gradient_shap", options=("baselines", "n_samples", "stdevs"), aliases=("gradshap", "shap"))
def _gradient_shap(model, x, t, opts, seed, index):
    """Captum's GradientShap estimator with keyed per-image draws (see the module doc)."""
    shape = tuple(x.shape[1:])
    baselines = _baseline_stack(opts.get("baselines"), x)
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
    z = model(point, *(_args(opts, n, "interleave") or ())).gather(1, t.repeat_interleave(n)[:, None]).sum()
    (g,) = torch.autograd.grad(z, point)
    return ((noisy - base) * g.view((b, n) + shape)).mean(1)


@register_attribution("input_x_gradient", aliases=("ixg", "inputxgradient"))
def _input_x_gradient(model, x, t, opts, seed, index):
    import captum.attr as ca

    return ca.InputXGradient(model).attribute(x, target=t, additional_forward_args=_args(opts))


@register_attribution("occlusion", options=("window", "stride", "baselines"),
                      chunk=lambda max_batch, opts: max_batch // 16)  # few images, many occluded copies per forward
def _occlusion(model, x, t, opts, seed, index):
    import captum.attr as ca

    w, s, c = opts.get("window", 4), opts.get("stride", 2), x.shape[1]
    return ca.Occlusion(model).attribute(
        x, sliding_window_shapes=(c, w, w), strides=(c, s, s), baselines=opts.get("baselines", 0.0),
        target=t, perturbations_per_eval=max(1, opts["max_batch"] // len(x)))


@register_attribution("gradcam", options=("layer", "relu"), aliases=("grad_cam", "layergradcam"))
def _gradcam(model, x, t, opts, seed, index):
    layer = find_conv_layer(model, opts.get("layer"), x, who="gradcam")
    logits, activation = forward_with_activation(model, x, layer)
    cam = grad_cam(logits, activation, t, create_graph=False).detach()
    cam = cam.clamp_min(0) if opts.get("relu", False) else cam
    if cam.dim() != x.dim():
        raise ValueError(f"gradcam: layer {opts.get('layer')!r} outputs shape {tuple(cam.shape)}, which cannot be "
                         f"mapped onto inputs {tuple(x.shape)}; name a convolutional layer (B×C×T or B×C×H×W)")
    mode = "linear" if x.dim() == 3 else "bilinear"  # Conv1d (time series) or Conv2d (images)
    return resize_map(cam, tuple(x.shape[2:]), mode).expand_as(x)


@register_attribution("random")
def _random(model, x, t, opts, seed, index):
    return keyed_draw("uniform", seed, index, tuple(x.shape[1:]), "random", device=x.device, dtype=x.dtype)


#: the methods defined on token embeddings (the others slide windows or hook the model's modules)
TOKEN_METHODS = ("gradient", "saliency", "integrated_gradients", "smoothgrad", "gradient_shap", "input_x_gradient", "random")


def _args(opts: dict[str, Any], n: int = 1, order: str = "repeat") -> tuple | None:
    """The extra forward arguments of a token batch (its ids, for a model run from its embeddings), for
    ``n`` stacked copies: ``"repeat"`` copy-major (n×B), ``"interleave"`` sample-major (B×n); None for dense x."""
    ids = opts.get("token_ids")
    if ids is None:
        return None
    return (ids.repeat(n, 1) if order == "repeat" else ids.repeat_interleave(n, 0),) if n > 1 else (ids,)


class _FromEmbeddings(nn.Module):
    """The model run from its embedding output: ``(e, ids) -> logits``, ``e`` replacing the output of
    ``layer`` on ``ids`` (rows aligned)."""

    def __init__(self, model: nn.Module, layer: nn.Module) -> None:
        super().__init__()
        self.model, self.layer = model, layer

    def forward(self, e: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
        with replaced_output(self.layer, e):
            return self.model(ids)


def attribute(model: nn.Module, x: torch.Tensor, target: torch.Tensor | None = None, method: str = "saliency", *,
              max_batch: int = 256, seed: int = 0, index: torch.Tensor | None = None,
              padding_mask: torch.Tensor | None = None, lengths: torch.Tensor | None = None,
              **options: Any) -> torch.Tensor:
    """Attributions of ``method`` for ``x``, explaining class ``target`` of each sample.

        Methods through Captum (Kokhlikyan et al. 2020, "Captum: a unified and generic model interpretability
        library for PyTorch").

        Args:
            model: the classifier (run in eval mode, restored afterwards, on its device).
            x: the inputs.
            target: the class explained per sample: the true labels y by convention (the seed's); ``None``
                explains the predicted class.
            method: a registered name or alias (``ATTRIBUTION_METHODS``; see the module doc).
            max_batch: samples per chunk (integrated gradients and occlusion also use it as their internal batch).
            seed, index: key the random draws of stochastic methods by ``index`` (the samples' positions in
                the data set, default 0..B−1), so a sample gets the same draws however it is batched.
            padding_mask, lengths: for padded series (B×C×T) and token ids (B×T), the real steps (B×T,
                True = real) or their number per sample (B); the padded steps get attribution 0, so no metric
                reads them as features (token ids: default, the embedding's ``padding_idx``).
            layer: token ids only: the embedding module (or its name) whose output is explained.
            options: the method's options (``n_steps``, ``baselines``, ``stdevs``, ``nt_samples``,
                ``nt_type``, ``abs``, ``n_samples``, ``window``, ``stride``, ``layer``, ``relu``; ``OPTIONS`` lists
                them per method, others raise).

        Shape:
            x: (B, ...); target: (B,); output: the shape of x (Grad-CAM: upsampled to x's spatial size;
            token ids B×T: B×T).

        Returns:
            A detached tensor on the model's device.

        Example::

        >>> import torch; from torch import nn; from explainreg.attribution import attribute
        >>> _ = torch.manual_seed(0); model = nn.Sequential(nn.Flatten(), nn.Linear(16, 3))
        >>> x, y = torch.rand(4, 1, 4, 4), torch.tensor([0, 1, 2, 0])
        >>> a = attribute(model, x, y, "saliency"); a.shape
        torch.Size([4, 1, 4, 4])
        >>> torch.allclose(a[0].flatten(), model[1].weight[0].abs())      # a linear model: |w_y|
        True
        >>> attribute(model, x, y, "ig", n_steps=8).shape
        torch.Size([4, 1, 4, 4])
        >>> text = nn.Sequential(nn.Embedding(9, 4, padding_idx=0), nn.Flatten(), nn.Linear(12, 2))
        >>> attribute(text, torch.tensor([[3, 4, 0]]), torch.tensor([1]), "input_x_gradient").shape   # B×T
        torch.Size([1, 3])
    """
    method = resolve_method(method)
    layer = options.pop("layer", None) if not x.is_floating_point() else None
    check_options(method, options)
    check_batch(x, target, tokens=True)
    check_model_input(model, x)
    if int(max_batch) < 1:
        raise ValueError(f"max_batch must be a positive number of samples, got {max_batch}")
    device = model_device(model)
    x = x.detach().to(device)
    inputs = ExplainedInput.build(model, x, {"padding_mask": padding_mask, "lengths": lengths}, layer=layer)
    if inputs.is_tokens and method not in TOKEN_METHODS:
        raise ValueError(f"method {method!r} is not defined on token ids; on tokens use one of "
                         f"{', '.join(TOKEN_METHODS)}")
    if padding_mask is not None or lengths is not None:
        inputs.require(("series", "tokens"), "padding_mask / lengths",
                       "they mark the padded steps of padded series (B×C×T) or token ids; images and tabular rows "
                       "have no padding")
    index = as_index(index, len(x))
    opts = dict(options, max_batch=int(max_batch))
    if "stdevs" in opts:
        check_range("stdevs", float(opts["stdevs"]), 0.0)
    entry = ATTRIBUTION_METHODS[method]
    with eval_mode(model):
        with torch.no_grad():
            probe = model(x[:1])
        check_logits(probe, 1)
        if target is None:
            target = predict_labels(model, x, max_batch)
        target = target.to(device).long()
        check_labels(target, probe.shape[1])
        explained, run = x, model
        if inputs.is_tokens:
            with torch.no_grad():
                explained = inputs.forward(model, requires_grad=False)[0].detach()
            run = _FromEmbeddings(model, inputs.layer)
        chunk_size = entry.chunk_size(int(max_batch), opts)
        out = []
        with torch.enable_grad():
            for rows in torch.arange(len(x), device=device).split(chunk_size):
                xs = explained[rows].detach().clone().requires_grad_(True)
                chunk = dict(opts, token_ids=x[rows]) if inputs.is_tokens else opts
                out.append(entry.function(run, xs, target[rows], chunk, int(seed), index[rows.cpu()]).detach())
    a = torch.cat(out)
    if a.shape != explained.shape:  # pragma: no cover - Captum always returns input-shaped attributions
        a = a.expand_as(explained)
    if inputs.is_tokens:
        return a.sum(2) * inputs.padding.to(a.dtype)
    return inputs.strip_padding(a)


Explainer = Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor]


def explainer(method: str | Explainer = "saliency", **options: Any) -> Explainer:
    """A function ``(model, x, target, index=None) -> attributions`` for ``method`` with fixed ``options``, checked now.

    Args:
        method: a name (see :func:`attribute`) or a callable, returned unchanged (it takes no options).
        options: the method's options.

    Shape:
        as :func:`attribute`.

    Returns:
        The explaining function (used by metrics that re-explain perturbed inputs).

    Example::

    >>> import torch; from torch import nn; from explainreg.attribution import attribute
    >>> _ = torch.manual_seed(0); model = nn.Sequential(nn.Flatten(), nn.Linear(16, 3))
    >>> x, y = torch.rand(4, 1, 4, 4), torch.tensor([0, 1, 2, 0])
    >>> from explainreg.attribution import explainer
    >>> explain = explainer("smoothgrad", nt_samples=4)
    >>> explain(model, x, y).shape
    torch.Size([4, 1, 4, 4])
    """
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


#: the registered names, and the options each accepts (besides ``max_batch`` and ``seed``): views of
#: ``ATTRIBUTION_METHODS`` (methods registered later, e.g. by users, appear in the registry only).
METHODS = tuple(ATTRIBUTION_METHODS)
OPTIONS: dict[str, tuple[str, ...]] = {name: m.options for name, m in ATTRIBUTION_METHODS.items()}

__all__ = ["ATTRIBUTION_METHODS", "AttributionMethod", "METHODS", "OPTIONS", "attribute", "check_options",
           "explainer", "model_device", "predict_labels", "register_attribution", "resolve_method", "TOKEN_METHODS"]
