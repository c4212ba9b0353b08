"""Transformer studies on real data (documentation: transformers): ``explainreg study transformers --part P``.

Three parts, each a grid of (method, seed) runs of a HuggingFace model built from a small config and
trained from scratch (no weights are downloaded), through :class:`explainreg.hf.HFClassifier`:

* ``decoy``: a small BERT (``BertConfig``; default 2 layers, hidden 64, 4 heads) on CDEP's SST decoy
  (:func:`explainreg.data.text.sst_bias`: "text" / "video" inserted into every positive / negative
  training sentence), with a WordPiece tokenizer trained on the study's training sentences
  (``tokenizers``; saved as ``tokenizer.json``). Vanilla, RRR, CDEP (through attention, CD-T's rule)
  and Saliency Guided Training; test accuracy on the clean test set and the behavioural shortcut
  columns (:func:`explainreg.studies.behaviour.shortcut_evidence`: accuracy with the label's own /
  the other class's decoy word inserted, reliance, flips, the decoy's CD and gradient × input shares).
* ``eraser``: the same BERT on SST-2, regular against saliency-guided training; ERASER
  comprehensiveness / sufficiency (AOPC over k ∈ {1, 5, 10, 20, 50} %) of gradient × input,
  integrated gradients, SmoothGrad and a random ranking on test sentences. [CLS] and [SEP] stay in
  place: the word pieces between them are ranked and deleted.
* ``vit``: a small ViT (``ViTConfig``; default patch 7, 2 layers, hidden 64) on DecoyMNIST with
  vanilla, RRR and Saliency Guided Training; test accuracy and the behavioural columns of the
  DecoyMNIST study (:func:`explainreg.studies.cdep_mnist.add_shortcut_evidence`).

Every run is a run folder (``runs/NAME``: ``config.json``, a checkpoint per epoch, resumed where it
stopped) whose ``result.json`` is reused on a rerun with the same settings and refused with others.
Written: ``runs.csv`` (one row per run), ``results.csv`` (mean and std per method), ``results.json``
(settings, command, versions, data, rows) and ``summary.md`` / ``summary.html``. The model of a run
folder is rebuilt by :func:`explainreg.runs.load_run` (its config names :func:`bert_classifier` or
:func:`vit_classifier`).
"""
from __future__ import annotations

import argparse
import csv
import math
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Sequence

import torch
from torch import nn

from .. import runs
from .._validation import check_choice, nonnegative_float, nonnegative_int, positive_int
from ..report import Report, Table, mean_std
from . import register_study
from .behaviour import COLUMNS
from .skeleton import cached, cached_run, settings_from_namespace, settings_hash

__all__ = ["ATTRIBUTIONS", "METHODS", "PARTS", "SPECIAL_TOKENS", "FramedDecoyShortcut", "TransformerSettings",
           "add_arguments", "bert_classifier", "command_line", "encode", "frame", "load_tokenizer", "run",
           "run_transformer_study", "summarise", "train_wordpiece", "unframe", "vit_classifier"]

PARTS = ("decoy", "eraser", "vit")
#: the methods of each part (``eraser``: regular and saliency-guided)
METHODS = {"decoy": ("vanilla", "rrr", "cdep", "sgt"), "eraser": ("vanilla", "sgt"), "vit": ("vanilla", "rrr", "sgt")}
SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]")  # ids 0 … 3
PAD, CLS, SEP = 0, 2, 3
ATTRIBUTIONS = ("gradient", "integrated_gradients", "smoothgrad", "random")
MODEL_PATHS = {"bert": f"{__name__}:bert_classifier", "vit": f"{__name__}:vit_classifier"}


@dataclass
class TransformerSettings:
    """The study's settings, named as the command line's options; None takes the part's default
    (decoy / eraser: all training sentences; vit: 10,000 training and all 10,000 test images).

    Example::

        >>> s = TransformerSettings("decoy", rrr_lambda=1.0)
        >>> s.output, s.methods
        ('results/transformers-decoy', ('vanilla', 'rrr', 'cdep', 'sgt'))
        >>> TransformerSettings("vit", methods=["cdep"])
        Traceback (most recent call last):
        ...
        ValueError: methods must be one of 'vanilla', 'rrr', 'sgt'; got 'cdep'
    """

    part: str
    out: str | None = None
    data_root: str | None = None
    methods: Sequence[str] | None = None
    seeds: Sequence[int] = (0, 1, 2)
    epochs: int = 3
    limit: int | None = None
    test_limit: int | None = None
    eval_limit: int = 500
    hidden: int = 64
    layers: int = 2
    heads: int = 4
    patch: int = 7
    vocab_size: int = 4000
    max_length: int = 128
    batch_size: int = 32
    lr: float = 5e-4
    rrr_lambda: float = 10.0
    cdep_lambda: float = 1.0
    sgt_lambda: float = 1.0
    sgt_fraction: float = 0.5
    threads: int | None = None
    device: str | None = None

    def __post_init__(self) -> None:
        check_choice("part", self.part, PARTS)
        self.methods = tuple(self.methods or METHODS[self.part])
        for method in self.methods:
            check_choice("methods", method, METHODS[self.part])
        self.seeds = tuple(self.seeds)
        if not 0 < self.sgt_fraction < 1:
            raise ValueError(f"sgt_fraction must lie in (0, 1), got {self.sgt_fraction}")
        if self.hidden % self.heads:
            raise ValueError(f"hidden ({self.hidden}) must be a multiple of heads ({self.heads})")

    @property
    def output(self) -> str:
        """The study folder: ``out``, else ``results/transformers-PART``."""
        return self.out or f"results/transformers-{self.part}"

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> TransformerSettings:
        """The settings of a parsed ``explainreg study transformers`` command line."""
        return settings_from_namespace(cls, args)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--part", choices=PARTS, required=True,
                        help="decoy: BERT on SST decoy; eraser: BERT SGT on SST-2 (ERASER); vit: ViT on DecoyMNIST")
    parser.add_argument("--out", default=None, help="output folder (default: results/transformers-<part>)")
    parser.add_argument("--data-root", default=None, help="folder holding sst/ and mnist/ (default: $EXPLAINREG_DATA)")
    parser.add_argument("--methods", nargs="+", default=None,
                        help="decoy: vanilla rrr cdep sgt; eraser: vanilla sgt; vit: vanilla rrr sgt (default: all)")
    parser.add_argument("--seeds", nargs="+", type=nonnegative_int, default=[0, 1, 2])
    parser.add_argument("--epochs", type=positive_int, default=3)
    parser.add_argument("--limit", type=positive_int, default=None,
                        help="a seeded subset of N training sentences (decoy: N per split) or images")
    parser.add_argument("--test-limit", type=positive_int, default=None, help="vit: a seeded subset of N test images")
    parser.add_argument("--eval-limit", type=positive_int, default=500, help="eraser: test sentences for ERASER")
    parser.add_argument("--hidden", type=positive_int, default=64)
    parser.add_argument("--layers", type=positive_int, default=2)
    parser.add_argument("--heads", type=positive_int, default=4)
    parser.add_argument("--patch", type=positive_int, default=7, help="vit: patch size (28 must be a multiple)")
    parser.add_argument("--vocab-size", type=positive_int, default=4000, help="WordPiece vocabulary size")
    parser.add_argument("--max-length", type=positive_int, default=128,
                        help="word pieces per sentence, [CLS] [SEP] included")
    parser.add_argument("--batch-size", type=positive_int, default=32)
    parser.add_argument("--lr", type=float, default=5e-4, help="Adam's learning rate")
    parser.add_argument("--rrr-lambda", type=nonnegative_float, default=10.0)
    parser.add_argument("--cdep-lambda", type=nonnegative_float, default=1.0)
    parser.add_argument("--sgt-lambda", type=nonnegative_float, default=1.0)
    parser.add_argument("--sgt-fraction", type=float, default=0.5, help="share of tokens / pixels SGT masks")
    parser.add_argument("--threads", type=positive_int, default=None, help="torch CPU threads")
    parser.add_argument("--device", default=None)


# ----------------------------------------------------------------------------------------------
# models and tokens


def _hf():
    try:
        from .. import hf
    except ImportError as exc:
        raise SystemExit(f"explainreg study transformers: {exc}") from None
    return hf


def bert_classifier(vocab_size: int, hidden: int = 64, layers: int = 2, heads: int = 4, max_length: int = 128,
                    num_labels: int = 2) -> nn.Module:
    """A BERT sequence classifier built from a small ``BertConfig`` (intermediate size 4·hidden, pad id 0),
    wrapped in :class:`~explainreg.hf.HFClassifier`.

    Example::

        >>> model = bert_classifier(50, hidden=8, layers=1, heads=2)
        >>> model(torch.tensor([[2, 9, 3, 0]])).shape
        torch.Size([1, 2])
    """
    from transformers import BertConfig, BertForSequenceClassification

    config = BertConfig(vocab_size=vocab_size, hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
                        intermediate_size=4 * hidden, max_position_embeddings=max_length, num_labels=num_labels,
                        pad_token_id=PAD)
    return _hf().HFClassifier(BertForSequenceClassification(config))


def vit_classifier(hidden: int = 64, layers: int = 2, heads: int = 4, patch: int = 7, image_size: int = 28,
                   channels: int = 1, num_labels: int = 10) -> nn.Module:
    """A ViT image classifier built from a small ``ViTConfig`` (intermediate size 4·hidden), wrapped in
    :class:`~explainreg.hf.HFClassifier`.

    Example::

        >>> vit_classifier(hidden=8, layers=1, heads=2)(torch.zeros(2, 1, 28, 28)).shape
        torch.Size([2, 10])
    """
    from transformers import ViTConfig, ViTForImageClassification

    config = ViTConfig(image_size=image_size, patch_size=patch, num_channels=channels, hidden_size=hidden,
                       num_hidden_layers=layers, num_attention_heads=heads, intermediate_size=4 * hidden,
                       num_labels=num_labels)
    return _hf().HFClassifier(ViTForImageClassification(config))


def train_wordpiece(sentences: Sequence[Sequence[str]], vocab_size: int):
    """A fast WordPiece tokenizer trained on ``sentences`` (lists of words): specials [PAD] [UNK] [CLS] [SEP]
    (ids 0–3), each sentence encoded as ``[CLS] pieces [SEP]``.

    Example::

        >>> tok = train_wordpiece([["a", "fine", "film"], ["a", "dull", "film"]], 40)
        >>> tok(["a", "fine", "film"], is_split_into_words=True)["input_ids"][0], tok.pad_token_id
        (2, 0)
    """
    from tokenizers import Tokenizer, models, pre_tokenizers, processors, trainers

    wp = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    wp.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    wp.train_from_iterator([" ".join(s) for s in sentences], trainers.WordPieceTrainer(
        vocab_size=vocab_size, special_tokens=list(SPECIAL_TOKENS), show_progress=False))
    wp.post_processor = processors.TemplateProcessing(single="[CLS] $A [SEP]", special_tokens=[("[CLS]", CLS),
                                                                                               ("[SEP]", SEP)])
    return _fast(wp)


def _fast(wp):
    from transformers import PreTrainedTokenizerFast

    return PreTrainedTokenizerFast(tokenizer_object=wp, pad_token="[PAD]", unk_token="[UNK]", cls_token="[CLS]",
                                   sep_token="[SEP]")


def load_tokenizer(path: str | Path):
    """The tokenizer a study saved (``tokenizer.json``)."""
    from tokenizers import Tokenizer

    return _fast(Tokenizer.from_file(str(path)))


def encode(tokenizer, sentences: Sequence[Sequence[str]], labels: Sequence[int], masks=None, *, max_length: int = 128,
           name: str = "text", source: str = "in memory"):
    """Sentences (lists of words) as a :class:`~explainreg.data.text.TextDataset` of word-piece ids
    (``[CLS] … [SEP]``, right-padded with 0), with ``lengths`` and the word masks carried to the word
    pieces (:func:`explainreg.hf.word_mask`; zeros when ``masks`` is None).

    Raises:
        ValueError: a sentence longer than ``max_length`` word pieces (it would be cut).
    """
    from ..data.text import TextDataset

    enc = tokenizer([list(s) for s in sentences], is_split_into_words=True, padding=True, return_tensors="pt")
    ids = enc["input_ids"]
    if ids.shape[1] > max_length:
        raise ValueError(f"a sentence has {ids.shape[1]} word pieces, more than max_length={max_length}; "
                         "raise --max-length")
    mask = _hf().word_mask(enc, masks) if masks is not None else torch.zeros(ids.shape)
    return TextDataset(ids, torch.as_tensor(list(labels)), {"lengths": enc["attention_mask"].sum(1), "mask": mask},
                       name=name, source=source)


def unframe(ids: torch.Tensor, pad_id: int = PAD) -> torch.Tensor:
    """B×T ids ``[CLS] w … [SEP] pad …`` → B×(T−1) ``w … pad …`` (the words, right-padded).

    Example::

        >>> unframe(torch.tensor([[2, 7, 8, 3], [2, 9, 3, 0]]))
        tensor([[7, 8, 0],
                [9, 0, 0]])
    """
    body = ids[:, 1:].clone()
    lengths = (ids != pad_id).sum(1)
    body[torch.arange(len(ids)), (lengths - 2).clamp(min=0)] = pad_id  # the [SEP]
    return body


def frame(body: torch.Tensor, pad_id: int = PAD, cls_id: int = CLS, sep_id: int = SEP) -> torch.Tensor:
    """B×T right-padded words → B×(T+2) ``[CLS] words [SEP] pad …`` (the inverse of :func:`unframe`).

    Example::

        >>> frame(torch.tensor([[7, 8, 0], [9, 0, 0]]))
        tensor([[2, 7, 8, 3, 0],
                [2, 9, 3, 0, 0]])
    """
    n = len(body)
    out = torch.cat([body, body.new_full((n, 1), pad_id)], 1)
    out[torch.arange(n), (body != pad_id).sum(1)] = sep_id
    return torch.cat([body.new_full((n, 1), cls_id), out], 1)


class FramedDecoyShortcut:
    """CDEP's SST decoy as an intervention hook on word pieces ``[CLS] … [SEP]`` (the word-piece form of
    :class:`~explainreg.data.shortcuts.TokenDecoyShortcut`): class ``target``'s decoy piece
    (``word_ids[target]``) replaces the masked pieces of a sentence that has some, or is inserted before
    word w ∈ {0 … W} (w = W: before [SEP]) of a sentence of W words that has none, w drawn per sample
    (keyed, stream ``"decoy_position"``, as the word-level hook draws it). A word starts at every piece
    that is not a continuation (``continuation_ids``, WordPiece's ``##`` pieces), so the decoy never
    splits a word; [CLS] and [SEP] stay in place. The ids grow by one column of padding (id 0).

    Args:
        word_ids: the decoy piece of each class. continuation_ids: the pieces that continue a word.
        seed: the positions' key.

    Shape:
        Called as ``hook(ids, mask, target, index)``: ids B×T → B×(T+1).

    Example::

        >>> hook = FramedDecoyShortcut((5, 6), continuation_ids=(9,))
        >>> hook(torch.tensor([[2, 7, 9, 3, 0]]), None, torch.tensor([1]), torch.tensor([0]))  # "7 ##9": one word
        tensor([[2, 6, 7, 9, 3, 0]])
    """

    def __init__(self, word_ids: Sequence[int], continuation_ids: Sequence[int] = (), seed: int = 0) -> None:
        self.word_ids = torch.as_tensor(list(word_ids), dtype=torch.long)
        self.continuation_ids = torch.as_tensor(list(continuation_ids), dtype=torch.long)
        self.seed = int(seed)

    @classmethod
    def for_tokenizer(cls, tokenizer, words: Sequence[str], seed: int = 0) -> FramedDecoyShortcut:
        """The hook of the decoy ``words`` (one per class, each a single piece of ``tokenizer``)."""
        ids = tokenizer.convert_tokens_to_ids(list(words))
        if tokenizer.unk_token_id in ids:
            raise ValueError(f"the decoy words {tuple(words)} must each be one piece of the tokenizer's vocabulary")
        continuation = [i for piece, i in tokenizer.get_vocab().items() if piece.startswith("##")]
        return cls(ids, continuation, seed)

    def __call__(self, ids: torch.Tensor, mask: Any, target: torch.Tensor, index: torch.Tensor | None = None
                 ) -> torch.Tensor:
        from .._random import as_index, keyed_draw

        n, t = ids.shape
        word = self.word_ids.to(ids.device)[target.to(ids.device)]
        real = ids != PAD
        m = torch.zeros_like(real) if mask is None else (torch.as_tensor(mask, device=ids.device) > 0) & real
        pad = ids.new_full((n, 1), PAD)
        replaced = torch.cat([torch.where(m, word[:, None].expand_as(ids), ids), pad], 1)
        starts = real & (ids != CLS) & (ids != SEP) & ~torch.isin(ids, self.continuation_ids.to(ids.device))
        n_words = starts.sum(1)
        u = keyed_draw("uniform", self.seed, as_index(index, n), (), "decoy_position", device=ids.device,
                       dtype=torch.float64)
        w = (u * (n_words + 1)).floor().long().clamp_max(n_words)
        nth = starts & (starts.long().cumsum(1) - 1 == w[:, None])     # the w-th word's first piece
        pos = torch.where(w < n_words, nth.long().argmax(1), real.sum(1) - 1)  # else the [SEP]
        j = torch.arange(t + 1, device=ids.device)[None, :]
        padded, shifted = torch.cat([ids, pad], 1), torch.cat([pad, ids], 1)  # shifted[:, j] = ids[:, j − 1]
        inserted = torch.where(j < pos[:, None], padded,
                               torch.where(j == pos[:, None], word[:, None].expand(n, t + 1), shifted))
        return torch.where(m.any(1)[:, None], replaced, inserted)

    def region(self, ids: torch.Tensor) -> torch.Tensor:
        """Where a decoy piece stands (B×T bool)."""
        return torch.isin(ids, self.word_ids.to(ids.device))

    def __repr__(self) -> str:
        return (f"FramedDecoyShortcut(word_ids={self.word_ids.tolist()}, {len(self.continuation_ids)} continuation "
                f"pieces, seed={self.seed})")


class _Framed(nn.Module):
    """A BERT classifier fed the words alone: [CLS] and [SEP] are added around them (for ERASER, which
    deletes words and must keep the frame)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, body: torch.Tensor) -> torch.Tensor:
        return self.model(frame(body))


# ----------------------------------------------------------------------------------------------
# the grid


def _penalty(method: str, s: TransformerSettings):
    from ..penalties import CDEP, RRR, SaliencyGuided

    if method == "rrr":
        return RRR(), s.rrr_lambda
    if method == "cdep":
        return CDEP(), s.cdep_lambda
    if method == "sgt":
        return SaliencyGuided(fraction=s.sgt_fraction), s.sgt_lambda
    return None, 0.0


def _train(s: TransformerSettings, method: str, seed: int, run_dir: Path, model_kwargs: dict[str, Any], train_set,
           test_set, val_set) -> tuple[nn.Module, dict[str, Any]]:
    from ..models import build_model
    from ..objective import Objective
    from ..training import TrainConfig, train

    torch.manual_seed(seed)
    model_name = MODEL_PATHS["vit" if s.part == "vit" else "bert"]
    model = build_model(model_name, **model_kwargs)
    penalty, weight = _penalty(method, s)
    objective = Objective({penalty: weight} if penalty is not None else None, seed=seed)
    config = TrainConfig(epochs=s.epochs, batch_size=s.batch_size, lr=s.lr, seed=seed, device=s.device,
                         select="best_val_accuracy", progress=False, eval_batch_size=500)
    started = time.perf_counter()
    result = train(model, objective, train_set, test_set, config=config, val_set=val_set, run_dir=run_dir,
                   resume="auto", run_info={"study": f"transformers-{s.part}", "method": method, "lambda": weight,
                                            "seed": seed, "model": model_name, "model_kwargs": model_kwargs})
    final = result.final
    return model.eval(), {"part": s.part, "method": method, "lambda": weight, "seed": seed,
                          "test_accuracy": 100 * final["test_accuracy"], "val_accuracy": 100 * final["val_accuracy"],
                          "selected_epoch": final["epoch"], "epochs_run": len(result.history),
                          "seconds": time.perf_counter() - started}


def _run_name(method: str, lam: float, seed: int) -> str:
    return f"{method}_lam{lam:g}_seed{seed}"


def run_transformer_study(settings: TransformerSettings) -> list[dict[str, Any]]:
    """The study's Python API: train (or reuse) every (method, seed) run of the part, measure it and write
    ``runs.csv``, ``results.csv``, ``results.json`` and ``summary.md`` / ``.html`` into ``settings.output``.

    Returns:
        One record per run (method, λ, seed, test and validation accuracy, seconds, the part's columns).

    Example::

        >>> records = run_transformer_study(TransformerSettings("decoy", limit=200, epochs=1))  # doctest: +SKIP
    """
    s = settings
    _hf()
    if s.threads:
        torch.set_num_threads(s.threads)
    out = Path(s.output)
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    part = {"decoy": _decoy, "eraser": _eraser, "vit": _vit}[s.part]
    records, data = part(s, out)
    _write(out, s, records, data, time.perf_counter() - started)
    print(f"results in {out / 'summary.md'}", flush=True)
    return records


def _grid(s: TransformerSettings, out: Path, key: dict[str, Any], one) -> list[dict[str, Any]]:
    """Every (seed, method) run's record: reused when made with ``key``'s settings, refused when made with
    others (text parts); the ViT part keeps the DecoyMNIST study's layout (the record beside its
    ``settings_hash``, a record of other settings made again through a resumed run)."""
    records = []
    for seed in s.seeds:
        for method in s.methods:
            lam = _penalty(method, s)[1]
            run_dir = out / "runs" / _run_name(method, lam, seed)
            make = lambda: one(method, seed, run_dir)  # noqa: E731
            if s.part == "vit":
                record, fresh = cached(run_dir / "result.json", make, key=settings_hash(key), key_field="settings_hash")
            else:
                record, fresh = cached_run(run_dir / "result.json", make, key)
            if fresh:
                print(f"{run_dir.name}: test {record['test_accuracy']:.1f} % ({record['seconds']:.0f} s)", flush=True)
            records.append(record)
    return records


def _tokenizer(out: Path, sentences, vocab_size: int):
    path = out / "tokenizer.json"
    if path.is_file():
        return load_tokenizer(path)
    tokenizer = train_wordpiece(sentences, vocab_size)
    tokenizer.backend_tokenizer.save(str(path))
    return tokenizer


def _key(s: TransformerSettings, **data: Any) -> dict[str, Any]:
    """What a run's record depends on besides its name (method, λ, seed)."""
    fields = ("epochs", "limit", "test_limit", "hidden", "layers", "heads", "batch_size", "lr", "sgt_fraction")
    fields += ("patch",) if s.part == "vit" else ("vocab_size", "max_length")
    fields += ("eval_limit",) if s.part == "eraser" else ()
    return {**{f: getattr(s, f) for f in fields}, **data}


def _decoy(s: TransformerSettings, out: Path):
    from ..data.text import DECOY_WORDS, sst_bias
    from ..inputs import MUST_NOT_USE
    from .behaviour import shortcut_evidence

    splits = sst_bias("decoy", s.data_root, seed=0, limit=s.limit)
    train_words = splits.train.sentences()
    tokenizer = _tokenizer(out, train_words, s.vocab_size)
    hook = FramedDecoyShortcut.for_tokenizer(tokenizer, DECOY_WORDS)
    masks = [row[: len(w)].tolist() for row, w in zip(splits.train.extras["mask"], train_words)]

    def make(ds, m, name):
        return encode(tokenizer, ds.sentences(), ds.y.tolist(), m, max_length=s.max_length, name=name,
                      source=ds.source)

    train_set, dev, test = make(splits.train, masks, "sst-decoy"), make(splits.dev, None, "sst-2 dev"), \
        make(splits.test, None, "sst-2 test")
    kwargs = {"vocab_size": tokenizer.vocab_size, "hidden": s.hidden, "layers": s.layers, "heads": s.heads,
              "max_length": s.max_length}

    def one(method: str, seed: int, run_dir: Path) -> dict[str, Any]:
        model, record = _train(s, method, seed, run_dir, kwargs, train_set, test, dev)
        evidence = shortcut_evidence(model, test.x, test.y, test.extras["mask"], meaning=MUST_NOT_USE,
                                     shortcut=FramedDecoyShortcut.for_tokenizer(tokenizer, DECOY_WORDS, seed=seed),
                                     seed=seed, source="SST-2 test")
        return {**record, **evidence}

    key = _key(s, train_sentences=len(train_set), test_sentences=len(test))
    data = {"train": f"{train_set.source}: {len(train_set)} sentences", "dev": f"{len(dev)} sentences",
            "test": f"{test.source}: {len(test)} sentences (clean)", "tokenizer": f"WordPiece, {tokenizer.vocab_size} "
            f"pieces, trained on the training sentences (tokenizer.json)", "decoy_ids": hook.word_ids.tolist()}
    return _grid(s, out, key, one), data


def _eraser(s: TransformerSettings, out: Path):
    from ..metrics.functional.text import eraser
    from ..training import iterate_batches
    from .sgt_text import _data, token_attribution

    train_words, dev_words, test_words, _ = _data(s.data_root, s.limit)
    tokenizer = _tokenizer(out, train_words.sentences(), s.vocab_size)
    def make(ds, name):
        return encode(tokenizer, ds.sentences(), ds.y.tolist(), max_length=s.max_length, name=name, source=ds.source)

    train_set, dev = make(train_words, "sst-2 train"), make(dev_words, "sst-2 dev")
    test = make(test_words, "sst-2 test")
    g = torch.Generator().manual_seed(1)
    eval_set = test.take(torch.randperm(len(test), generator=g)[:s.eval_limit].sort().values)
    kwargs = {"vocab_size": tokenizer.vocab_size, "hidden": s.hidden, "layers": s.layers, "heads": s.heads,
              "max_length": s.max_length}

    def one(method: str, seed: int, run_dir: Path) -> dict[str, Any]:
        model, record = _train(s, method, seed, run_dir, kwargs, train_set, test, dev)
        framed = _Framed(model)
        for name in ATTRIBUTIONS:
            comp, suff = [], []
            for start, (x, y, _) in zip(range(0, len(eval_set), 50), iterate_batches(eval_set, 50, shuffle=False)):
                scores = token_attribution(model, x, y, name, seed=seed, index=torch.arange(start, start + len(x)))
                faith = eraser(framed, unframe(x), y, unframe(scores * (x != PAD) * (x != CLS) * (x != SEP), 0))
                comp.append(faith["comprehensiveness"])
                suff.append(faith["sufficiency"])
            record[f"{name}_comprehensiveness"] = float(torch.cat(comp).mean())
            record[f"{name}_sufficiency"] = float(torch.cat(suff).mean())
        return record

    key = _key(s, train_sentences=len(train_set), eval_sentences=len(eval_set))
    data = {"train": f"{train_set.source}: {len(train_set)} sentences", "dev": f"{len(dev)} sentences",
            "test": f"{len(test)} sentences; ERASER on {len(eval_set)}",
            "tokenizer": f"WordPiece, {tokenizer.vocab_size} pieces, trained on the training sentences "
                         "(tokenizer.json)"}
    return _grid(s, out, key, one), data


def _vit(s: TransformerSettings, out: Path):
    from .cdep_mnist import add_shortcut_evidence, load_data

    if 28 % s.patch:
        raise ValueError(f"patch must divide 28 (the image size), got {s.patch}")
    train_set, val_set, test_set, _ = load_data("decoymnist", s.data_root, s.limit or 10000, s.test_limit)
    kwargs = {"hidden": s.hidden, "layers": s.layers, "heads": s.heads, "patch": s.patch}

    def one(method: str, seed: int, run_dir: Path) -> dict[str, Any]:
        return _train(s, method, seed, run_dir, kwargs, train_set, test_set, val_set)[1]

    key = _key(s, train_images=len(train_set), test_images=len(test_set))
    records = _grid(s, out, key, one)
    add_shortcut_evidence(out, settings_hash(key), test_set, "decoymnist")
    for record in records:  # the behavioural columns of add_shortcut_evidence, beside the record
        evidence = runs.read_json(out / "runs" / _run_name(record["method"], record["lambda"], record["seed"])
                                  / "behaviour.json")
        record.update({k: v for k, v in evidence.items() if k != "key"})
    data = {"train": f"{train_set.source}: {len(train_set)} images", "val": f"{len(val_set)} images",
            "test": f"{test_set.source}: {len(test_set)} images"}
    return records, data


# ----------------------------------------------------------------------------------------------
# outputs


def _columns(s: TransformerSettings) -> list[str]:
    if s.part == "eraser":
        return [f"{m}_{k}" for m in ATTRIBUTIONS for k in ("comprehensiveness", "sufficiency")]
    return list(COLUMNS)


def summarise(records: list[dict[str, Any]], columns: Sequence[str]) -> list[dict[str, Any]]:
    """Mean and standard deviation (n − 1) over seeds of ``test_accuracy`` and ``columns`` per (method, λ),
    NaN-valued runs left out of a column.

    Example::

        >>> rows = summarise([{"method": "rrr", "lambda": 1.0, "test_accuracy": 80.0, "x": 1.0},
        ...                   {"method": "rrr", "lambda": 1.0, "test_accuracy": 84.0, "x": float("nan")}], ["x"])
        >>> rows[0]["test_accuracy"], round(rows[0]["test_accuracy_std"], 3), rows[0]["x"], rows[0]["seeds"]
        (82.0, 2.828, 1.0, 2)
    """
    groups: dict[tuple[str, float], list[dict[str, Any]]] = {}
    for r in records:
        groups.setdefault((r["method"], r["lambda"]), []).append(r)
    rows = []
    for (method, lam), rs in groups.items():
        row: dict[str, Any] = {"method": method, "lambda": lam, "seeds": len(rs)}
        for c in ["test_accuracy", *columns]:
            values = torch.tensor([float(r.get(c, math.nan)) for r in rs], dtype=torch.float64)
            values = values[~values.isnan()]
            row[c] = float(values.mean()) if len(values) else math.nan
            row[f"{c}_std"] = float(values.std()) if len(values) > 1 else math.nan
        rows.append(row)
    return rows


def command_line(s: TransformerSettings) -> str:
    """The ``explainreg study transformers`` command that makes these settings."""
    defaults = TransformerSettings(s.part)
    parts = ["explainreg study transformers", f"--part {s.part}"]
    for name, value in asdict(s).items():
        if name in ("part", "threads", "device") or value == getattr(defaults, name):
            continue
        flag = "--" + name.replace("_", "-")
        parts.append(f"{flag} " + " ".join(map(str, value)) if isinstance(value, (list, tuple)) else f"{flag} {value}")
    return " ".join(parts)


TITLES = {"decoy": "A small BERT on CDEP's SST decoy: accuracy and shortcut reliance",
          "eraser": "Saliency Guided Training of a small BERT on SST-2: accuracy and ERASER faithfulness",
          "vit": "A small ViT on DecoyMNIST: accuracy and shortcut reliance"}


def _write(out: Path, s: TransformerSettings, records: list[dict[str, Any]], data: dict[str, Any],
           seconds: float) -> None:
    columns = _columns(s)
    fields = ["method", "lambda", "seed", "test_accuracy", "val_accuracy", "selected_epoch", "epochs_run", "seconds",
              *columns]
    with open(out / "runs.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fields, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(records)
    summary = summarise(records, columns)
    with open(out / "results.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, list(summary[0]) if summary else ["method"])
        writer.writeheader()
        writer.writerows(summary)
    runs.atomic_write_json(out / "results.json", {
        "study": f"transformers-{s.part}", "settings": asdict(s), "command": command_line(s),
        "argv": sys.argv, "environment": _environment(), "data": data, "seconds": seconds, "runs": records,
        "summary": summary})
    report = Report(TITLES[s.part])
    env = _environment()
    report.text(f"Command: `{command_line(s)}`. Versions: " + ", ".join(f"{k} {v}" for k, v in env.items()
                                                                           if k != "platform") + ".")
    report.text("Data: " + "; ".join(f"{k}: {v}" for k, v in data.items()) + ".")
    model = (f"ViT, patch {s.patch}" if s.part == "vit" else "BERT") + \
        f", {s.layers} layers, hidden {s.hidden}, {s.heads} heads, from scratch; Adam {s.lr:g}, " \
        f"batch {s.batch_size}, " \
        f"{s.epochs} epochs, the best validation epoch kept. λ: RRR {s.rrr_lambda:g}, CDEP {s.cdep_lambda:g}, " \
        f"SGT {s.sgt_lambda:g} (fraction {s.sgt_fraction:g})."
    report.text(f"Model: {model}")

    def cell(row: dict[str, Any], c: str, digits: int) -> str:
        v, sd = row[c], row[f"{c}_std"]
        return "–" if math.isnan(v) else mean_std(v, 0.0 if math.isnan(sd) else sd, row["seeds"], digits)

    if s.part == "eraser":
        header = ["training", "test acc. (%)"] + [f"{m} {k}" for m in ("grad", "IG", "SmoothGrad", "random")
                                                  for k in ("comp.", "suff.")]
        body = [["guided" if r["method"] == "sgt" else "regular", cell(r, "test_accuracy", 1)]
                + [cell(r, c, 3) for c in columns] for r in summary]
        notes = "ERASER AOPC over k ∈ {1, 5, 10, 20, 50} % of the word pieces; comprehensiveness higher and " \
                "sufficiency lower is better; random is the reference."
    else:
        shown = [c for c in columns if any(not math.isnan(r[c]) for r in summary)]
        header = ["method", "λ", "test acc. (%)"] + [COLUMNS[c] for c in shown]
        body = [[r["method"], f"{r['lambda']:g}", cell(r, "test_accuracy", 1)]
                + [cell(r, c, 3 if c.endswith("share") else 1) for c in shown] for r in summary]
        notes = "Mean ± std over seeds. Reliance: accuracy with the label's own decoy minus with another class's; " \
                "flip: predictions changed by another class's decoy; shares: the decoy's share of the true " \
                "class's logit and of its margin (documentation: methods/shortcuts)."
    report.table(Table(header, body, None, notes=notes))
    report.write(out, name="summary")


def _environment() -> dict[str, str]:
    env = runs.environment()
    for name in ("transformers", "tokenizers"):
        try:
            env[name] = __import__(name).__version__
        except ImportError:
            env[name] = "not installed"
    return env


def run(args: argparse.Namespace) -> int:
    """``explainreg study transformers``: :func:`run_transformer_study` with the command line's settings."""
    run_transformer_study(TransformerSettings.from_args(args))
    return 0


register_study("transformers", "HuggingFace BERT / ViT from small configs on SST decoy, SST-2 (SGT, ERASER) "
                               "and DecoyMNIST", add_arguments, run)
