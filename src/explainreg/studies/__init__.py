"""Studies: named, reproducible grids of runs with reports. Each module of this package registers
its studies with :func:`register_study`; ``explainreg study NAME`` discovers them."""
from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass
from typing import Callable

import argparse

from ..registry import Registry

__all__ = ["STUDIES", "Study", "discover", "register_study"]


@dataclass(frozen=True)
class Study:
    """``add_arguments(parser)`` declares the study's options; ``run(args) -> int`` runs it."""

    name: str
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]


#: the studies by name (:class:`~explainreg.registry.Registry`; each described by its ``help``).
STUDIES: Registry[Study] = Registry("study", hint=" (explainreg study --help lists them)")


def register_study(name: str, help: str, add_arguments, run) -> Study:
    """Register the study ``name`` in :data:`STUDIES` (``explainreg study NAME`` runs it).

    Example:
        >>> s = register_study("demo-study", "does nothing", lambda parser: None, lambda args: 0)
        >>> STUDIES["Demo_Study"] is s, STUDIES.describe()["demo-study"]
        (True, 'does nothing')
        >>> _ = STUDIES.pop("demo-study")
    """
    return STUDIES.register(name, Study(name, help, add_arguments, run))


def discover() -> dict[str, Study]:
    """Import every study module so that it registers itself."""
    for info in pkgutil.iter_modules(__path__):
        if not info.name.startswith("_"):
            importlib.import_module(f"{__name__}.{info.name}")
    return STUDIES
