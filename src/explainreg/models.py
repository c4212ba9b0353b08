"""Reference networks of the seeds, built from standard modules so every tool here works on them.

Any user ``nn.Module`` that maps a batch ``x`` to logits ``B×K`` works with the rest of explainreg;
these are only the architectures the published studies used: CNN3b and CNN4b of the
*xai-constrained-losses* code, CDEP's ColorMNIST and DecoyMNIST nets (Rieger, Singh, Murdoch & Yu 2020,
"Interpretations are useful: penalizing explanations to align neural networks with prior knowledge")
and SGT's MNIST net (Ismail, Corrada Bravo & Feizi 2021, "Improving deep learning interpretability by
saliency guided training").
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from torch import nn


def cnn3b(num_classes: int = 10, in_channels: int = 1) -> nn.Sequential:
    """CNN3b (xai-constrained-losses, MNIST): conv(8,5×5,pad 2)–ReLU–pool–conv(16,5×5,pad 2)–ReLU–pool–
    FC(784→10).

    Args:
        num_classes: logits K.
        in_channels: input channels C.

    Shape:
        B×C×28×28 → B×K.

    Returns:
        An ``nn.Sequential`` (11,274 parameters for K = 10, C = 1).

    Example::

        >>> import torch
        >>> from explainreg.models import cnn3b, count_parameters
        >>> net = cnn3b()
        >>> tuple(net(torch.zeros(2, 1, 28, 28)).shape), count_parameters(net)
        ((2, 10), 11274)
    """
    return nn.Sequential(
        nn.Conv2d(in_channels, 8, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(8, 16, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(16 * 7 * 7, num_classes),
    )


def cnn4b(num_classes: int = 10, in_channels: int = 1) -> nn.Sequential:
    """CNN4b (xai-constrained-losses, Fashion-MNIST): conv(32,3×3,pad 2)–BN–ReLU–conv(64,3×3,pad 2)–BN–
    ReLU–pool–dropout .15–FC(16384→32)–dropout .25–FC(32→10).

    Args:
        num_classes: logits K.
        in_channels: input channels C.

    Shape:
        B×C×28×28 → B×K.

    Returns:
        An ``nn.Sequential``.

    Example::

        >>> import torch
        >>> from explainreg.models import cnn4b
        >>> tuple(cnn4b(num_classes=3).eval()(torch.zeros(2, 1, 28, 28)).shape)
        (2, 3)
    """
    return nn.Sequential(
        nn.Conv2d(in_channels, 32, 3, padding=2), nn.BatchNorm2d(32), nn.ReLU(),
        nn.Conv2d(32, 64, 3, padding=2), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Dropout(0.15), nn.Linear(64 * 16 * 16, 32), nn.Dropout(0.25), nn.Linear(32, num_classes),
    )


MODELS: dict[str, Callable[..., nn.Module]] = {"cnn3b": cnn3b, "cnn4b": cnn4b}


def register_model(name: str, builder: Callable[..., nn.Module]) -> None:
    """Make ``builder`` available to ``build_model`` and the command line under ``name``.

    Args:
        name: the model's name (case-insensitive; an existing name is replaced).
        builder: ``builder(**kwargs) -> nn.Module``.

    Example::

        >>> import torch; from torch import nn
        >>> from explainreg.models import MODELS, build_model, register_model
        >>> register_model("tiny_mlp", lambda num_classes=2: nn.Sequential(nn.Flatten(), nn.Linear(4, num_classes)))
        >>> build_model("Tiny_MLP", num_classes=3)(torch.zeros(1, 2, 2)).shape
        torch.Size([1, 3])
        >>> del MODELS["tiny_mlp"]                          # (undo, for this example only)
    """
    MODELS[name.lower()] = builder


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
        ValueError: unknown model 'resnet50'; available: ...
    """
    if ":" in name:
        model = import_callable(name, search_path)(**kwargs)
        if not isinstance(model, nn.Module):
            raise ModelImportError(f"model path {name!r} returned a {type(model).__name__}, not an nn.Module")
        return model
    try:
        builder = MODELS[name.lower()]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; available: {', '.join(sorted(MODELS))}, or a "
                         "'module:callable' path to your own") from None
    return builder(**kwargs)


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


def cdep_colormnist_net(num_classes: int = 10, in_channels: int = 3) -> nn.Sequential:
    """CDEP's ColorMNIST net (Rieger et al. 2020): conv(20,5)–ReLU–pool–conv(50,5)–ReLU–pool–
    FC(800→500)–ReLU–FC(500→10).

    No padding; returns logits (CDEP's log_softmax is folded into the cross-entropy).

    Args:
        num_classes: logits K.
        in_channels: input channels C (3: colour).

    Shape:
        B×C×28×28 → B×K.

    Returns:
        An ``nn.Sequential``.

    Example::

        >>> import torch
        >>> from explainreg.models import cdep_colormnist_net
        >>> cdep_colormnist_net()(torch.zeros(2, 3, 28, 28)).shape
        torch.Size([2, 10])
    """
    return nn.Sequential(
        nn.Conv2d(in_channels, 20, 5), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(20, 50, 5), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(4 * 4 * 50, 500), nn.ReLU(), nn.Linear(500, num_classes),
    )


def cdep_decoymnist_net(num_classes: int = 10, in_channels: int = 1) -> nn.Sequential:
    """CDEP's DecoyMNIST net (Rieger et al. 2020): as the ColorMNIST net with 1 input channel and FC(800→256).

    Args:
        num_classes: logits K.
        in_channels: input channels C.

    Shape:
        B×C×28×28 → B×K.

    Returns:
        An ``nn.Sequential``.

    Example::

        >>> import torch
        >>> from explainreg.models import cdep_decoymnist_net
        >>> net = cdep_decoymnist_net()
        >>> net(torch.zeros(2, 1, 28, 28)).shape, net[7]
        (torch.Size([2, 10]), Linear(in_features=800, out_features=256, bias=True))
    """
    return nn.Sequential(
        nn.Conv2d(in_channels, 20, 5), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(20, 50, 5), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(4 * 4 * 50, 256), nn.ReLU(), nn.Linear(256, num_classes),
    )


register_model("cdep_colormnist", cdep_colormnist_net)
register_model("cdep_decoymnist", cdep_decoymnist_net)


def sgt_mnist_cnn(num_classes: int = 10, in_channels: int = 1) -> nn.Sequential:
    """SGT's MNIST net (Ismail, Corrada Bravo & Feizi 2021), the PyTorch-examples CNN: conv(32,3)–ReLU–
    conv(64,3)–ReLU–pool–dropout .25–FC(9216→128)–ReLU–dropout .5–FC(128→10). Returns logits (SGT's
    log_softmax is folded into the cross-entropy and the KL term).

    Args:
        num_classes: logits K.
        in_channels: input channels C.

    Shape:
        B×C×28×28 → B×K.

    Returns:
        An ``nn.Sequential``.

    Example::

        >>> import torch
        >>> from explainreg.models import sgt_mnist_cnn
        >>> sgt_mnist_cnn().eval()(torch.zeros(2, 1, 28, 28)).shape
        torch.Size([2, 10])
    """
    return nn.Sequential(
        nn.Conv2d(in_channels, 32, 3), nn.ReLU(), nn.Conv2d(32, 64, 3), nn.ReLU(), nn.MaxPool2d(2),
        nn.Dropout(0.25), nn.Flatten(), nn.Linear(64 * 12 * 12, 128), nn.ReLU(), nn.Dropout(0.5),
        nn.Linear(128, num_classes),
    )


register_model("sgt_mnist_cnn", sgt_mnist_cnn)

from .sequence_models import LSTMClassifier, TCNClassifier, TransformerClassifier  # noqa: E402  (time series, B×C×T)

register_model("lstm", LSTMClassifier)
register_model("tcn", TCNClassifier)
register_model("transformer", TransformerClassifier)

from .backbones import ResNet, VGG, resnet18, vgg_small  # noqa: E402  (deep nets: ResNet-18-, VGG-shaped)

register_model("resnet18", resnet18)
register_model("vgg_small", vgg_small)

from . import text_models  # noqa: E402  (text classifiers over token ids B×T)

register_model("cdep_lstm", text_models.cdep_lstm)
register_model("text_lstm", text_models.LSTMClassifier)
register_model("text_cnn", text_models.CNNClassifier)
register_model("text_transformer", text_models.TransformerClassifier)


__all__ = ["MODELS", "ModelImportError", "build_model", "cdep_colormnist_net", "cdep_decoymnist_net", "cnn3b",
           "cnn4b", "count_parameters", "import_callable", "module_folder", "register_model", "sgt_mnist_cnn"]
