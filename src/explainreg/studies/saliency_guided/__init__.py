"""``explainreg study saliency-guided``: Saliency Guided Training on MNIST and its masked-accuracy test
(documentation: methods/saliency-guided, methods/evaluation; the SGT code).

Trains the regular and the saliency-guided PyTorch-examples CNN (Adadelta lr 1.0, batch 512,
normalised inputs, best epoch on a validation split), then, for each attribution method, replaces
the d ∈ {0, 10, …, 90} % most salient pixels of each test image by its background pixel and
records the accuracy. A faithful saliency makes the accuracy fall fast (small area under the
curve); SGT should fall faster than the regular model and than random masking.

Outputs in ``--out``: ``regular/`` and ``guided/`` run folders (cached and resumed),
``masked_accuracy.csv`` (model × method × drop), ``curve_areas.csv``, ``masked_accuracy.png``
(one panel per method), ``saliency_maps.png`` (both models side by side) and ``summary.md`` with its
HTML twin ``summary.html``.

The package: ``settings`` (:class:`SGTSettings`), ``training`` (data, objectives, the run folders),
``evaluation`` (the ``LogProb`` wrapper, attributions, cached curves), ``report`` (tables, figures,
summary), ``study`` (:func:`run_saliency_guided`, the Python API); this module holds the command line.
"""
from __future__ import annotations

import argparse
import sys

from ...penalties.saliency_guided import ORDERS
from .. import register_study
from ..skeleton import settings_from_namespace
from .evaluation import LogProb, attributions_for, evaluate_model
from .report import plot_curves, plot_maps, write_summary, write_tables
from .settings import DROPS, LABELS, METHODS, MODEL, MODELS, NAME, QUICK, SGTSettings
from .study import run_saliency_guided
from .training import SGT_KEYS, TRAIN_KEYS, load_data, objective_for, train_model

__all__ = ["DROPS", "LABELS", "METHODS", "MODEL", "MODELS", "NAME", "QUICK", "SGT_KEYS", "SGTSettings", "TRAIN_KEYS",
           "LogProb", "add_arguments", "attributions_for", "evaluate_model", "load_data",
           "objective_for", "plot_curves", "plot_maps", "run", "run_saliency_guided", "settings_from",
           "train_model", "write_summary", "write_tables"]


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", default="runs/saliency-guided", metavar="DIR", help="study folder (runs, tables, figures)")
    p.add_argument("--data-root", default=None, metavar="PATH", help="folder holding mnist/ IDX files "
                                                                     "(default: $EXPLAINREG_DATA or the user cache)")
    p.add_argument("--no-download", action="store_true", help="never try to download missing data")
    p.add_argument("--epochs", type=int, default=None, help="training epochs per model (default 15; 1 with --quick; "
                                                            "the seed allows up to 100)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quick", action="store_true",
                   help=f"a few-minute CPU run: {QUICK['epochs']} epoch on {QUICK['limit_train']} train images, "
                        f"{QUICK['eval_images']} test images, {QUICK['ig_steps']} IG steps")
    p.add_argument("--fraction", type=float, default=0.5, help="share of features masked by SGT (0.5, the paper)")
    p.add_argument("--by", default="abs", choices=ORDERS, help="SGT ranking: |g| (paper) or signed g (seed code)")
    p.add_argument("--fill", default="random", help="SGT mask values: 'random' (U(min x, max x)) or a number")
    p.add_argument("--weight", type=float, default=1.0, help="λ of the KL term (1, the paper)")
    p.add_argument("--batch-size", type=int, default=512)
    p.add_argument("--lr", type=float, default=1.0, help="Adadelta learning rate (1.0)")
    p.add_argument("--val-fraction", type=float, default=0.1, help="share of the train set held out for selection")
    p.add_argument("--patience", type=int, default=None, help="stop after this many epochs without validation gain")
    p.add_argument("--limit-train", type=int, default=None, metavar="N", help="use the first N train images")
    p.add_argument("--limit-test", type=int, default=None, metavar="N",
                   help="use the first N test images (for the per-epoch test accuracy and the curves)")
    p.add_argument("--eval-images", type=int, default=None, metavar="N",
                   help="test images for the masked-accuracy curves (default: all 10,000; 200 with --quick)")
    p.add_argument("--methods", default=",".join(METHODS),
                   help=f"comma list of attribution methods ({','.join(METHODS)})")
    p.add_argument("--explain", default="log_prob", choices=("log_prob", "logit"),
                   help="attribute log p_y (the seed's log_softmax output, default) or the logit z_y")
    p.add_argument("--ig-steps", type=int, default=None, help="integrated-gradients steps (50; 16 with --quick)")
    p.add_argument("--models", default=",".join(MODELS), help="which models to train/evaluate (regular,guided)")
    p.add_argument("--train-only", action="store_true", help="train (or resume) the models and stop")
    p.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda, ...")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")


def settings_from(args: argparse.Namespace) -> SGTSettings:
    """The :class:`SGTSettings` of a parsed command line (``--quick`` fills what was not given); checked early."""
    return settings_from_namespace(SGTSettings, args, download=not args.no_download,
                                   progress=not args.no_progress and sys.stderr.isatty())


def run(args: argparse.Namespace) -> int:
    """``explainreg study saliency-guided``: :func:`run_saliency_guided` with the command line's settings."""
    run_saliency_guided(settings_from(args))
    return 0


register_study(NAME, "Saliency Guided Training on MNIST and its masked-accuracy curves (SGT, documentation: methods/saliency-guided)",
               add_arguments, run)
