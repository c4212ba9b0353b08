"""Reference networks of the seeds, built from standard modules so every tool here works on them.

Any user ``nn.Module`` that maps a batch ``x`` to logits ``B×K`` works with the rest of explainreg;
these are only the architectures the published studies used: CNN3b and CNN4b of the
*xai-constrained-losses* code, CDEP's ColorMNIST and DecoyMNIST nets (Rieger, Singh, Murdoch & Yu 2020,
"Interpretations are useful: penalizing explanations to align neural networks with prior knowledge")
and SGT's MNIST net (Ismail, Corrada Bravo & Feizi 2021, "Improving deep learning interpretability by
saliency guided training").
"""
from __future__ import annotations

from torch import nn

__all__ = ["cdep_colormnist_net", "cdep_decoymnist_net", "cnn3b", "cnn4b", "sgt_mnist_cnn"]


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
        >>> from explainreg.models.reference import cnn4b
        >>> tuple(cnn4b(num_classes=3).eval()(torch.zeros(2, 1, 28, 28)).shape)
        (2, 3)
    """
    return nn.Sequential(
        nn.Conv2d(in_channels, 32, 3, padding=2), nn.BatchNorm2d(32), nn.ReLU(),
        nn.Conv2d(32, 64, 3, padding=2), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Dropout(0.15), nn.Linear(64 * 16 * 16, 32), nn.Dropout(0.25), nn.Linear(32, num_classes),
    )


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
        >>> from explainreg.models.reference import cdep_colormnist_net
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
        >>> from explainreg.models.reference import cdep_decoymnist_net
        >>> net = cdep_decoymnist_net()
        >>> net(torch.zeros(2, 1, 28, 28)).shape, net[7]
        (torch.Size([2, 10]), Linear(in_features=800, out_features=256, bias=True))
    """
    return nn.Sequential(
        nn.Conv2d(in_channels, 20, 5), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(20, 50, 5), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(4 * 4 * 50, 256), nn.ReLU(), nn.Linear(256, num_classes),
    )


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
        >>> from explainreg.models.reference import sgt_mnist_cnn
        >>> sgt_mnist_cnn().eval()(torch.zeros(2, 1, 28, 28)).shape
        torch.Size([2, 10])
    """
    return nn.Sequential(
        nn.Conv2d(in_channels, 32, 3), nn.ReLU(), nn.Conv2d(32, 64, 3), nn.ReLU(), nn.MaxPool2d(2),
        nn.Dropout(0.25), nn.Flatten(), nn.Linear(64 * 12 * 12, 128), nn.ReLU(), nn.Dropout(0.5),
        nn.Linear(128, num_classes),
    )
