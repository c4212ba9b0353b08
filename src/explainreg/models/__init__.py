"""Models: the registry of named networks (:data:`MODELS`, :func:`build_model`) and the reference
networks, in five modules: :mod:`~explainreg.models.reference` (the seeds' image nets),
:mod:`~explainreg.models.backbones` (ResNet-18- and VGG-shaped nets), :mod:`~explainreg.models.sequence`
(time-series classifiers over B×C×T), :mod:`~explainreg.models.tabular` (an MLP over features B×F) and
:mod:`~explainreg.models.text` (text classifiers over token ids B×T).

Any user ``nn.Module`` that maps a batch ``x`` to logits ``B×K`` works with the rest of explainreg;
``build_model("module:callable")`` builds one by its import path.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from torch import nn

from ..registry import Registry
from .backbones import ResNet, VGG, resnet18, vgg_small
from .reference import cdep_colormnist_net, cdep_decoymnist_net, cnn3b, cnn4b, sgt_mnist_cnn
from .sequence import LSTMClassifier, TCNClassifier, TransformerClassifier
from .tabular import mlp
from .text import TextCNNClassifier, TextLSTMClassifier, TextTransformerClassifier, cdep_lstm

#: the networks by name (:class:`~explainreg.registry.Registry`): ``MODELS.register(name, builder)`` makes
#: ``builder(**kwargs) -> nn.Module`` available to :func:`build_model`, run folders and the command line.
MODELS: Registry[Callable[..., nn.Module]] = Registry("model", hint=", or a 'module:callable' path to your own")
for _name, _builder in (("cnn3b", cnn3b), ("cnn4b", cnn4b), ("cdep_colormnist", cdep_colormnist_net),
                        ("cdep_decoymnist", cdep_decoymnist_net), ("sgt_mnist_cnn", sgt_mnist_cnn),
                        ("lstm", LSTMClassifier), ("tcn", TCNClassifier), ("transformer", TransformerClassifier),
                        ("resnet18", resnet18), ("vgg_small", vgg_small), ("cdep_lstm", cdep_lstm),
                        ("text_lstm", TextLSTMClassifier), ("text_cnn", TextCNNClassifier),
                        ("text_transformer", TextTransformerClassifier), ("mlp", mlp)):
    MODELS.register(_name, _builder)


class ModelImportError(ValueError):
    """A ``module:callable`` model path does not import or does not name a callable (a ValueError).

    Example::

        >>> from explainreg.models import ModelImportError, import_callable
        >>> try:
        ...     import_callable("explainreg.models:no_such_net")
        ... except ModelImportError as exc:
        ...     print(exc)
        model path 'explainreg.models:no_such_net': 'explainreg.models' has no attribute 'no_such_net'
    """


def import_callable(path: str, search_path: str | None = None) -> Callable[..., nn.Module]:
    """The callable named by ``"package.module:attr.sub"`` (a user's model class or builder).

    Args:
        path: ``"module:attr"``, the attribute path dotted (``"mypkg.nets:Zoo.resnet"``).
        search_path: a folder tried (prepended to ``sys.path``) when the module does not import
            as it is, e.g. the folder a run recorded when it was trained.

    Returns:
        The callable.

    Raises:
        ModelImportError: the path is not ``module:callable``, the module does not import, the
            attribute is missing or not callable.

    Example::

        >>> from explainreg.models import cnn3b, import_callable
        >>> import_callable("explainreg.models:cnn3b") is cnn3b
        True
        >>> import_callable("explainreg.models")
        Traceback (most recent call last):
        ...
        explainreg.models.ModelImportError: model path 'explainreg.models' must be 'module:callable', ...
    """
    import importlib
    import sys

    module_name, colon, attr = path.partition(":")
    if not colon or not module_name or not attr:
        raise ModelImportError(f"model path {path!r} must be 'module:callable', e.g. 'mypkg.nets:ResNet50'")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        if search_path is None or not Path(search_path).is_dir():
            raise ModelImportError(f"model path {path!r}: module {module_name!r} does not import ({exc}); put its "
                                   "folder on PYTHONPATH or install it") from exc
        sys.path.insert(0, str(search_path))
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc2:
            raise ModelImportError(f"model path {path!r}: module {module_name!r} does not import, also from "
                                   f"{search_path} ({exc2}); put its folder on PYTHONPATH") from exc2
    except Exception as exc:  # the user's module raised while importing
        raise ModelImportError(f"model path {path!r}: importing {module_name!r} failed: "
                               f"{type(exc).__name__}: {exc}") from exc
    obj: Any = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise ModelImportError(f"model path {path!r}: {module_name!r} has no attribute {attr!r}")
        obj = getattr(obj, part)
    if not callable(obj):
        raise ModelImportError(f"model path {path!r}: {attr!r} is a {type(obj).__name__}, not a callable "
                               "that builds an nn.Module")
    return obj


def module_folder(path: str) -> str | None:
    """The ``sys.path`` entry from which the module of a ``module:callable`` path was imported.

    Runs record it so that :func:`build_model` can find the user's module again (``search_path``).

    Args:
        path: ``"module:callable"`` (the module is imported).

    Returns:
        The folder above the top-level package, or None for a module without a file.

    Example::

        >>> import os, tempfile
        >>> from explainreg.models import build_model, module_folder
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     with open(os.path.join(folder, "my_nets_c2.py"), "w") as f:
        ...         _ = f.write("from torch import nn\\ndef tiny(k=2):\\n    return nn.Linear(3, k)\\n")
        ...     net = build_model("my_nets_c2:tiny", search_path=folder, k=4)
        ...     print(net, module_folder("my_nets_c2:tiny") == os.path.realpath(folder))
        Linear(in_features=3, out_features=4, bias=True) True
        >>> import sys; sys.path.remove(folder); del sys.modules["my_nets_c2"]   # (undo, for this example only)
    """
    import importlib

    module = importlib.import_module(path.partition(":")[0])
    file = getattr(module, "__file__", None)
    if file is None:
        return None
    top = Path(file).resolve().parent
    for _ in range(module.__name__.count(".") + (Path(file).name == "__init__.py")):
        top = top.parent
    return str(top)


def build_model(name: str, search_path: str | None = None, **kwargs) -> nn.Module:
    """Build a registered reference network by name (see ``MODELS``), or a user's model from a
    ``"module:callable"`` path (called with ``kwargs``; must return an ``nn.Module``).

    Args:
        name: a key of ``MODELS`` (case-insensitive) or ``"module:callable"``.
        search_path: for a path, a folder tried when the module does not import (:func:`import_callable`).
        **kwargs: passed to the builder (``num_classes``, ``in_channels``, ...).

    Returns:
        The model.

    Raises:
        ValueError: an unknown name (the message lists the available ones).
        ModelImportError: the path does not import, or its callable returns no ``nn.Module``.

    Example::

        >>> import torch
        >>> from explainreg.models import build_model
        >>> build_model("cnn3b", num_classes=4)(torch.zeros(1, 1, 28, 28)).shape
        torch.Size([1, 4])
        >>> build_model("torch.nn:Linear", in_features=3, out_features=2)
        Linear(in_features=3, out_features=2, bias=True)
        >>> build_model("resnet50")
        Traceback (most recent call last):
        ...
        explainreg.registry.UnknownNameError: unknown model 'resnet50'; available: ...
    """
    if ":" in name:
        model = import_callable(name, search_path)(**kwargs)
        if not isinstance(model, nn.Module):
            raise ModelImportError(f"model path {name!r} returned a {type(model).__name__}, not an nn.Module")
        return model
    return MODELS[name](**kwargs)


def count_parameters(model: nn.Module) -> int:
    """The number of parameter entries of ``model`` (trainable or not).

    Args:
        model: any module.

    Returns:
        Σ numel over ``model.parameters()``.

    Example::

        >>> from torch import nn
        >>> from explainreg.models import count_parameters
        >>> count_parameters(nn.Linear(4, 3))                # 4·3 weights + 3 biases
        15
    """
    return sum(p.numel() for p in model.parameters())


__all__ = ["MODELS", "LSTMClassifier", "ModelImportError", "ResNet", "TCNClassifier", "TextCNNClassifier",
           "TextLSTMClassifier", "TextTransformerClassifier", "TransformerClassifier", "VGG", "build_model",
           "cdep_colormnist_net", "cdep_decoymnist_net", "cdep_lstm", "cnn3b", "cnn4b", "count_parameters",
           "import_callable", "mlp", "module_folder", "resnet18", "sgt_mnist_cnn", "vgg_small"]
