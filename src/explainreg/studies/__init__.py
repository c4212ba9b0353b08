"""Studies: named, reproducible grids of runs with reports. Each module of this package registers
its studies with :func:`register_study`; ``explainreg study NAME`` discovers them."""
from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass
from typing import Callable

import argparse

__all__ = ["STUDIES", "Study", "discover", "register_study"]


@dataclass(frozen=True)
class Study:
    """``add_arguments(parser)`` declares the study's options; ``run(args) -> int`` runs it."""

    name: str
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]


STUDIES: dict[str, Study] = {}


def register_study(name: str, help: str, add_arguments, run) -> Study:
    STUDIES[name] = Study(name, help, add_arguments, run)
    return STUDIES[name]


def discover() -> dict[str, Study]:
    """Import every study module so that it registers itself."""
    for info in pkgutil.iter_modules(__path__):
        if not info.name.startswith("_"):
            importlib.import_module(f"{__name__}.{info.name}")
    return STUDIES
