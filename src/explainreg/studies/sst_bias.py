"""CDEP's SST bias studies (documentation: guide/text; the CDEP code): ``explainreg study sst-bias --bias decoy|article|gender``.

Trains CDEP's LSTM (GloVe 50-d embedding, fine-tuned; 1-layer LSTM, hidden 128; head on the last
state) on the biased SST-2 training set, unpenalised (λ = 0) and with the CDEP text penalty over the
paper's λ grid {0, 100, …, 600} and several seeds, plus RRR on the embeddings at one λ; Adam
(defaults), batch 64, early stopping on the clean dev set (patience 3, the best dev epoch kept). Writes
``runs.csv`` (one row per run), ``results.csv`` (test accuracy mean ± std per method and λ),
``accuracy_vs_lambda.png``, and ``summary.md`` / ``summary.html`` with the paper's numbers beside
ours and example training sentences with the CD score (rel of the true-class logit) of the bias word
under the unpenalised and the best CDEP model. Finished runs are skipped on a rerun.

Two protocols (``--protocol``): ``clean`` (above: the model chosen on the dev set, its test
accuracy) and ``paper``, the CDEP repository's (its SST training script and analysis notebook at
the commit that produced the paper's numbers): 10 fixed epochs without early stopping, seeds 0–4,
and as "test accuracy" the clean *dev* accuracy's maximum over the epochs. Every run records the dev
and test accuracy of every epoch, so a paper-protocol run also gives the clean protocol's number
(the test accuracy at its best dev epoch), reported beside. ``--seed-text`` trains CDEP with the
seed's text settings (:data:`explainreg.penalties.text.SEED_TEXT`: the decoy and the word after it
relevant, the bias counted only at the decoy, the output bias left out); the word vectors are read
detached in either case (CDEP's default on tokens).

λ is on the seed's scale: our CDEP text penalty is the seed's (mean over the sentences that contain
the bias word of −log softmax([rel_y, irrel_y])[irrel]). RRR has no paper number here (CDEP's text
experiments compare against vanilla only); its λ is ours.
"""
from __future__ import annotations

import argparse
import csv
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import torch

from .._validation import check_choice, nonnegative_float, nonnegative_int, positive_int
from ..modes import eval_mode, model_device
from ..data.text import BIASES, DECOY_WORDS, REPLACEMENTS, glove_vectors, sst_bias
from ..decomposition import decompose
from ..objective import Objective
from ..penalties import CDEP, RRR
from ..penalties.text import SEED_TEXT
from ..report import Report, Table, mean_std, new_figure, save_figure
from ..models.text import cdep_lstm
from ..training import TrainConfig, train
from . import register_study
from .behaviour import COLUMNS, format_row
from .skeleton import cached_run, settings_from_namespace
from ..data.shortcuts import TokenDecoyShortcut
from ..inputs import MUST_NOT_USE
from .behaviour import shortcut_evidence

__all__ = ["LAMBDAS", "METHODS", "PAPER", "PAPER_PROTOCOL", "PROTOCOLS", "QUICK", "SSTBiasSettings", "add_arguments",
           "bias_scores", "run", "run_sst_bias", "run_study", "write_report"]

#: the paper's test accuracies (%), notebook @ 12a4f96 (B.2 §2.7): λ = 0 and the best λ
PAPER = {"decoy": {0: 56.6, 600: 75.4}, "article": {0: 57.8, 500: 68.2}, "gender": {0: 64.3, 500: 78.0}}
LAMBDAS = (0.0, 100.0, 200.0, 300.0, 400.0, 500.0, 600.0)
METHODS = ("cdep", "rrr")
QUICK = dict(limit=400, epochs=2, seeds=(0,))
#: ``clean``: best dev epoch, its test accuracy; ``paper``: 10 epochs, dev accuracy's maximum over epochs
PROTOCOLS = ("clean", "paper")
#: the paper protocol's fixed settings (the CDEP repository's SST script and notebook)
PAPER_PROTOCOL = dict(epochs=10, seeds=(0, 1, 2, 3, 4))


@dataclass
class SSTBiasSettings:
    """The study's settings, named as the command line's options; None takes the mode's default
    (``quick``: λ = 0 and the paper's best λ, seed 0, 400 sentences, 2 epochs; else λ ∈ {0, 100, …, 600},
    seeds 0 1 2, all sentences, at most 100 epochs; ``protocol="paper"``: seeds 0–4, 10 epochs, no
    early stopping).

    Example::

        >>> SSTBiasSettings(bias="gender", quick=True).output
        'results/sst-bias-gender'
        >>> SSTBiasSettings(bias="decoy", protocol="paper").output
        'results/sst-bias-decoy-paper'
        >>> SSTBiasSettings(bias="colour")
        Traceback (most recent call last):
        ...
        ValueError: bias must be one of 'decoy', 'article', 'gender'; got 'colour'
    """

    bias: str
    out: str | None = None
    data_root: str | None = None
    quick: bool = False
    methods: Sequence[str] = METHODS
    lambdas: Sequence[float] | None = None
    rrr_lambdas: Sequence[float] = (10.0,)
    seeds: Sequence[int] | None = None
    epochs: int | None = None
    patience: int = 3
    limit: int | None = None
    subtrees: bool = False
    threads: int | None = None
    device: str | None = None
    protocol: str = "clean"
    seed_text: bool = False

    def __post_init__(self) -> None:
        check_choice("bias", self.bias, BIASES)
        check_choice("protocol", self.protocol, PROTOCOLS)
        for method in self.methods:
            check_choice("methods", method, METHODS)

    @property
    def output(self) -> str:
        """The study folder: ``out``, else ``results/sst-bias-BIAS`` (``-paper`` added for the paper protocol)."""
        return self.out or f"results/sst-bias-{self.bias}" + ("-paper" if self.protocol == "paper" else "")

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> SSTBiasSettings:
        """The settings of a parsed ``explainreg study sst-bias`` command line."""
        return settings_from_namespace(cls, args)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--bias", choices=BIASES, required=True, help="which CDEP bias variant of SST")
    parser.add_argument("--out", default=None, help="output folder (default: results/sst-bias-<bias>)")
    parser.add_argument("--data-root", default=None, help="folder holding sst/ and glove/ (default: $EXPLAINREG_DATA)")
    parser.add_argument("--quick", action="store_true", help="a 1–2 minute CPU smoke test on a real subset")
    parser.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS))
    parser.add_argument("--lambdas", nargs="+", type=nonnegative_float, default=None,
                        help="CDEP weights (paper: 0 100 … 600; λ = 0 is the unpenalised model)")
    parser.add_argument("--rrr-lambdas", nargs="+", type=nonnegative_float, default=[10.0],
                        help="RRR weights (ours; the study reports each, pick the best on dev)")
    parser.add_argument("--seeds", nargs="+", type=nonnegative_int, default=None, help="default 0 1 2")
    parser.add_argument("--epochs", type=positive_int, default=None, help="at most this many epochs (default 100)")
    parser.add_argument("--patience", type=nonnegative_int, default=3)
    parser.add_argument("--limit", type=positive_int, default=None, help="a seeded subset of N sentences per split")
    parser.add_argument("--subtrees", action="store_true",
                        help="train on every phrase of the training trees (the seed's train_subtrees=True)")
    parser.add_argument("--threads", type=positive_int, default=None, help="torch CPU threads")
    parser.add_argument("--device", default=None)
    parser.add_argument("--protocol", choices=PROTOCOLS, default="clean",
                        help="clean: model chosen on dev, its test accuracy (early stopping, --patience); paper: "
                             "the CDEP repository's, 10 epochs without early stopping, seeds 0-4, the dev "
                             "accuracy's maximum over epochs (the clean number reported beside)")
    parser.add_argument("--seed-text", action="store_true",
                        help="CDEP with the seed's text settings: the decoy and the next word relevant, the bias "
                             "counted only at the decoy, the output bias left out")


def _grid(args: SSTBiasSettings) -> list[tuple[str, float, int]]:
    quick_lambdas = (0.0, float(max(PAPER[args.bias])))  # λ = 0 and the paper's best λ
    lambdas = args.lambdas or (quick_lambdas if args.quick else LAMBDAS)
    default_seeds = PAPER_PROTOCOL["seeds"] if args.protocol == "paper" else (0, 1, 2)
    seeds = args.seeds or (QUICK["seeds"] if args.quick else default_seeds)
    runs = []
    for seed in seeds:
        for lam in lambdas:
            method = "vanilla" if lam == 0 else "cdep"
            if method == "vanilla" or "cdep" in args.methods:
                runs.append((method, float(lam), seed))
        if "rrr" in args.methods:
            runs += [("rrr", float(lam), seed) for lam in args.rrr_lambdas]
    return runs


def _objective(method: str, lam: float, seed: int, seed_text: bool = False) -> Objective:
    if method == "vanilla":
        return Objective(seed=seed)
    penalty = (CDEP(**SEED_TEXT) if seed_text else CDEP()) if method == "cdep" else RRR()
    return Objective({penalty: lam}, seed=seed)


def bias_scores(model: torch.nn.Module, ids: torch.Tensor, y: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """CD rel of the true-class logit for the masked (bias) token of each sentence, in eval mode."""
    with eval_mode(model), torch.no_grad():
        rel, _ = decompose(model, ids, mask)
    return rel.gather(1, y[:, None]).squeeze(1)


def run_sst_bias(settings: SSTBiasSettings) -> list[dict[str, Any]]:
    """The study's Python API: train (or reuse) every run of the grid and write ``runs.csv``,
    ``results.csv``, ``accuracy_vs_lambda.png`` and ``summary.md`` / ``.html`` into ``settings.output``.

    Returns:
        One record per run (method, λ, seed, test and dev accuracy, epochs, the bias word's CD scores).

    Example::

        >>> records = run_sst_bias(SSTBiasSettings(bias="decoy", quick=True))  # doctest: +SKIP
    """
    args = settings
    if args.threads:
        torch.set_num_threads(args.threads)
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    limit = args.limit or (QUICK["limit"] if args.quick else None)
    paper = args.protocol == "paper"
    epochs = args.epochs or (QUICK["epochs"] if args.quick else PAPER_PROTOCOL["epochs"] if paper else 100)
    splits = sst_bias(args.bias, args.data_root, seed=0, limit=limit, subtrees=args.subtrees)
    vectors, coverage = glove_vectors(splits.vocab, root=args.data_root)
    examples = _example_rows(splits)
    records: list[dict[str, Any]] = []
    # what a run's record depends on besides its name (method, λ, seed): a run made otherwise is refused
    key = {"bias": args.bias, "epochs": epochs, "patience": None if paper else args.patience, "limit": limit,
           "subtrees": args.subtrees, "train_sentences": len(splits.train), "test_sentences": len(splits.test),
           **({"protocol": "paper"} if paper else {}), **({"seed_text": True} if args.seed_text else {})}
    for method, lam, seed in _grid(args):
        run_dir = out / "runs" / f"{method}-lambda{lam:g}-seed{seed}"
        record, _ = cached_run(run_dir / "result.json", lambda: _run_one(args, method, lam, seed, epochs, splits,
                                                                         vectors, examples), key)
        records.append(record)
    write_report(out, args, records, splits, coverage, examples)
    print(f"results in {out / 'summary.md'}")
    return records


def _run_one(args: SSTBiasSettings, method: str, lam: float, seed: int, epochs: int, splits, vectors,
             examples) -> dict[str, Any]:
    """Train one model of the grid; its record with the bias word's CD scores on the example sentences."""
    torch.manual_seed(seed)
    model = cdep_lstm(len(splits.vocab), 2, vectors=vectors)
    patience = None if args.protocol == "paper" else args.patience  # the paper's runs: no early stopping
    config = TrainConfig(epochs=epochs, batch_size=64, seed=seed, patience=patience,
                         select="best_val_accuracy", progress=False, eval_batch_size=500, device=args.device)
    started = time.perf_counter()
    result = train(model, _objective(method, lam, seed, args.seed_text), splits.train, splits.test, config=config,
                   val_set=splits.dev)
    final = result.final
    dev = [100 * r["val_accuracy"] for r in result.history]
    test = [100 * r["test_accuracy"] for r in result.history]
    ids, y, mask = examples
    scores = bias_scores(model, ids.to(model_device(model)), y.to(ids.device), mask.to(ids.device))
    return {"method": method, "lambda": lam, "seed": seed, "test_accuracy": 100 * final["test_accuracy"],
            "dev_accuracy": 100 * final["val_accuracy"], "best_epoch": result.best_epoch,
            "epochs_run": len(result.history), "seconds": time.perf_counter() - started,
            "paper_accuracy": max(dev), "dev_by_epoch": dev, "test_by_epoch": test,
            "bias_word_rel": [float(s) for s in scores], **shortcut_columns(model, args.bias, splits, seed)}


def shortcut_columns(model: torch.nn.Module, bias: str, splits, seed: int = 0) -> dict[str, float]:
    """The behavioural shortcut evidence of a trained model on the clean test set (documentation: methods/shortcuts):
    for the decoy, accuracy with the label's own decoy word inserted vs another class's, flips, group
    accuracies and the decoy's CD / gradient × input share of the logit and of the margin (on the
    sentences with their own decoy); for article / gender, the group accuracies and shares of the
    test set's bias words."""
    hook = TokenDecoyShortcut.for_vocab(splits.vocab, seed=seed) if bias == "decoy" else None
    test = splits.test
    return shortcut_evidence(model, test.x, test.y, test.extras["mask"], meaning=MUST_NOT_USE, shortcut=hook,
                             seed=seed, source=f"SST {bias} test set")


def run(args: argparse.Namespace) -> int:
    """``explainreg study sst-bias``: :func:`run_sst_bias` with the command line's settings."""
    run_sst_bias(SSTBiasSettings.from_args(args))
    return 0


#: the command-line entry point under its former name
run_study = run


def _example_rows(splits, n: int = 4):
    """The first ``n`` training sentences that contain the bias word: ids, labels, masks."""
    has = (splits.train.extras["mask"].sum(1) > 0).nonzero().flatten()[:n]
    ids, y, extras = splits.train.batch(has)
    return ids, y, extras["mask"]


def write_report(out: Path, args, records: list[dict[str, Any]], splits, coverage: float, examples) -> None:
    paper_protocol = getattr(args, "protocol", "clean") == "paper"
    with open(out / "runs.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, ["method", "lambda", "seed", "test_accuracy", "dev_accuracy", "best_epoch",
                                         "epochs_run", "seconds", "paper_accuracy", "dev_by_epoch", "test_by_epoch",
                                         *COLUMNS], extrasaction="ignore")
        writer.writeheader()
        writer.writerows({**r, **{k: " ".join(f"{v:.2f}" for v in r.get(k, [])) for k in ("dev_by_epoch",
                                                                                         "test_by_epoch")}}
                         for r in records)
    groups: dict[tuple[str, float], list[dict[str, Any]]] = {}
    for r in records:
        groups.setdefault((r["method"], r["lambda"]), []).append(r)
    rows, summary = [], []
    paper = PAPER[args.bias]
    for (method, lam), rs in sorted(groups.items(), key=lambda kv: (kv[0][0] == "rrr", kv[0][1])):
        acc = torch.tensor([r["test_accuracy"] for r in rs], dtype=torch.float64)
        std = float(acc.std()) if len(acc) > 1 else 0.0
        peak = torch.tensor([r.get("paper_accuracy", math.nan) for r in rs], dtype=torch.float64)
        peak_std = float(peak.std()) if len(peak) > 1 else 0.0
        summary.append({"method": method, "lambda": lam, "test_mean": float(acc.mean()), "test_std": std,
                        "paper_mean": float(peak.mean()), "paper_std": peak_std,
                        "seeds": len(rs), **{c: _mean(rs, c) for c in COLUMNS}})
        ref = paper.get(int(lam)) if method != "rrr" else None
        measured = [mean_std(float(peak.mean()), peak_std, len(rs))] if paper_protocol else []
        rows.append([method, f"{lam:g}", *measured, mean_std(float(acc.mean()), std, len(rs)),
                     f"{ref:.1f}" if ref is not None else "–"])
    with open(out / "results.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, ["method", "lambda", "test_mean", "test_std", "paper_mean", "paper_std",
                                         "seeds", *COLUMNS])
        writer.writeheader()
        writer.writerows(summary)
    report = Report(f"CDEP on SST, {args.bias} bias: test accuracy (%)")
    words = f"'{DECOY_WORDS[1]}' / '{DECOY_WORDS[0]}'" if args.bias == "decoy" else \
        f"'{REPLACEMENTS[args.bias][1]}' / '{REPLACEMENTS[args.bias][0]}'"
    report.text(f"Training set: SST-2 train with the {args.bias} bias ({words} in positive / negative sentences), "
                f"{len(splits.train)} sentences; dev {len(splits.dev)}, test {len(splits.test)} (clean). GloVe "
                f"coverage of the vocabulary: {100 * coverage:.1f} %. Paper: notebook @ 12a4f96 (300-d GloVe).")
    if args.quick:
        report.smoke_test()
    if paper_protocol:
        report.text("Protocol: the paper's (the CDEP repository's SST script and notebook): 10 epochs without early "
                    "stopping, the clean dev accuracy's maximum over the epochs; beside it the clean protocol's "
                    "number from the same runs, the test accuracy at the best dev epoch.")
    head = ["method", "λ"] + (["dev max over epochs (paper's measure)", "test at best dev epoch"] if paper_protocol
                              else ["test accuracy (ours)"]) + ["paper"]
    report.table(Table(head, rows, None,
                       notes="λ = 0 is the unpenalised model; RRR on the embeddings at our λ (no paper number)."))
    shown = [c for c in COLUMNS if any(not math.isnan(r[c]) for r in summary)]
    if shown:
        report.heading("Does the model still use the bias? (documentation: methods/shortcuts, mean over seeds)")
        report.table(Table(["method", "λ"] + [COLUMNS[c] for c in shown],
                           [[r["method"], f"{r['lambda']:g}"] + format_row(r, shown) for r in summary], None,
                           notes="Clean test set (%). Decoy: accuracy with the label's own decoy word inserted at a "
                                 "random place minus accuracy with the other class's (reliance), predictions "
                                 "changed by the other class's word, worst / average accuracy over (class, "
                                 "agreeing / disagreeing); shares: the decoy word's share of the true class's "
                                 "logit and of its margin over the other class."))
    report.figure(_plot(summary, out / "accuracy_vs_lambda.png", args.bias), "test accuracy vs λ")
    ids, y, _ = examples
    seed0 = [r for r in records if r["seed"] == min(x["seed"] for x in records)]
    vanilla = next((r for r in seed0 if r["method"] == "vanilla"), None)
    cdeps = [r for r in seed0 if r["method"] == "cdep"]
    best = max(cdeps, key=lambda r: r["dev_accuracy"]) if cdeps else None
    if vanilla and best:
        lines = []
        for i, sentence in enumerate(splits.train.vocab.decode(row) for row in ids):
            lines.append(f"{' '.join(sentence)}  (label {int(y[i])}): bias word CD rel {vanilla['bias_word_rel'][i]:+.3f}"
                         f" unpenalised → {best['bias_word_rel'][i]:+.3f} CDEP λ = {best['lambda']:g}")
        report.heading("Bias word's contribution to the true-class logit (CD rel), seed 0")
        report.code("\n".join(lines))
    report.write(out, name="summary")


def _mean(records: list[dict[str, Any]], column: str) -> float:
    """The mean of ``column`` over the records that have it (NaN when none does)."""
    values = [float(r[column]) for r in records if r.get(column) is not None and not math.isnan(float(r[column]))]
    return sum(values) / len(values) if values else math.nan


def _plot(summary: list[dict[str, Any]], path: Path, bias: str) -> Path:
    fig, axes = new_figure(1, 1, width=6, height=4)
    ax = axes[0][0]
    cd = sorted((r for r in summary if r["method"] in ("vanilla", "cdep")), key=lambda r: r["lambda"])
    if cd:
        ax.errorbar([r["lambda"] for r in cd], [r["test_mean"] for r in cd], yerr=[r["test_std"] for r in cd],
                    marker="o", capsize=3, label="CDEP (λ = 0: unpenalised)")
    lams = sorted(PAPER[bias])
    ax.plot(lams, [PAPER[bias][k] for k in lams], "k^--", label="paper")
    for r in summary:
        if r["method"] == "rrr":
            ax.axhline(r["test_mean"], color="gray", linestyle=":", label=f"RRR λ = {r['lambda']:g}")
    ax.set_xlabel("λ")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(f"SST {bias} bias")
    ax.legend()
    return save_figure(fig, path, dpi=120)


register_study("sst-bias", "CDEP on SST with the decoy / article / gender bias (vanilla, CDEP over λ, RRR)",
               add_arguments, run)
