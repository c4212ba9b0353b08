"""Counterexamples (Teso & Kersting 2019, "Explanatory interactive machine learning"), the data-side
method among the XIL methods compared by Friedrich et al. (2023), "A typology for exploring the
mitigation of shortcut behaviour".

For each annotated training image, ``n_copies`` copies with the masked pixels (1 = must not matter)
replaced by uniform random values in the data range, with the image's label, added to the training
data. Nothing changes in the loss: the model sees that the masked region carries no label
information.
"""
from __future__ import annotations

import torch

from ..inputs import dense_mask
from .arrays import ArrayDataset


def randomize_masked(x: torch.Tensor, mask: torch.Tensor, low: float, high: float,
                     generator: torch.Generator) -> torch.Tensor:
    """x̃ = x ⊙ (1 − m) + u ⊙ m with u ~ U(low, high) drawn per entry; ``mask`` (bool or 0/1) broadcasts
    against ``x`` (N×{1,C}×H×W). Entries outside the mask are returned unchanged (bit for bit).

    Args:
        x: the images.
        mask: 1 (True) where the values are replaced.
        low, high: the range of the uniform values.
        generator: the random generator (on the CPU).

    Shape:
        x: (N, C, H, W); mask: broadcastable to x; output: x's shape.

    Returns:
        The randomised copies.

    Example::

        >>> import torch
        >>> from explainreg.data.counterexamples import randomize_masked
        >>> x = torch.zeros(1, 1, 2, 3)
        >>> m = torch.tensor([[[[1, 1, 0], [0, 0, 0]]]])
        >>> out = randomize_masked(x, m, 2.0, 3.0, torch.Generator().manual_seed(0))
        >>> bool(((out[m.bool()] >= 2) & (out[m.bool()] <= 3)).all()), bool((out[~m.bool()] == 0).all())
        (True, True)
    """
    m = dense_mask((mask != 0).to(x.dtype), x, who="randomize_masked").bool().expand_as(x)  # non-zero = masked
    u = torch.rand(x.shape, generator=generator, dtype=x.dtype) * (high - low) + low
    return torch.where(m, u.to(x.device), x)


def counterexamples(dataset: ArrayDataset, n_copies: int = 1, *, seed: int = 0, mask_key: str = "mask",
                    value_range: tuple[float, float] | None = None) -> ArrayDataset:
    """``dataset`` followed by ``n_copies`` counterexamples of each annotated image.

    An image is annotated when its mask (``dataset.extras[mask_key]``) has a non-zero entry. Copies
    follow the originals: copy j of annotated image i sits at ``len(dataset) + j·n_a + rank(i)``
    (n_a annotated images, in order). The data range is ``value_range`` or ``(min x, max x)`` over
    the data set. Every extra is copied along; ``extras["counterexample"]`` (bool) marks the copies.
    Seeded: the same ``seed`` gives the same copies.

    Args:
        dataset: an :class:`ArrayDataset` of images N×C×H×W with a mask extra.
        n_copies: copies per annotated image (0 returns the data set with the flag only).
        seed: seed of the generator for the random values.
        mask_key: the extra holding the masks (N×{1,C}×H×W, 1 = region to randomise).
        value_range: ``(low, high)`` of the uniform values.

    Returns:
        A new :class:`ArrayDataset` of N + n_copies·n_a rows.

    Raises:
        TypeError: ``dataset`` is not an :class:`ArrayDataset`.
        ValueError: no mask extra, masks of another shape, a bad ``n_copies`` or ``value_range``.

    Example::

        >>> import torch
        >>> from explainreg.data import ArrayDataset
        >>> from explainreg.data.counterexamples import counterexamples
        >>> mask = torch.zeros(3, 1, 2, 2); mask[0, :, 0] = 1; mask[2, :, :, 0] = 1   # images 0 and 2 annotated
        >>> data = ArrayDataset(torch.rand(3, 1, 2, 2), torch.tensor([0, 1, 2]), {"mask": mask})
        >>> more = counterexamples(data, n_copies=2, seed=0)
        >>> len(more), more.y.tolist(), more.extras["counterexample"].sum().item()
        (7, [0, 1, 2, 0, 2, 0, 2], 4)
        >>> keep = ~more.extras["mask"][3].bool()                              # unmasked pixels kept
        >>> bool(torch.equal(more.x[3][keep], data.x[0][keep]))
        True
    """
    if not isinstance(dataset, ArrayDataset):
        raise TypeError(f"dataset must be an ArrayDataset (images, labels, extras), got {type(dataset).__name__}")
    if mask_key not in dataset.extras:
        raise ValueError(f"dataset has no extras[{mask_key!r}] (it has {sorted(dataset.extras) or 'none'}); "
                         "counterexamples need annotation masks (1 = the region that must not matter)")
    if int(n_copies) != n_copies or n_copies < 0:
        raise ValueError(f"n_copies must be a whole number ≥ 0, got {n_copies}")
    x, mask = dataset.x, dataset.extras[mask_key]
    if mask.dim() != x.dim() or mask.shape[0] != x.shape[0] or mask.shape[2:] != x.shape[2:] \
            or mask.shape[1] not in (1, x.shape[1]):
        raise ValueError(f"extras[{mask_key!r}] of shape {tuple(mask.shape)} does not match the images "
                         f"{tuple(x.shape)}; give N×1×H×W or N×C×H×W masks")
    if value_range is None:
        low, high = float(x.min()), float(x.max())
    else:
        low, high = map(float, value_range)
        if not low < high:
            raise ValueError(f"value_range must be (low, high) with low < high, got {value_range}")
    annotated = (mask != 0).flatten(1).any(1).nonzero().flatten()
    generator = torch.Generator().manual_seed(int(seed))
    index = annotated.repeat(int(n_copies))
    copies = randomize_masked(x[index], mask[index], low, high, generator)
    flag = torch.cat([torch.zeros(len(x), dtype=torch.bool), torch.ones(len(index), dtype=torch.bool)])
    extras = {k: torch.cat([v, v[index]]) for k, v in dataset.extras.items()}
    extras["counterexample"] = flag
    return ArrayDataset(torch.cat([x, copies]), torch.cat([dataset.y, dataset.y[index]]), extras,
                        name=dataset.name, source=f"{dataset.source} + {len(index)} counterexamples "
                                                  f"({n_copies} per annotated image, seed {seed})",
                        mask_meanings=dict(dataset.mask_meanings))


__all__ = ["counterexamples", "randomize_masked"]
