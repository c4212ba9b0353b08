"""The penalty interface: a small settings-holding module over a pure function, and the shared context.

A penalty is called as ``penalty(model, x, y, **extras)`` and returns the raw, unweighted scalar R.
Inside an :class:`~explainreg.objective.Objective` all penalties share one
:class:`PenaltyContext`: one forward pass on ``x`` and one input gradient per scalar kind for the batch.
"""
from __future__ import annotations

import functools
import inspect
from contextlib import nullcontext
from typing import Any, Callable, ClassVar

import torch
from torch import nn

from .._validation import check_batch, check_finite_option, check_labels, check_logits, check_model_input
from ..inputs import ExplainedInput
from ..modes import frozen_norm_statistics, warn_batch_norm_mixing
from ..registry import Registry
from ..gradients import (float32, full_precision, gradient_of, minmax_normalize, refuse_function_transforms,
                        resolve_score, twice_differentiable)


def input_gradient_precision(device: torch.device | str, needed: bool):
    """Autocast off (:func:`~explainreg.gradients.full_precision`) where a penalty differentiates an
    input gradient (``needed``): under bfloat16 autocast that gradient would come out of a bfloat16
    backward (RRR on real DecoyMNIST at initialisation: 1.5 % away from float32 for the CDEP net,
    Σ_k log p_k), so such a batch's forward runs in float32 and R equals its float32 value (the
    cross-entropy of an :class:`~explainreg.objective.Objective` shares that forward). Penalties
    without input gradients (SGT, CDEP) keep autocast and reduce in float32."""
    return full_precision(device) if needed else nullcontext()


class PenaltyContext:
    """One batch seen by the penalties: the model, a grad-enabled ``x``, its logits, and lazily
    computed, cached input gradients (``create_graph=True``) for each scalar kind ``score``.

    ``inputs`` (:class:`~explainreg.inputs.ExplainedInput`) says what is explained: ``explained``
    is ``x`` itself for images, series and tabular data, and the output of the model's embedding
    (B×T×E, from this same forward pass) for integer token ids; ``layer`` names that embedding when
    the model has none or several. Saliency maps are taken w.r.t. ``explained`` and are zero at
    padding.

    Args:
        model: maps x to logits B×K. x: the batch (any layout). y: B labels.
        extras: the batch's extras (``mask``, ``lengths``, ``padding_mask``, ...).
        generator: for random draws (:meth:`rng`). input_grad: run the forward on a grad-enabled x.
        layer: the explained embedding for token ids.

    Shape:
        x B×…; logits B×K; input gradients the shape of ``explained``.

    Example:
        >>> import torch
        >>> from torch import nn
        >>> net = nn.Sequential(nn.Flatten(), nn.Linear(4, 2))
        >>> ctx = PenaltyContext(net, torch.rand(3, 1, 2, 2), torch.tensor([0, 1, 1]))
        >>> ctx.logits.shape, ctx.gradient("logit") is ctx.gradient()     # computed once per kind
        (torch.Size([3, 2]), True)
    """

    def __init__(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, extras: dict[str, Any] | None = None,
                 generator: torch.Generator | None = None, input_grad: bool = True,
                 layer: str | nn.Module | None = None) -> None:
        refuse_function_transforms("an explainreg penalty (or Objective)")
        check_batch(x, y, tokens=True)
        check_model_input(model, x)
        self.model, self.y = model, y
        self.extras = dict(extras or {})
        self.generator = generator
        self.inputs = ExplainedInput.build(model, x, self.extras, layer=layer)
        with twice_differentiable(input_grad), input_gradient_precision(x.device, input_grad):
            self.explained, self.logits = self.inputs.forward(model, requires_grad=input_grad)
        self.x = self.explained if not self.inputs.is_tokens else x
        check_logits(self.logits, x.shape[0])
        check_labels(y, self.logits.shape[1])
        self._gradient: dict[str, torch.Tensor] = {}
        self._normalized: dict[str, torch.Tensor] = {}

    def gradient(self, score: str | None = None) -> torch.Tensor:
        """Signed input gradient g of the scalar kind ``score`` (``"logit"`` by default; see
        :func:`explainreg.input_gradient`), computed once per kind."""
        score = resolve_score(score)
        if score not in self._gradient:
            if not self.explained.requires_grad:
                raise RuntimeError("this context was built without input gradients; build it with input_grad=True")
            warn_batch_norm_mixing(self.model)
            with torch.enable_grad():
                g = gradient_of(self.logits, self.explained, self.y, score, create_graph=True)
                self._gradient[score] = self.inputs.strip_padding(float32(g))
        return self._gradient[score]

    def normalized_gradient(self, score: str | None = None) -> torch.Tensor:
        """Per-sample min–max normalised input gradient ĝ of ``score``, computed once."""
        score = resolve_score(score)
        if score not in self._normalized:
            g = self.gradient(score)
            self._normalized[score] = minmax_normalize(g, real=self.inputs.real(g))
        return self._normalized[score]

    def extra(self, name: str, penalty: str) -> Any:
        """A per-batch extra (e.g. ``mask``) that ``penalty`` needs; a clear error when it is missing."""
        if name not in self.extras or self.extras[name] is None:
            raise ValueError(f"{penalty} needs `{name}`: pass it as penalty(model, x, y, {name}=...) or yield it "
                             f"from the data set as the extras of each batch")
        return self.extras[name]

    def rng(self) -> torch.Generator:
        """The generator for random draws (a fresh seeded one when none was given)."""
        if self.generator is None:
            self.generator = torch.Generator().manual_seed(0)
        return self.generator


class Penalty(nn.Module):
    """Base class of the penalties: a small module holding settings over a pure function.

    Subclasses set ``name`` and implement ``compute(ctx) -> scalar tensor``; :func:`register_penalty`
    makes them available by name. ``needs_input_grad`` says whether the shared forward must run on
    a grad-enabled x.

    Shape:
        Called as ``penalty(model, x, y, *, generator=None, layer=None, **extras)``; returns a 0-d
        tensor, the raw R.

    Example:
        >>> import torch
        >>> from torch import nn
        >>> class LogitSquare(Penalty):           # a new penalty: R = mean of the squared logits
        ...     name = "logit_square"
        ...     needs_input_grad = False
        ...     def compute(self, ctx):
        ...         return ctx.logits.pow(2).mean()
        >>> net = nn.Linear(3, 2)
        >>> x = torch.rand(4, 3)
        >>> bool(torch.isclose(LogitSquare()(net, x, torch.zeros(4, dtype=torch.long)), net(x).pow(2).mean()))
        True
    """

    name: ClassVar[str] = "penalty"
    #: what the penalty's mask marks (documentation: guide/concepts): "must_not_use", "evidence", or None (no mask)
    mask_meaning: ClassVar[str | None] = None
    #: the batch extra that holds that mask (``"mask"``; HINT: ``"reward_mask"``)
    mask_extra: ClassVar[str | None] = None
    #: whether the penalty needs the input gradient (so the shared forward runs on a grad-enabled x)
    needs_input_grad: ClassVar[bool] = True
    #: whether ``compute`` differentiates a gradient of its own forwards (expected gradients, Grad-CAM), so that
    #: they run in float32 under autocast; None: the same as ``needs_input_grad``
    double_backprop: ClassVar[bool | None] = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """Every penalty's options are checked for NaN and ±inf before its own checks (:func:`finite_options`)."""
        super().__init_subclass__(**kwargs)
        if "__init__" in cls.__dict__:
            cls.__init__ = finite_options(cls.__dict__["__init__"])

    def forward(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, *,
                generator: torch.Generator | None = None, layer: str | nn.Module | None = None,
                **extras: Any) -> torch.Tensor:
        refuse_function_transforms(type(self).__name__)
        ctx = PenaltyContext(model, x, y, extras, generator, input_grad=self.needs_input_grad, layer=layer)
        return self.evaluate(ctx)

    def evaluate(self, ctx: PenaltyContext) -> torch.Tensor:
        """``compute(ctx)`` with the model's BatchNorm running statistics left as they were: the
        forward passes a penalty makes beyond the shared one (perturbed, masked, rotated or
        interpolated copies; contextual decomposition) are not training data (documentation: methods/decomposition).
        Forward passes inside run attention on a twice-differentiable kernel (penalties such as
        expected gradients differentiate input gradients of their own forwards;
        :func:`~explainreg.gradients.twice_differentiable`); R comes out in float32 under autocast."""
        gradients = self.needs_input_grad if self.double_backprop is None else self.double_backprop
        with frozen_norm_statistics(ctx.model), twice_differentiable(), \
                input_gradient_precision(ctx.logits.device, gradients):
            return float32(self.compute(ctx))

    def compute(self, ctx: PenaltyContext) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v!r}" for k, v in self.settings().items())

    def settings(self) -> dict[str, Any]:
        """The constructor arguments, for configs and logs."""
        return {}

    def reads_mask(self) -> tuple[str, str] | None:
        """``(extra, meaning)``: the batch extra this penalty reads as a mask and what that mask must mark
        (:data:`~explainreg.inputs.MASK_MEANINGS`); None for a penalty that reads no mask. An
        :class:`~explainreg.objective.Objective` refuses data that state the other meaning for it."""
        if self.mask_meaning is None or self.mask_extra is None:
            return None
        return self.mask_extra, self.mask_meaning


def finite_options(init: Callable[..., None]) -> Callable[..., None]:
    """``init`` (a penalty's ``__init__``) with every option checked first by
    :func:`~explainreg._validation.check_finite_option`: NaN or ±inf anywhere is a clear error, on
    the API and through ``--penalty-option`` alike."""
    if getattr(init, "_finite_options", False):
        return init
    signature = inspect.signature(init)

    @functools.wraps(init)
    def checked(self: nn.Module, *args: Any, **kwargs: Any) -> None:
        try:
            bound = signature.bind(self, *args, **kwargs)
        except TypeError:
            return init(self, *args, **kwargs)  # the call's own TypeError names the argument
        for name, value in list(bound.arguments.items())[1:]:
            check_finite_option(type(self).__name__, name, value)
        return init(self, *args, **kwargs)

    checked._finite_options = True  # type: ignore[attr-defined]
    return checked


#: the penalties by name and alias (:class:`~explainreg.registry.Registry`): ``@PENALTIES.register(aliases=...)``
#: on a :class:`Penalty` subclass registers it under its ``name`` for :func:`build_penalty`,
#: :class:`~explainreg.objective.Objective` and the command line (``PENALTIES.describe()`` lists them).
PENALTIES: Registry[type[Penalty]] = Registry("penalty")


def build_penalty(name: str, **settings: Any) -> Penalty:
    """A penalty from its registered name or alias (e.g. ``"smoothness"``, ``"tv"``) and settings.

    Args:
        name: a registered name (case and ``-``/``_`` do not matter). settings: the constructor's keywords.

    Returns:
        The penalty.

    Example:
        >>> build_penalty("smoothness", offset=2)
        Smoothness(offset=2, convention='explainreg', score='logit')
    """
    return PENALTIES[name](**settings)


__all__ = ["PENALTIES", "Penalty", "PenaltyContext", "build_penalty"]
