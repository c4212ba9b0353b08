"""The data sets by name: :data:`DATASETS`, a :class:`~explainreg.registry.Registry` of :class:`DataSetFamily`.

Each family's module registers its sets when it loads (:mod:`~explainreg.data.mnist`,
:mod:`~explainreg.data.shortcuts`, :mod:`~explainreg.data.text`, :mod:`~explainreg.data.ucr`);
:func:`~explainreg.data.load_dataset`, ``explainreg datasets`` and ``explainreg train --dataset`` read
the registry. A family of many named sets (the UCR/UEA archive) is one entry whose sets are named
``PREFIX/NAME`` (``ucr/GunPoint``).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Callable, NamedTuple

from ..inputs import check_mask_meaning
from ..registry import Registry, UnknownNameError

__all__ = ["DATASETS", "CarriedMask", "DataSetFamily", "Where", "carrying_masks", "dataset_family"]

#: ``where(name, root) -> [(name, splits, where the files are)]``: the rows ``explainreg datasets`` prints
Where = Callable[[str, "str | os.PathLike | None"], "list[tuple[str, str, str]]"]


class CarriedMask(NamedTuple):
    """An annotation mask a data set's batches carry (documentation: guide/concepts).

    Args:
        key: its name among the batch's extras (``"mask"``, ``"reward_mask"``).
        meaning: ``"must_not_use"`` (1 = the region the model must not use) or ``"evidence"`` (1 = where the
            right reasons are).
        option: the keyword option of the family's ``load`` that adds it (``load(..., reward_mask=True)``);
            None: every batch carries it.
        help: what it marks, for messages (``"the decoy corners"``).

    Example::

        >>> CarriedMask("mask", "must_not_use", help="the decoy corners").option is None
        True
    """

    key: str
    meaning: str
    option: str | None = None
    help: str = ""


@dataclass(frozen=True)
class DataSetFamily:
    """A named data set (or a family of them) and how to load it.

    Args:
        name: the registered name (``"mnist"``; a family of sets: the prefix, ``"ucr"``).
        load: ``load(name, split, root, *, limit, subset_seed, **options) -> ArrayDataset``; ``name`` is the
            set's canonical name (``"ucr/GunPoint"`` for a family).
        help: one line for listings (``explainreg datasets``, ``explainreg train --help``).
        splits: the split names ``load`` takes.
        where: the rows ``explainreg datasets`` prints (:data:`Where`).
        model: the reference model (a name in :data:`explainreg.models.MODELS`) ``explainreg train`` builds
            for it; None: ``explainreg train`` does not take it, and ``prepared_by`` says what does.
        prepared_by: what prepares a set ``explainreg train`` does not take (a study).
        options: keyword options of :func:`~explainreg.data.load_dataset` that ``load`` takes besides
            ``limit`` and ``subset_seed`` (``normalize``, ``download``, ...).
        members: a family's sets in the shared data folder (``"GunPoint"``, ...); empty for a single set.
        canonical: a family's spelling of a member's name (``"ucr/gunpoint"`` → ``"ucr/GunPoint"``).
        masks: the annotation masks its batches carry (:class:`CarriedMask`: key, meaning, the option that
            adds it); :func:`carrying_masks` and ``explainreg train``'s mask messages read them.

    Example::

        >>> from explainreg.data import DATASETS
        >>> mnist = DATASETS["MNIST"]
        >>> mnist.name, mnist.splits, mnist.model, "normalize" in mnist.options
        ('mnist', ('train', 'test'), 'cnn3b', True)
        >>> [(m.key, m.meaning, m.option) for m in DATASETS["decoy-mnist"].masks]
        [('mask', 'must_not_use', None), ('reward_mask', 'evidence', 'reward_mask')]
        >>> DATASETS["sst-2"].model is None, DATASETS["sst-2"].prepared_by.startswith("`explainreg study")
        (True, True)
    """

    name: str
    load: Callable[..., Any]
    help: str
    splits: tuple[str, ...]
    where: Where
    model: str | None = None
    prepared_by: str | None = None
    options: tuple[str, ...] = ()
    members: tuple[str, ...] = ()
    canonical: Callable[[str], str] | None = None
    masks: tuple[CarriedMask, ...] = ()

    def __post_init__(self) -> None:
        for mask in self.masks:
            check_mask_meaning(mask.meaning, f"masks[{mask.key!r}].meaning")

    def names(self) -> list[str]:
        """The set names this entry loads: its name, or ``PREFIX/MEMBER`` for each member of a family."""
        return [f"{self.name}/{m}" for m in self.members] if self.members else [self.name]


#: every data set :func:`~explainreg.data.load_dataset` reads, by name (``DATASETS.register(name, family)``)
DATASETS: Registry[DataSetFamily] = Registry(
    "data set", hint=" (a family's sets as PREFIX/NAME, e.g. ucr/GunPoint; `explainreg datasets` lists them)")


def carrying_masks(meaning: str, *, on_request: bool = False, trainable: bool = False) -> list[str]:
    """The registered data sets whose batches carry annotation masks of ``meaning``, in registration order.

    Args:
        meaning: ``"must_not_use"`` or ``"evidence"``.
        on_request: False: masks every batch carries; True: masks a load option adds (:attr:`CarriedMask.option`).
        trainable: only the sets ``explainreg train --dataset`` takes (a reference ``model``).

    Example::

        >>> from explainreg.data import carrying_masks
        >>> carrying_masks("must_not_use"), carrying_masks("evidence", on_request=True)
        (['decoy-mnist', 'decoy-fmnist'], ['decoy-mnist', 'decoy-fmnist'])
    """
    meaning = check_mask_meaning(meaning, "meaning")
    return [family.name for family in DATASETS.values() if (family.model or not trainable)
            and any(m.meaning == meaning and (m.option is not None) == on_request for m in family.masks)]


def dataset_family(name: str) -> tuple[DataSetFamily, str]:
    """The family of the data set ``name`` and the set's canonical name.

    ``PREFIX/NAME`` names a member of a family (``ucr/GunPoint``); other names are looked up in
    :data:`DATASETS` (case, ``-`` versus ``_`` and the aliases do not matter).

    Raises:
        UnknownNameError: no data set of that name (a ``KeyError`` and a ``ValueError``; the message
            lists the registered ones).

    Example::

        >>> from explainreg.data import dataset_family
        >>> [dataset_family(n)[1] for n in ("Fashion_MNIST", "ucr/gunpoint", "rt")]
        ['fashion-mnist', 'ucr/GunPoint', 'rotten-tomatoes']
    """
    if not isinstance(name, str):
        raise TypeError(f"a data set name must be a string, got {type(name).__name__}")
    prefix, slash, member = name.strip().partition("/")
    if slash:
        family = DATASETS[prefix]
        if not family.members:
            raise UnknownNameError(f"unknown data set {name!r}: {family.name} is one data set, not a family of "
                                   f"{family.name}/NAME sets")
        if not member:
            raise UnknownNameError(f"data set {name!r} names no member of {family.name}; e.g. {family.names()[0]}")
        return family, family.canonical(member) if family.canonical else f"{family.name}/{member}"
    family = DATASETS[name]
    if family.members:
        raise UnknownNameError(f"{family.name} is a family of data sets: name one as {family.name}/NAME, "
                               f"e.g. {', '.join(family.names()[:3])}")
    return family, family.name
