"""``explainreg evaluate RUN_DIR``: the attribution metrics of a trained run, written into its folder
(``metrics.json``, ``metrics.csv`` and one PNG per curve) or ``--output DIR``.

The output folder is checked for writability before anything is computed; should writing still
fail afterwards, the results go to a fallback folder under the system's temporary directory and
the command says where (nothing computed is lost). The test data are those the run recorded
(the bundled subset when it trained on it), unless ``--data-root`` says otherwise."""
from __future__ import annotations

import inspect
import json
import os
import signal
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path

from .._validation import nonnegative_int, positive_int

from ..attribution import ATTRIBUTION_METHODS
from ..inputs import MUST_NOT_USE, mask_for
from ..metrics import LOCALISATION_METRICS, METRICS, SHORTCUT_METRICS
from ..metrics._core import MAX_BATCH
from ..runs import CHECKPOINT
from ._common import HelpFormatter, add_threads_argument, set_threads
from ._metrics_store import ResultStore, file_fingerprint
from ..attribution import attribute, resolve_method
from ..data import ENV_VAR, load_dataset
from ..data.folder import folder_from_settings, random_subset
from ..data.shortcuts import shortcut_for
from ..data.sources import BUNDLED_DIR
from ..metrics import accepted_settings, build_metric
from ..report import curve_figure
from ..runs import CONFIG, load_run, read_config
from ..training import distributed, resolve_device

__all__ = ["DEFAULT_METRICS", "check_writable", "data_root_of", "register", "run"]

DEFAULT_METRICS = "morf,faithfulness,complexity,roar,gaussian,blocks"


def register(subparsers) -> None:
    """Add ``explainreg evaluate RUN_DIR`` to the command line's ``subparsers``."""
    p = subparsers.add_parser("evaluate", help="evaluate the attributions of a trained run",
                              formatter_class=HelpFormatter, description="Compute attribution metrics (documentation: methods/evaluation) for the model of RUN_DIR on "
                                          "its test set; writes metrics.json, metrics.csv and PNG curves there.")
    p.add_argument("run_dir", metavar="RUN_DIR")
    plain = [n for n, cls in METRICS.items()  # the metrics of attributions alone (no mask, ground truth or tokens)
             if cls.mask_meaning is None and not cls.needs_ground_truth and "image" in cls.layouts]
    p.add_argument("--metrics", default=DEFAULT_METRICS,
                   help=f"comma-separated metric names (default: the seed's six tests, {DEFAULT_METRICS}): "
                        f"{', '.join(plain)}; with annotation masks (decoy-mnist, decoy-fmnist, image folders "
                        f"with masks): {', '.join(LOCALISATION_METRICS)} (wrong_reason: masks of what the model "
                        f"must not use, the others: of where the evidence is); behavioural, with masks of what the "
                        f"model must not use (added for such data; documentation: methods/shortcuts): "
                        f"{', '.join(SHORTCUT_METRICS)}")
    p.add_argument("--attribution", default="saliency",
                   help=f"comma-separated attribution methods ({', '.join(ATTRIBUTION_METHODS)})")
    p.add_argument("--limit", type=positive_int, default=None,
                   help="evaluate N test images only: a seeded subset stratified by label (the same N each time)")
    p.add_argument("--data-root", default=None, help="folder holding mnist/ or fashion-mnist/ (default: the run's)")
    p.add_argument("--batch-size", type=positive_int, default=250, help="images per update")
    p.add_argument("--max-batch", type=positive_int, default=MAX_BATCH,
                   help="cap on rows per forward pass; chunks are sized by the "
                        "model's activation memory below it")
    p.add_argument("--roar-epochs", type=positive_int, default=6, help="ROAR retraining epochs (the seed's)")
    p.add_argument("--roar-batch-size", type=positive_int, default=30, help="ROAR retraining batch size (the seed's)")
    p.add_argument("--roar-train-limit", type=positive_int, default=None,
                   help="ROAR: use N train images (a seeded subset stratified by label)")
    p.add_argument("--convention", default="explainreg", choices=("explainreg", "seed", "quantus"),
                   help="seed: the seed's quirks (complexity log(p+0.01), Gaussian +1 shift, masked accuracy k≥1); "
                        "quantus: Quantus 0.6's form where a metric has one; each metric takes it where it has "
                        "that convention")
    p.add_argument("--seed", type=nonnegative_int, default=0,
                   help="seed of every random draw (random attributions, perturbations, ROAR's retraining)")
    p.add_argument("--device", default=None, help="cpu, cuda, ... (default: cuda when available)")
    add_threads_argument(p)
    p.add_argument("--output", metavar="DIR", default=None,
                   help="write metrics.json, metrics.csv and the plots here (default: RUN_DIR)")
    p.add_argument("--mask-meaning", default=None, choices=("must_not_use", "evidence"),
                   help="what the data's masks mark when the data do not say (documentation: guide/concepts): "
                        "must_not_use (a "
                        "shortcut; for wrong_reason and the behavioural metrics flip_rate, shortcut_reliance, "
                        "group_accuracy, decision_share) or evidence (the object; for pointing_game, "
                        "attribution_localisation, top_k_intersection, relevance_rank_accuracy, "
                        "relevance_mass_accuracy, localisation_auc). decoy-mnist / decoy-fmnist and image folders "
                        "given to `explainreg train --masks` mark what the model must not use")
    p.add_argument("--mask-convert", default=None, choices=("complement",),
                   help="give a metric defined for the other meaning the complement of the masks (1 − m), the one "
                        "stated conversion; without it such a metric is refused")
    p.add_argument("--resume", action="store_true",
                   help="skip the results already in the output's metrics.json with the same attribution, metric "
                        "and settings (e.g. after an interruption); without it they are computed again and replaced")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def _settings(name: str, args, **available) -> dict:
    """What metric ``name``'s constructor takes of the command line's settings (the registry reads its
    signature): ``max_batch``, ``seed``, ``convention`` (``--convention``; only metrics with that
    convention take it) and the ``available`` extras."""
    offered = {"max_batch": args.max_batch, "seed": args.seed, "convention": args.convention,
               **available}
    return accepted_settings(name, offered)


def run(args) -> int:
    """Compute the asked metrics of the run's model for each attribution method on its test data and
    write ``metrics.json``, ``metrics.csv`` and one figure per curve metric (:func:`explainreg.report.curve_figure`,
    the study reports' figure); returns 0, or 1 when the results had to go to a fallback folder."""
    import torch
    from tqdm.auto import tqdm

    set_threads(args.threads)
    run_dir = Path(args.run_dir)
    output = Path(args.output) if args.output else run_dir
    requested = [m.strip() for m in args.metrics.split(",") if m.strip()]
    # localisation / wrong-reason metrics need the data set's annotation masks (documentation: methods/xil)
    mask_names = [LOCALISATION_METRICS.resolve(m) for m in requested if m in LOCALISATION_METRICS]
    names = [METRICS.resolve(m) for m in requested if m not in LOCALISATION_METRICS]
    # the behavioural shortcut metrics (documentation: methods/shortcuts) take the model and the must-not-use masks
    mask_names += [n for n in names if n in SHORTCUT_METRICS]
    names = [n for n in names if n not in SHORTCUT_METRICS]
    methods = [resolve_method(m) for m in args.attribution.split(",") if m.strip()]
    if not (names or mask_names) or not methods:
        raise ValueError("--metrics and --attribution must each name at least one item")
    if args.limit is not None and args.limit < 1:
        raise ValueError(f"--limit must be a positive number of images, got {args.limit}")
    device = resolve_device(args.device)
    if distributed.wanted():  # torchrun: each rank takes every world-th batch; metrics sync in compute
        device = distributed.init_from_env(device)
    rank, world = distributed.rank_world()
    model, config = _load_model(run_dir, device)
    check_writable(output)  # before hours of metrics, not after
    dataset, normalize = config.get("dataset"), config.get("normalize", False)
    folder = config.get("image_folder")  # trained with --data folder:PATH: read its test split into memory
    load_split = load_dataset
    if folder is not None:
        def load_split(_dataset, split, _root=None, *, limit=None, **_):
            return random_subset(folder_from_settings(folder, split), limit, folder.get("split_seed", 0)).to_memory()
    elif dataset is None or normalize is None:
        raise ValueError(f"{run_dir / 'config.json'} does not say which data set (or which normalisation) the model "
                         "was trained on; pass run_info={'dataset': 'mnist', 'normalize': False} to train(...)")
    root, allow_bundled = data_root_of(config, args.data_root) if folder is None else (None, False)
    test = load_split(dataset, "test", root, normalize=normalize, limit=args.limit, allow_bundled=allow_bundled)
    if "bundled" in test.source:
        print(f"evaluating on the bundled subset ({test.source}), as the run was trained on it", file=sys.stderr)
    x_all, y_all = test.x.to(device), test.y.to(device)
    args.shortcut_data = dataset  # whose shortcut hook shortcut_reliance plants (data.shortcuts.shortcut_for)
    masks, meaning = test.extras.get("mask"), _mask_meaning(test, folder, args)
    if masks is not None and meaning == MUST_NOT_USE:  # the behavioural evidence beside the explanation metrics
        mask_names += [n for n in _behaviour_metrics(dataset) if n not in mask_names]
    masks = _masks_per_metric(mask_names, masks, meaning, args, f"the run's data set ({test.source})") \
        if masks is not None else None
    if mask_names and masks is None:
        raise ValueError(f"{', '.join(mask_names)} compare attributions with annotation masks, and the run's data set "
                         f"({dataset}) has none; evaluate a run trained on a data set with masks (decoy-mnist, "
                         "decoy-fmnist, an image folder with --masks)")
    attribution_free = [n for n in names if not METRICS[n].needs_attributions]
    attribution_free += [n for n in mask_names if n in SHORTCUT_METRICS]
    per_method = [n for n in names if METRICS[n].needs_attributions]
    per_method += [n for n in mask_names if n not in SHORTCUT_METRICS]
    train = None
    if "roar" in per_method:
        train = load_split(dataset, "train", root, normalize=normalize, limit=args.roar_train_limit,
                           allow_bundled=allow_bundled)
    jobs = [(None, attribution_free)] if attribution_free else []
    jobs += [(m, per_method) for m in methods] if per_method else []
    header = {"run_dir": str(run_dir), "dataset": dataset, "n_images": len(x_all), "metrics": names + mask_names,
              "attribution": methods, "convention": args.convention, "seed": args.seed}
    store = ResultStore(output, header)
    if args.resume and not store.earlier and rank == 0:
        print(f"--resume: {output / 'metrics.json'} holds no earlier results; computing every part", file=sys.stderr)
    checkpoint = file_fingerprint(run_dir / CHECKPOINT)
    bar = tqdm(total=sum(len(x_all) for _ in jobs), desc="evaluate", unit="img", disable=args.no_progress or rank > 0)
    results: dict[str, dict] = {}
    try:
        with _sigterm_as_interrupt():
            for method, metric_names in jobs:
                label = method or "none"
                keys = {n: _result_settings(args, n, checkpoint) for n in metric_names}
                todo = [n for n in metric_names if not (args.resume and store.has(label, n, keys[n]))]
                if len(todo) < len(metric_names) and rank == 0:
                    print(f"--resume: {label}: {', '.join(n for n in metric_names if n not in todo)} already in "
                          f"{output / 'metrics.json'}; skipped", file=sys.stderr)
                out = _evaluate_part(args, model, method, todo, x_all, y_all, masks, train, rank, world, device, bar)
                for n, r in out.items():
                    results.setdefault(label, {})[n] = r.to_dict()
                    store.put(label, n, keys[n], results[label][n])
                if out and rank == 0:
                    store.write()  # each finished part is on disk before the next starts
    except KeyboardInterrupt:
        bar.close()
        finished = len(store.added) + len(store.replaced)
        if rank == 0 and finished:
            print(f"\ninterrupted; {finished} finished results are saved in "
                  f"{(store.fallback or output) / 'metrics.json'}. Rerun the same command with --resume to compute "
                  "only the missing ones", file=sys.stderr)
        elif rank == 0:
            print("\ninterrupted before the first result was finished; nothing was written", file=sys.stderr)
        return 130
    bar.close()
    if rank > 0:  # every rank computed the same synced results; rank 0 prints and writes them
        return 0
    print(json.dumps({m: {n: round(r["value"], 4) for n, r in rs.items()} for m, rs in results.items()}, indent=1))
    written = store.write()
    plots = _plot_curves(store.latest(), written)
    print(store.report(), file=sys.stderr)
    if store.fallback is not None:
        print(f"could not write into {output} ({store.error}); the results are safe in {written}: "
              f"{written / 'metrics.json'}, {written / 'metrics.csv'} and {len(plots)} plots", file=sys.stderr)
        return 1
    print(f"wrote {written / 'metrics.json'}, {written / 'metrics.csv'} and {len(plots)} plots")
    del torch
    return 0


def _load_model(run_dir: Path, device):
    """The run's model and config (:func:`explainreg.runs.load_run`); a checkpoint whose weights do not
    fit the model that ``config.json`` describes is a ``ValueError`` saying which, not torch's traceback."""
    try:
        return load_run(run_dir, device=device)
    except TypeError as exc:
        if "argument" not in str(exc):
            raise
        config = read_config(run_dir)
        raise ValueError(f"the model {config.get('model')!r} cannot be built with the model_kwargs "
                         f"{config.get('model_kwargs', {})} of {run_dir / CONFIG} ({exc}); put there the keyword "
                         "arguments the model was trained with") from None
    except RuntimeError as exc:
        if "Error(s) in loading state_dict" not in str(exc):
            raise
        config = read_config(run_dir)
        details = [line.strip().rstrip(".") for line in str(exc).splitlines()[1:] if line.strip()]
        shown = "; ".join(details[:3]) + (f"; and {len(details) - 3} more" if len(details) > 3 else "")
        raise ValueError(f"{run_dir / CHECKPOINT} does not fit the model {run_dir / CONFIG} describes "
                         f"(model {config.get('model')!r}, model_kwargs {config.get('model_kwargs', {})}): {shown}. "
                         f"The weights were saved from a model built with other settings: put the model and "
                         f"model_kwargs it was trained with into {CONFIG}, or evaluate the run folder the "
                         "checkpoint came from") from None


def _mask_meaning(test, folder: dict | None, args) -> str | None:
    """What the test data's ``mask`` marks: the data's own statement (``mask_meanings``), else an image
    folder's recorded ``mask_meaning`` or, for folders given to ``explainreg train --masks`` (documented as
    the region the model must not use), ``must_not_use``; else ``--mask-meaning``; else None. A
    ``--mask-meaning`` that contradicts the data's statement is refused."""
    stated = test.mask_meanings.get("mask") if hasattr(test, "mask_meanings") else None
    if stated is None and folder is not None and folder.get("masks"):
        stated = folder.get("mask_meaning") or MUST_NOT_USE
    if stated is not None and args.mask_meaning is not None and args.mask_meaning != stated:
        raise ValueError(f"--mask-meaning {args.mask_meaning} contradicts the run's data, whose masks mark {stated}; "
                         f"leave --mask-meaning out, or use --mask-convert complement to score the complement")
    return stated or args.mask_meaning


def _masks_per_metric(names: list[str], masks, meaning: str | None, args, source: str) -> dict:
    """``{metric: the masks it may use}``: each metric's declared ``mask_meaning`` against the data's
    (:func:`explainreg.inputs.mask_for`: the same meaning, the complement when ``--mask-convert
    complement`` asks, else a ``ValueError`` that says what to pass), before anything is computed."""
    out = {}
    for n in names:
        wanted = (LOCALISATION_METRICS.get(n) or SHORTCUT_METRICS[n]).mask_meaning
        try:
            out[n] = mask_for(masks, meaning, wanted, n, convert=args.mask_convert, source=source)
        except ValueError as exc:
            raise ValueError(f"{exc}; on the command line: --mask-meaning / --mask-convert complement") from None
    return out


def _behaviour_metrics(dataset: str | None) -> list[str]:
    """The behavioural shortcut metrics (:data:`~explainreg.metrics.SHORTCUT_METRICS`) added for data whose masks
    mark what the model must not use (documentation: methods/shortcuts); those that plant the data set's shortcut
    (``needs_shortcut``) where the data set defines one."""
    return [n for n, cls in SHORTCUT_METRICS.items()
            if not getattr(cls, "needs_shortcut", False) or shortcut_for(str(dataset)) is not None]


def _shortcut_metric(name: str, args):
    """A behavioural metric with the command line's seed (``flip_rate``: the region from a test image
    of another class; ``shortcut_reliance``: the data set's shortcut hook; ``decision_share``: from
    gradient × input, defined for every differentiable model)."""
    options = {"seed": args.seed} if name in ("flip_rate", "shortcut_reliance") else {}
    if name == "flip_rate":
        options["intervention"] = "other_class"
    if name == "decision_share":
        options["method"] = "grad_x_input"
    if getattr(METRICS[name], "needs_shortcut", False):
        options["shortcut"] = shortcut_for(str(getattr(args, "shortcut_data", None)))
    return build_metric(name, **options)


def _result_settings(args, metric: str, checkpoint: str) -> dict:
    """The settings a stored result is keyed by, besides its attribution and metric: those that change
    its value (the checkpoint, the test images, the seed, the seed's conventions; ROAR's retraining)."""
    settings = {"checkpoint": checkpoint, "limit": args.limit, "data_root": args.data_root, "seed": args.seed,
                "convention": args.convention}
    if metric == "roar":
        settings.update(roar_epochs=args.roar_epochs, roar_batch_size=args.roar_batch_size,
                        roar_train_limit=args.roar_train_limit)
    return settings


def _evaluate_part(args, model, method: str | None, metric_names: list[str], x_all, y_all, masks, train,
                   rank: int, world: int, device, bar) -> dict:
    """The ``metric_names`` of one attribution ``method`` (None: the attribution-free metrics) over the
    test images: ``{name: MetricResult}`` (empty when there is nothing to compute)."""
    import torch


    if not metric_names:
        bar.update(len(x_all))
        return {}
    built = {}
    for n in metric_names:
        if n in LOCALISATION_METRICS:  # ranking metrics break ties in the --seed order of the removal metrics
            cls = LOCALISATION_METRICS[n]
            built[n] = cls(**({"seed": args.seed} if "seed" in inspect.signature(cls).parameters else {}))
            continue
        if n in SHORTCUT_METRICS:
            built[n] = _shortcut_metric(n, args)
            continue
        built[n] = build_metric(n, **_settings(n, args, method=method, train_set=train, epochs=args.roar_epochs,
                                               batch_size=args.roar_batch_size))
    step = min(args.batch_size, -(-len(x_all) // world))  # torchrun: every rank gets at least one batch
    for start in range(rank * step, len(x_all), world * step):
        xb, yb = x_all[start:start + step], y_all[start:start + step]
        index = torch.arange(start, start + len(xb))  # the images' positions: keyed draws, synced order
        a = attribute(model, xb, yb, method, seed=args.seed, index=index) if method else None
        for n, metric in built.items():
            if n in SHORTCUT_METRICS:
                metric.update(model, xb, yb, mask=masks[n][start:start + step].to(device), index=index)
            elif n in LOCALISATION_METRICS:
                metric.update(model, xb, yb, a, masks[n][start:start + step].to(device), index=index)
            else:
                metric.update(model, xb, yb, a, index=index)
        bar.update(len(xb))
    bar.set_postfix_str(f"{method or 'none'}: computing {', '.join(built)}")
    return {n: m.compute() for n, m in built.items()}


@contextmanager
def _sigterm_as_interrupt():
    """SIGTERM (``kill``, a scheduler's stop) ends the evaluation as Ctrl-C does, with its message."""
    def interrupt(signum, frame):
        raise KeyboardInterrupt

    try:
        previous = signal.signal(signal.SIGTERM, interrupt)
    except ValueError:  # not the main thread: the default SIGTERM stays (finished parts are on disk)
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def check_writable(folder: Path) -> None:
    """Raise ``PermissionError`` naming ``folder`` when files cannot be created in it (tried, not guessed)."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=folder, prefix=".write-test.", suffix=".tmp")
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise PermissionError(f"cannot write the metrics into {folder} ({exc.strerror or exc}); nothing was computed. "
                              "Pass --output DIR to write them elsewhere, or make the folder writable") from None


def data_root_of(config: dict, data_root: str | None) -> tuple[str | Path | None, bool]:
    """``(root, allow_bundled)`` for the run's data: ``--data-root`` first; a run trained on the
    bundled subset gets it again; else the root the run gave, ``$EXPLAINREG_DATA``, or the root it
    resolved when it trained."""
    if data_root is not None:
        return data_root, False
    if config.get("data") == "bundled" or "bundled subset" in str(config.get("test_source", "")):
        return BUNDLED_DIR, True
    if config.get("data_root"):
        return config["data_root"], False
    if os.environ.get(ENV_VAR):
        return None, False
    if config.get("data_root_used"):
        return config["data_root_used"], False
    # a run trained from Python records where its data came from ("FOLDER[ (downloaded)][, N rows]")
    folder = str(config.get("test_source", "")).split(",")[0].removesuffix(" (downloaded)")
    return (folder if folder and Path(folder).is_dir() else None), False


def _plot_curves(results: dict[str, dict], run_dir: Path) -> list[Path]:
    """``metrics_NAME.png`` for each curve metric: one line per attribution method (the study reports' figure)."""
    by_metric: dict[str, dict[str, dict]] = {}
    for method, rs in results.items():
        for name, r in rs.items():
            if "curve" in r:
                by_metric.setdefault(name, {})[method] = r
    return [curve_figure(run_dir / f"metrics_{name}.png", curves, title=name) for name, curves in by_metric.items()]
