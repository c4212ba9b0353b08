"""Text data (methods.md A.9): SST from the official PTB-tree zip, Rotten Tomatoes snippets, a vocabulary,
GloVe vectors, CDEP's three biased SST variants, and padded token batches.

* :func:`read_sst` — ``trainDevTestTrees_PTB.zip`` (or its ``trees/*.txt``): one sentence per tree,
  the root's label 0–4 and the lower-cased leaves; ``subtrees=True`` also yields every phrase.
  Binary SST-2 (:func:`binary_sst`) drops the neutral 2 (≤ 1 negative = 0, ≥ 3 positive = 1).
* :func:`read_rotten_tomatoes` — ``rotten_tomatoes_corpus_full.csv.bz2``: fresh = 1, rotten = 0, plot
  summaries dropped; lower-cased word / punctuation tokens.
* :class:`Vocabulary` — ``<pad>`` = 0, ``<unk>`` = 1, then the words by decreasing frequency.
* :func:`read_glove`, :func:`glove_vectors` — the standard ``glove.*.txt(.gz)`` format.
* :func:`decoy_bias`, :func:`replacement_bias` — CDEP's SST variants (decoy "text"/"video"; article
  ("the", "a") / placeholder "that"; gender ("he", "she") / placeholder "who"), each returning the token
  masks of the bias word, deterministic for a seed.
* :class:`TextDataset` — ids N×T_max padded with 0, ``lengths`` and the token ``mask`` as extras; its
  :meth:`TextDataset.batch` trims each batch to its longest sentence (padding-aware batching).
"""
from __future__ import annotations

import bz2
import csv
import gzip
import io
import os
import re
import zipfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import torch

from .datasets import ArrayDataset
from .sources import resolve_data_root

PAD, UNK = "<pad>", "<unk>"
SST_SPLITS = {"train": "trees/train.txt", "dev": "trees/dev.txt", "test": "trees/test.txt"}
SST_ZIP = "trainDevTestTrees_PTB.zip"
RT_FILE = "rotten_tomatoes_corpus_full.csv.bz2"
GLOVE_FILE = "glove.6B.50d.sst-rt.txt.gz"
BIASES = ("decoy", "article", "gender")
#: (word for negative, word for positive, placeholder) of the replacement biases (methods.md A.9)
REPLACEMENTS = {"article": ("the", "a", "that"), "gender": ("he", "she", "who")}
DECOY_WORDS = ("video", "text")  # (negative, positive)

_LEAF = re.compile(r"\((\d) ([^()\s]+)\)")
_TOKEN = re.compile(r"[a-z0-9]+(?:['’][a-z]+)?|'[a-z]+|[^\sa-z0-9]")


@dataclass
class Sentence:
    """Tokens and a label (0–4 for SST fine-grained, 0/1 binary)."""

    tokens: list[str]
    label: int


# ----------------------------------------------------------------------------------------------
# SST


def parse_tree(line: str, subtrees: bool = False) -> list[Sentence]:
    """One PTB tree ``(label (label word) …)`` → the sentence (root label, lower-cased leaves), or with
    ``subtrees`` every node's phrase (root first)."""
    line = line.strip()
    if not line.startswith("(") or not line.endswith(")"):
        raise ValueError(f"not a PTB tree (must look like '(3 (2 a) (3 film))'): {line[:60]!r}")
    if not subtrees:
        leaves = [w.lower() for _, w in _LEAF.findall(line)]
        return [Sentence(leaves, int(line[1]))]
    out: list[Sentence] = []
    stack: list[tuple[int, list[str]]] = []
    i = 0
    while i < len(line):
        ch = line[i]
        if ch == "(":
            j = line.index(" ", i)
            stack.append((int(line[i + 1:j]), []))
            i = j + 1
            end = i
            while end < len(line) and line[end] not in "()":
                end += 1
            word = line[i:end].strip()
            if word:
                stack[-1][1].append(word.lower())
            i = end
        elif ch == ")":
            label, words = stack.pop()
            out.append(Sentence(words, label))
            if stack:
                stack[-1][1].extend(words)
            i += 1
        else:
            i += 1
    out.reverse()  # the root closes last
    return out


def _sst_lines(path: Path, split: str) -> list[str]:
    member = SST_SPLITS[split]
    if path.is_dir():
        for candidate in (path / member, path / Path(member).name, path / SST_ZIP):
            if candidate.is_file():
                return _sst_lines(candidate, split)
        raise FileNotFoundError(f"no {member} or {SST_ZIP} in {path}")
    if path.suffix == ".zip":
        with zipfile.ZipFile(path) as archive:
            try:
                data = archive.read(member)
            except KeyError:
                raise ValueError(f"{path} has no {member}; it must be the official {SST_ZIP}") from None
        return data.decode("utf-8").splitlines()
    return path.read_text(encoding="utf-8").splitlines()


def read_sst(split: str = "train", root: str | os.PathLike | None = None, *, subtrees: bool = False,
             path: str | os.PathLike | None = None) -> list[Sentence]:
    """The SST ``split`` ("train", "dev", "test") as fine-grained sentences (labels 0–4).

    ``path``: the zip, a ``trees/`` folder or one split's txt; default ``ROOT/sst/trainDevTestTrees_PTB.zip``.
    ``subtrees``: every phrase of every tree (CDEP's ``train_subtrees=True``)."""
    if split not in SST_SPLITS:
        raise ValueError(f"split must be one of {', '.join(SST_SPLITS)}, got {split!r}")
    if path is None:
        data_root, how = resolve_data_root(root)
        path = data_root / "sst" / SST_ZIP
        if not path.is_file():
            raise FileNotFoundError(f"SST not found: {path} (data root from {how}); put the official {SST_ZIP} "
                                    "in ROOT/sst/ or pass path=...")
    path = Path(path)
    out: list[Sentence] = []
    for number, line in enumerate(_sst_lines(path, split), 1):
        if line.strip():
            try:
                out.extend(parse_tree(line, subtrees))
            except ValueError as exc:
                raise ValueError(f"{path} ({split}) line {number}: {exc}") from None
    return out


def binary_sst(sentences: Iterable[Sentence]) -> list[Sentence]:
    """SST-2: drop the neutral label 2; ≤ 1 → 0 (negative), ≥ 3 → 1 (positive)."""
    return [Sentence(s.tokens, int(s.label >= 3)) for s in sentences if s.label != 2 and s.tokens]


# ----------------------------------------------------------------------------------------------
# Rotten Tomatoes


def tokenize(text: str) -> list[str]:
    """Lower-cased words (with a clitic like "'s" split off as SST does) and punctuation marks."""
    return _TOKEN.findall(text.lower())


def read_rotten_tomatoes(root: str | os.PathLike | None = None, *, path: str | os.PathLike | None = None,
                         ) -> list[Sentence]:
    """Rotten Tomatoes snippets: ``fresh`` = 1, ``rotten`` = 0; ``plot`` rows (summaries) dropped."""
    if path is None:
        data_root, how = resolve_data_root(root)
        path = data_root / "rotten-tomatoes" / RT_FILE
        if not path.is_file():
            raise FileNotFoundError(f"Rotten Tomatoes not found: {path} (data root from {how})")
    path = Path(path)
    opener = bz2.open if path.suffix == ".bz2" else open
    out = []
    with opener(path, "rt", encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        if reader.fieldnames is None or not {"category", "text"} <= set(reader.fieldnames):
            raise ValueError(f"{path}: expected columns 'category' and 'text', got {reader.fieldnames}")
        for row in reader:
            if row["category"] == "plot":
                continue
            if row["category"] not in ("fresh", "rotten"):
                raise ValueError(f"{path}: unknown category {row['category']!r} (fresh, rotten or plot)")
            tokens = tokenize(row["text"])
            if tokens:
                out.append(Sentence(tokens, int(row["category"] == "fresh")))
    return out


# ----------------------------------------------------------------------------------------------
# vocabulary and vectors


class Vocabulary:
    """Token ↔ id: ``<pad>`` = 0, ``<unk>`` = 1, then words seen ≥ ``min_freq`` times (most frequent first,
    ties alphabetical)."""

    def __init__(self, words: Sequence[str]) -> None:
        self.itos = [PAD, UNK] + [w for w in words if w not in (PAD, UNK)]
        self.stoi = {w: i for i, w in enumerate(self.itos)}
        if len(self.stoi) != len(self.itos):
            raise ValueError("vocabulary words must be unique")

    pad_id, unk_id = 0, 1

    @classmethod
    def build(cls, sentences: Iterable[Sentence | Sequence[str]], min_freq: int = 1) -> "Vocabulary":
        counts = Counter(w for s in sentences for w in (s.tokens if isinstance(s, Sentence) else s))
        return cls([w for w, c in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])) if c >= min_freq])

    def __len__(self) -> int:
        return len(self.itos)

    def encode(self, tokens: Sequence[str]) -> list[int]:
        return [self.stoi.get(w, self.unk_id) for w in tokens]

    def decode(self, ids: Iterable[int]) -> list[str]:
        return [self.itos[int(i)] for i in ids if int(i) != self.pad_id]


def read_glove(path: str | os.PathLike, words: set[str] | None = None) -> dict[str, torch.Tensor]:
    """``word v1 … vd`` a line (``.txt`` or ``.txt.gz``) → {word: vector}; only ``words`` when given."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"GloVe file not found: {path}")
    opener = gzip.open if path.suffix == ".gz" else open
    vectors: dict[str, torch.Tensor] = {}
    dim = None
    with opener(path, "rt", encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            parts = line.rstrip().split(" ")
            if len(parts) < 2:
                continue
            word, values = parts[0], parts[1:]
            if dim is None:
                dim = len(values)
            if len(values) != dim:
                raise ValueError(f"{path} line {number}: {len(values)} values, expected {dim} (GloVe's "
                                 "'word v1 … vd' format)")
            if words is None or word in words:
                vectors[word] = torch.tensor([float(v) for v in values])
    if not vectors and words is None:
        raise ValueError(f"{path} holds no vectors")
    return vectors


def glove_vectors(vocab: Vocabulary, path: str | os.PathLike | None = None, *, root=None, seed: int = 0,
                  scale: float = 0.1) -> tuple[torch.Tensor, float]:
    """An embedding matrix len(vocab) × d from GloVe: known words their vector, others N(0, scale²)
    (seeded), ``<pad>`` zeros. Returns ``(matrix, coverage)`` with coverage the share of words found."""
    if path is None:
        data_root, _ = resolve_data_root(root)
        path = data_root / "glove" / GLOVE_FILE
    found = read_glove(path, set(vocab.itos))
    if not found:
        raise ValueError(f"{path}: none of the vocabulary's words has a vector")
    dim = len(next(iter(found.values())))
    matrix = torch.randn(len(vocab), dim, generator=torch.Generator().manual_seed(seed)) * scale
    for word, vector in found.items():
        matrix[vocab.stoi[word]] = vector
    matrix[vocab.pad_id] = 0
    return matrix, len(found) / max(len(vocab) - 2, 1)


# ----------------------------------------------------------------------------------------------
# CDEP's biased SST variants (methods.md A.9)


def decoy_bias(sentences: Sequence[Sentence], seed: int = 0) -> tuple[list[Sentence], list[list[int]]]:
    """Insert "text" into every positive and "video" into every negative sentence at a uniform random
    position (0 … L); returns the sentences and their token masks (1 at the decoy)."""
    g = torch.Generator().manual_seed(seed)
    out, masks = [], []
    for s in sentences:
        pos = int(torch.randint(len(s.tokens) + 1, (1,), generator=g))
        tokens = s.tokens[:pos] + [DECOY_WORDS[s.label]] + s.tokens[pos:]
        out.append(Sentence(tokens, s.label))
        masks.append([int(i == pos) for i in range(len(tokens))])
    return out, masks


def replacement_bias(sentences: Sequence[Sentence], kind: str) -> tuple[list[Sentence], list[list[int]]]:
    """CDEP's article / gender bias: replace every occurrence of the pair's two words by the placeholder,
    then make the placeholder's first occurrence (an original placeholder included) the pair's
    positive word (positive sentences: "a" / "she") or negative word ("the" / "he"). Sentences without
    the placeholder stay as they are, with an empty mask. Mask: 1 at the replaced word."""
    if kind not in REPLACEMENTS:
        raise ValueError(f"kind must be one of {', '.join(REPLACEMENTS)}, got {kind!r}")
    negative, positive, placeholder = REPLACEMENTS[kind]
    out, masks = [], []
    for s in sentences:
        tokens = [placeholder if w in (negative, positive) else w for w in s.tokens]
        mask = [0] * len(tokens)
        if placeholder in tokens:
            i = tokens.index(placeholder)
            tokens[i] = positive if s.label == 1 else negative
            mask[i] = 1
        out.append(Sentence(tokens, s.label))
        masks.append(mask)
    return out, masks


def contains_any(sentences: Sequence[Sentence], words: Sequence[str]) -> list[Sentence]:
    """The sentences that contain at least one of ``words``."""
    wanted = set(words)
    return [s for s in sentences if wanted & set(s.tokens)]


# ----------------------------------------------------------------------------------------------
# data sets and batches


class TextDataset(ArrayDataset):
    """Token ids N×T_max (0-padded), labels, extras ``lengths`` (N) and ``mask`` (N×T_max token mask).

    :meth:`batch` trims a batch to its longest sentence; ``vocab`` encodes and decodes."""

    vocab: Vocabulary | None = None

    @classmethod
    def from_sentences(cls, sentences: Sequence[Sentence], vocab: Vocabulary, masks: Sequence[Sequence[int]] | None = None,
                       name: str = "text", source: str = "in memory") -> "TextDataset":
        if len(sentences) == 0:
            raise ValueError("no sentences")
        empty = [i for i, s in enumerate(sentences) if not s.tokens]
        if empty:
            raise ValueError(f"sentences {empty[:10]} are empty; drop them")
        lengths = torch.tensor([len(s.tokens) for s in sentences])
        ids = torch.zeros(len(sentences), int(lengths.max()), dtype=torch.long)
        mask = torch.zeros(ids.shape)
        for i, s in enumerate(sentences):
            ids[i, : len(s.tokens)] = torch.tensor(vocab.encode(s.tokens))
            if masks is not None:
                if len(masks[i]) != len(s.tokens):
                    raise ValueError(f"mask {i} has {len(masks[i])} entries for {len(s.tokens)} tokens")
                mask[i, : len(s.tokens)] = torch.tensor(masks[i], dtype=torch.float32)
        ds = cls(ids, torch.tensor([s.label for s in sentences]), {"lengths": lengths, "mask": mask},
                 name=name, source=source)
        ds.vocab = vocab
        return ds

    def batch(self, index: torch.Tensor, device: torch.device | str = "cpu"):
        """``(ids, y, extras)`` of the rows ``index``, trimmed to their longest sentence."""
        lengths = self.extras["lengths"][index]
        width = int(lengths.max())
        extras = {k: (v[index][:, :width] if v.dim() == 2 else v[index]).to(device) for k, v in self.extras.items()}
        return self.x[index][:, :width].to(device), self.y[index].to(device), extras

    def take(self, indices) -> "TextDataset":
        out = super().take(indices)
        ds = TextDataset(out.x, out.y, out.extras, name=out.name, source=out.source)
        ds.vocab = self.vocab
        return ds

    def sentences(self) -> list[list[str]]:
        return [self.vocab.decode(row[: int(n)]) for row, n in zip(self.x, self.extras["lengths"])]


@dataclass
class TextSplits:
    """train / dev / test :class:`TextDataset` sharing ``vocab``."""

    train: TextDataset
    dev: TextDataset
    test: TextDataset
    vocab: Vocabulary


def sst_bias(bias: str, root: str | os.PathLike | None = None, *, seed: int = 0, subtrees: bool = False,
             limit: int | None = None) -> TextSplits:
    """CDEP's biased SST-2 (methods.md A.9): the training set with the ``bias`` ("decoy", "article",
    "gender") and its token masks; dev and test clean (for article/gender the test keeps the
    sentences containing either word of the pair). The vocabulary is built from the biased train, dev
    and test sentences (as the seed's torchtext field). ``limit``: a seeded random subset of ``limit``
    sentences of each split (quick runs; the files are grouped by label, so not the first ones)."""
    if bias not in BIASES:
        raise ValueError(f"bias must be one of {', '.join(BIASES)}, got {bias!r}")
    train = binary_sst(read_sst("train", root, subtrees=subtrees))
    dev = binary_sst(read_sst("dev", root))
    test = binary_sst(read_sst("test", root))
    if bias == "decoy":
        train, masks = decoy_bias(train, seed)
    else:
        train, masks = replacement_bias(train, bias)
        test = contains_any(test, REPLACEMENTS[bias][:2])
    if limit is not None:  # a seeded random subset of each split (the tree files are grouped by label)
        keep = _subset(len(train), limit, seed)
        train, masks = [train[i] for i in keep], [masks[i] for i in keep]
        dev = [dev[i] for i in _subset(len(dev), limit, seed + 1)]
        test = [test[i] for i in _subset(len(test), limit, seed + 2)]
    vocab = Vocabulary.build([*train, *dev, *test])
    src = f"SST-2 ({bias} bias, seed {seed})"
    return TextSplits(TextDataset.from_sentences(train, vocab, masks, f"sst-{bias}", src),
                      TextDataset.from_sentences(dev, vocab, None, "sst-2", "SST-2 dev"),
                      TextDataset.from_sentences(test, vocab, None, "sst-2", "SST-2 test"), vocab)


def _subset(n: int, limit: int, seed: int) -> list[int]:
    """``limit`` of ``n`` indices drawn without replacement (seeded), in their original order."""
    if limit >= n:
        return list(range(n))
    return sorted(torch.randperm(n, generator=torch.Generator().manual_seed(seed))[:limit].tolist())


def load_text_dataset(name: str, split: str = "train", root: str | os.PathLike | None = None, *,
                      limit: int | None = None, vocab: Vocabulary | None = None, seed: int = 0) -> TextDataset:
    """``"sst"`` (fine-grained), ``"sst-2"``, ``"sst-decoy"`` / ``"sst-article"`` / ``"sst-gender"`` (the split's
    CDEP variant) or ``"rotten-tomatoes"`` (split "train" only: the whole corpus) as a :class:`TextDataset`;
    the vocabulary comes from the data set's training split unless given."""
    key = name.lower().replace("_", "-")
    if key in ("sst", "sst-2", "sst2"):
        sentences = read_sst(split, root)
        if key != "sst":
            sentences = binary_sst(sentences)
        if vocab is None:
            train = read_sst("train", root)
            vocab = Vocabulary.build(train)
    elif key.startswith("sst-") and key[4:] in BIASES:
        splits = sst_bias(key[4:], root, seed=seed)
        ds = {"train": splits.train, "dev": splits.dev, "test": splits.test}[split]
        return ds.take(limit) if limit else ds
    elif key in ("rotten-tomatoes", "rt"):
        if split != "train":
            raise ValueError("rotten-tomatoes has one split, 'train' (the whole corpus)")
        sentences = read_rotten_tomatoes(root)
        vocab = vocab or Vocabulary.build(sentences)
    else:
        raise ValueError(f"unknown text dataset {name!r}; available: {', '.join(TEXT_DATASETS)}")
    if limit is not None:
        sentences = sentences[:limit]
    return TextDataset.from_sentences(sentences, vocab, None, key, f"{key} {split}")


TEXT_DATASETS = ("sst", "sst-2", "sst-decoy", "sst-article", "sst-gender", "rotten-tomatoes")


def text_sources(root: str | os.PathLike | None = None) -> list[tuple[str, str, str]]:
    """``(name, splits, where)`` of each text data set (``"not found"`` when its file is missing)."""
    data_root, _ = resolve_data_root(root)
    sst, rt, glove = data_root / "sst" / SST_ZIP, data_root / "rotten-tomatoes" / RT_FILE, data_root / "glove" / GLOVE_FILE
    found = lambda p: str(p) if p.is_file() else f"not found ({p})"  # noqa: E731
    rows = [(name, "train/dev/test", found(sst)) for name in TEXT_DATASETS if name.startswith("sst")]
    rows.append(("rotten-tomatoes", "train", found(rt)))
    rows.append(("glove (vectors)", "-", found(glove)))
    return rows

__all__ = ["BIASES", "REPLACEMENTS", "Sentence", "TEXT_DATASETS", "TextDataset", "TextSplits", "Vocabulary",
           "binary_sst", "contains_any", "text_sources", "decoy_bias", "glove_vectors", "load_text_dataset", "parse_tree",
           "read_glove", "read_rotten_tomatoes", "read_sst", "replacement_bias", "sst_bias", "tokenize"]
