"""Text data: SST from the official PTB-tree zip, Rotten Tomatoes snippets, a vocabulary,
GloVe vectors, CDEP's three biased SST variants, and padded token batches.

SST: Socher et al. (2013), "Recursive deep models for semantic compositionality over a sentiment
treebank". GloVe: Pennington, Socher & Manning (2014), "GloVe: global vectors for word representation".
The biased variants: Rieger, Singh, Murdoch & Yu (2020), "Interpretations are useful: penalizing
explanations to align neural networks with prior knowledge".

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

from .arrays import ArrayDataset, stratified_subset, subset_note
from .catalog import DATASETS, DataSetFamily
from .sources import resolve_data_root

PAD, UNK = "<pad>", "<unk>"
SST_SPLITS = {"train": "trees/train.txt", "dev": "trees/dev.txt", "test": "trees/test.txt"}
SST_ZIP = "trainDevTestTrees_PTB.zip"
RT_FILE = "rotten_tomatoes_corpus_full.csv.bz2"
GLOVE_FILE = "glove.6B.50d.sst-rt.txt.gz"
BIASES = ("decoy", "article", "gender")
#: (word for negative, word for positive, placeholder) of the replacement biases (CDEP's SST variants)
REPLACEMENTS = {"article": ("the", "a", "that"), "gender": ("he", "she", "who")}
DECOY_WORDS = ("video", "text")  # (negative, positive)

_LEAF = re.compile(r"\((\d) ([^()\s]+)\)")
_TOKEN = re.compile(r"[a-z0-9]+(?:['’][a-z]+)?|'[a-z]+|[^\sa-z0-9]")


@dataclass
class Sentence:
    """Tokens and a label (0–4 for SST fine-grained, 0/1 binary).

    Example::

        >>> from explainreg.data.text import Sentence
        >>> Sentence(["a", "fine", "film"], 1)
        Sentence(tokens=['a', 'fine', 'film'], label=1)
    """

    tokens: list[str]
    label: int


# ----------------------------------------------------------------------------------------------
# SST


def parse_tree(line: str, subtrees: bool = False) -> list[Sentence]:
    """One PTB tree ``(label (label word) …)`` → the sentence (root label, lower-cased leaves), or with
    ``subtrees`` every node's phrase (root first).

    Args:
        line: one tree of SST's PTB files.
        subtrees: every phrase, not only the sentence.

    Returns:
        A list of :class:`Sentence`.

    Raises:
        ValueError: the line is not a parenthesised tree.

    Example::

        >>> from explainreg.data.text import parse_tree
        >>> parse_tree("(3 (2 A) (4 (4 great) (2 film)))")
        [Sentence(tokens=['a', 'great', 'film'], label=3)]
        >>> [(" ".join(s.tokens), s.label) for s in parse_tree("(3 (2 A) (4 (4 great) (2 film)))", subtrees=True)]
        [('a great film', 3), ('great film', 4), ('film', 2), ('great', 4), ('a', 2)]
    """
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
    ``subtrees``: every phrase of every tree (CDEP's ``train_subtrees=True``).

    Args:
        split: ``"train"``, ``"dev"`` or ``"test"``.
        root: the data root (``ROOT/sst/trainDevTestTrees_PTB.zip``).
        subtrees: every phrase.
        path: the zip, a ``trees/`` folder or one split's txt (instead of ``root``).

    Returns:
        The sentences (labels 0–4).

    Raises:
        ValueError: a bad split or a malformed tree (file and line named).
        FileNotFoundError: no SST files.

    Example::

        >>> import tempfile, zipfile; from pathlib import Path
        >>> tmp = tempfile.TemporaryDirectory(); Path(tmp.name, "sst").mkdir()   # a tiny stand-in for SST's zip
        >>> trees = "(4 (3 a) (4 (4 great) (2 film)))\\n(0 (2 the) (0 (0 awful) (2 plot)))\\n(2 (2 a) (2 video))\\n"
        >>> with zipfile.ZipFile(Path(tmp.name, "sst", "trainDevTestTrees_PTB.zip"), "w") as archive:
        ...     for split in ("train", "dev", "test"):
        ...         archive.writestr(f"trees/{split}.txt", trees)
        >>> from explainreg.data.text import read_sst
        >>> [(s.tokens, s.label) for s in read_sst("dev", tmp.name)]
        [(['a', 'great', 'film'], 4), (['the', 'awful', 'plot'], 0), (['a', 'video'], 2)]
        >>> len(read_sst("train", tmp.name, subtrees=True))                  # 5 + 5 + 3 phrases
        13
        >>> tmp.cleanup()
    """
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
    """SST-2: drop the neutral label 2; ≤ 1 → 0 (negative), ≥ 3 → 1 (positive).

    Args:
        sentences: fine-grained sentences (empty ones are dropped too).

    Returns:
        The binary sentences.

    Example::

        >>> from explainreg.data.text import Sentence, binary_sst
        >>> [s.label for s in binary_sst([Sentence(["x"], k) for k in range(5)])]
        [0, 0, 1, 1]
    """
    return [Sentence(s.tokens, int(s.label >= 3)) for s in sentences if s.label != 2 and s.tokens]


# ----------------------------------------------------------------------------------------------
# Rotten Tomatoes


def tokenize(text: str) -> list[str]:
    """Lower-cased words and punctuation marks: a contraction ("it's", "isn't") stays one token, a clitic
    already split off as in SST's trees ("film 's") is a token of its own.

    Args:
        text: raw text.

    Returns:
        The tokens.

    Example::

        >>> from explainreg.data.text import tokenize
        >>> tokenize("It's a GREAT film, isn't it?"), tokenize("the film 's end")
        (["it's", 'a', 'great', 'film', ',', "isn't", 'it', '?'], ['the', 'film', "'s", 'end'])
    """
    return _TOKEN.findall(text.lower())


def read_rotten_tomatoes(root: str | os.PathLike | None = None, *, path: str | os.PathLike | None = None,
                         ) -> list[Sentence]:
    """Rotten Tomatoes snippets: ``fresh`` = 1, ``rotten`` = 0; ``plot`` rows (summaries) dropped.

    Args:
        root: the data root (``ROOT/rotten-tomatoes/rotten_tomatoes_corpus_full.csv.bz2``).
        path: the CSV (``.bz2`` or plain) with columns ``category`` and ``text``, instead of ``root``.

    Returns:
        The tokenised sentences (empty ones dropped).

    Raises:
        FileNotFoundError: no file.
        ValueError: missing columns or an unknown category.

    Example::

        >>> import bz2, tempfile; from pathlib import Path
        >>> from explainreg.data.text import read_rotten_tomatoes
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     path = Path(tmp, "rt.csv.bz2")
        ...     _ = path.write_bytes(bz2.compress(b"category,text\\nfresh,Sharp and funny.\\nplot,A man walks.\\n"
        ...                                       b"rotten,Dull.\\n"))
        ...     print([(s.tokens, s.label) for s in read_rotten_tomatoes(path=path)])
        [(['sharp', 'and', 'funny', '.'], 1), (['dull', '.'], 0)]
    """
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
    ties alphabetical).

    Args:
        words: the words after ``<pad>`` and ``<unk>``, in id order (unique). ``Vocabulary.build(sentences,
            min_freq)`` counts them from sentences (or token lists).

    Raises:
        ValueError: repeated words.

    Example::

        >>> from explainreg.data.text import Vocabulary
        >>> vocab = Vocabulary.build([["a", "film"], ["a", "plot"]])
        >>> vocab.itos, len(vocab)
        (['<pad>', '<unk>', 'a', 'film', 'plot'], 5)
        >>> vocab.encode(["a", "novel", "film"]), vocab.decode([2, 3, 0, 0])
        ([2, 1, 3], ['a', 'film'])
    """

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
    """``word v1 … vd`` a line (``.txt`` or ``.txt.gz``) → {word: vector}; only ``words`` when given.

    Args:
        path: the GloVe file.
        words: keep only these words.

    Returns:
        {word: d-vector (float32)}.

    Raises:
        FileNotFoundError: no file.
        ValueError: lines of different widths, or no vectors at all.

    Example::

        >>> import tempfile; from pathlib import Path
        >>> from explainreg.data.text import read_glove
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     _ = Path(tmp, "g.txt").write_text("film 0.5 -1\\nplot 2 0.25\\n")
        ...     print(read_glove(Path(tmp, "g.txt")), list(read_glove(Path(tmp, "g.txt"), {"plot"})))
        {'film': tensor([ 0.5000, -1.0000]), 'plot': tensor([2.0000, 0.2500])} ['plot']
    """
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
    (seeded), ``<pad>`` zeros. Returns ``(matrix, coverage)`` with coverage the share of words found.

    Args:
        vocab: the vocabulary.
        path: the GloVe file; default ``ROOT/glove/glove.6B.50d.sst-rt.txt.gz``.
        root: the data root.
        seed, scale: the random rows of words without a vector.

    Shape:
        matrix: (len(vocab), d).

    Raises:
        ValueError: no word of the vocabulary has a vector.

    Example::

        >>> import tempfile; from pathlib import Path
        >>> from explainreg.data.text import Vocabulary, glove_vectors
        >>> vocab = Vocabulary(["film", "plot"])
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     _ = Path(tmp, "g.txt").write_text("film 0.5 -1\\n")
        ...     matrix, coverage = glove_vectors(vocab, Path(tmp, "g.txt"))
        >>> matrix.shape, matrix[0].tolist(), matrix[2].tolist(), coverage      # <pad> zeros; "film" its vector
        (torch.Size([4, 2]), [0.0, 0.0], [0.5, -1.0], 0.5)
    """
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
# CDEP's biased SST variants (Rieger et al. 2020)


def decoy_bias(sentences: Sequence[Sentence], seed: int = 0) -> tuple[list[Sentence], list[list[int]]]:
    """Insert "text" into every positive and "video" into every negative sentence at a uniform random
    position (0 … L); returns the sentences and their token masks (1 at the decoy).

    Args:
        sentences: binary sentences.
        seed: seed of the positions.

    Returns:
        ``(sentences, masks)``, a 0/1 mask per sentence, one entry per token.

    Example::

        >>> from explainreg.data.text import Sentence, decoy_bias
        >>> out, masks = decoy_bias([Sentence(["great", "film"], 1), Sentence(["dull"], 0)], seed=0)
        >>> [[w for w, m in zip(s.tokens, mask) if m] for s, mask in zip(out, masks)], [len(s.tokens) for s in out]
        ([['text'], ['video']], [3, 2])
    """
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
    the placeholder stay as they are, with an empty mask. Mask: 1 at the replaced word.

    Args:
        sentences: binary sentences.
        kind: ``"article"`` (the / a, placeholder "that") or ``"gender"`` (he / she, placeholder "who").

    Returns:
        ``(sentences, masks)``.

    Raises:
        ValueError: an unknown kind.

    Example::

        >>> from explainreg.data.text import Sentence, replacement_bias
        >>> out, masks = replacement_bias([Sentence(["the", "film", "a", "joy"], 1),
        ...                                Sentence(["a", "mess"], 0), Sentence(["dull"], 0)], "article")
        >>> [s.tokens for s in out], masks
        ([['a', 'film', 'that', 'joy'], ['the', 'mess'], ['dull']], [[1, 0, 0, 0], [1, 0], [0]])
    """
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
    """The sentences that contain at least one of ``words``.

    Example::

        >>> from explainreg.data.text import Sentence, contains_any
        >>> contains_any([Sentence(["he", "ran"], 1), Sentence(["it", "ran"], 0)], ("he", "she"))
        [Sentence(tokens=['he', 'ran'], label=1)]
    """
    wanted = set(words)
    return [s for s in sentences if wanted & set(s.tokens)]


# ----------------------------------------------------------------------------------------------
# data sets and batches


class TextDataset(ArrayDataset):
    """Token ids N×T_max (0-padded), labels, extras ``lengths`` (N) and ``mask`` (N×T_max token mask).

    :meth:`batch` trims a batch to its longest sentence; ``vocab`` encodes and decodes.
    ``TextDataset.from_sentences(sentences, vocab, masks=None, name, source)`` builds one (masks: one
    0/1 list per sentence, one entry per token); ``sentences()`` decodes the rows back to tokens.

    Shape:
        x: (N, T_max) long; y: (N,); extras ``lengths`` (N,), ``mask`` (N, T_max).

    Raises:
        ValueError: (``from_sentences``) no sentences, an empty sentence, or a mask of another length.

    Example::

        >>> import torch
        >>> from explainreg.data.text import Sentence, TextDataset, Vocabulary
        >>> sentences = [Sentence(["a", "great", "film"], 1), Sentence(["dull"], 0), Sentence(["a", "plot"], 0)]
        >>> data = TextDataset.from_sentences(sentences, Vocabulary.build(sentences), [[0, 1, 0], [1], [0, 0]])
        >>> data.x, data.extras["mask"][0]
        (tensor([[2, 5, 4],
                [3, 0, 0],
                [2, 6, 0]]), tensor([0., 1., 0.]))
        >>> ids, y, extras = data.batch(torch.tensor([1, 2]))               # trimmed to its longest sentence
        >>> ids, extras["lengths"], data.take([2]).sentences()
        (tensor([[3, 0],
                [2, 6]]), tensor([1, 2]), [['a', 'plot']])
    """

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
        """``(ids, y, extras)`` of the rows ``index``, trimmed to their longest sentence.

        Example::

            >>> import torch
            >>> from explainreg.data.text import Sentence, TextDataset, Vocabulary
            >>> s = [Sentence(["a", "b", "c", "d"], 1), Sentence(["a"], 0)]
            >>> data = TextDataset.from_sentences(s, Vocabulary.build(s))
            >>> data.batch(torch.tensor([1]))[0], data.batch(torch.tensor([0, 1]))[0].shape
            (tensor([[2]]), torch.Size([2, 4]))
        """
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
    """train / dev / test :class:`TextDataset` sharing ``vocab`` (what :func:`sst_bias` returns).

    Example::

        >>> from explainreg.data.text import Sentence, TextDataset, TextSplits, Vocabulary
        >>> s = [Sentence(["a", "film"], 1)]
        >>> vocab = Vocabulary.build(s)
        >>> parts = TextSplits(*[TextDataset.from_sentences(s, vocab) for _ in range(3)], vocab)
        >>> len(parts.train), parts.test.vocab is parts.vocab
        (1, True)
    """

    train: TextDataset
    dev: TextDataset
    test: TextDataset
    vocab: Vocabulary


def sst_bias(bias: str, root: str | os.PathLike | None = None, *, seed: int = 0, subtrees: bool = False,
             limit: int | None = None) -> TextSplits:
    """CDEP's biased SST-2 (Rieger et al. 2020): the training set with the ``bias`` ("decoy", "article",
    "gender") and its token masks; dev and test clean (for article/gender the test keeps the
    sentences containing either word of the pair). The vocabulary is built from the biased train, dev
    and test sentences (as the seed's torchtext field). ``limit``: a seeded subset of ``limit``
    sentences of each split, stratified by label (:func:`~explainreg.data.arrays.stratified_subset`;
    quick runs; the files are grouped by label, so not the first ones).

    Args:
        bias: ``"decoy"``, ``"article"`` or ``"gender"``.
        root: the data root holding ``sst/trainDevTestTrees_PTB.zip``.
        seed: the decoy positions and the ``limit`` subsets.
        subtrees: train on every phrase.
        limit: sentences per split.

    Returns:
        A :class:`TextSplits`; the training set's ``mask`` marks the bias word.

    Raises:
        ValueError: an unknown bias.

    Example::

        >>> import tempfile, zipfile; from pathlib import Path
        >>> tmp = tempfile.TemporaryDirectory(); Path(tmp.name, "sst").mkdir()   # a tiny stand-in for SST's zip
        >>> trees = "(4 (3 a) (4 (4 great) (2 film)))\\n(0 (2 the) (0 (0 awful) (2 plot)))\\n(2 (2 a) (2 video))\\n"
        >>> with zipfile.ZipFile(Path(tmp.name, "sst", "trainDevTestTrees_PTB.zip"), "w") as archive:
        ...     for split in ("train", "dev", "test"):
        ...         archive.writestr(f"trees/{split}.txt", trees)
        >>> from explainreg.data.text import sst_bias
        >>> splits = sst_bias("article", tmp.name)
        >>> splits.train.sentences(), splits.train.extras["mask"].tolist()   # positive: "a", negative: "the"
        ([['a', 'great', 'film'], ['the', 'awful', 'plot']], [[1.0, 0.0, 0.0], [1.0, 0.0, 0.0]])
        >>> decoy = sst_bias("decoy", tmp.name, seed=0)
        >>> sorted(w for s in decoy.train.sentences() for w in s if w in ("text", "video"))
        ['text', 'video']
        >>> tmp.cleanup()
    """
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
    if limit is not None:  # a seeded subset of each split, stratified by label (the tree files are grouped by label)
        keep = _subset(train, limit, seed)
        train, masks = [train[i] for i in keep], [masks[i] for i in keep]
        dev = [dev[i] for i in _subset(dev, limit, seed + 1)]
        test = [test[i] for i in _subset(test, limit, seed + 2)]
    vocab = Vocabulary.build([*train, *dev, *test])
    src = f"SST-2 ({bias} bias, seed {seed}){subset_note(limit, seed)}"
    return TextSplits(TextDataset.from_sentences(train, vocab, masks, f"sst-{bias}", src),
                      TextDataset.from_sentences(dev, vocab, None, "sst-2", "SST-2 dev"),
                      TextDataset.from_sentences(test, vocab, None, "sst-2", "SST-2 test"), vocab)


def _subset(sentences: Sequence[Sentence], limit: int, seed: int) -> list[int]:
    """The indices of ``limit`` sentences: a seeded subset stratified by label, in their original order."""
    return stratified_subset([s.label for s in sentences], limit, seed).tolist()


def load_text_dataset(name: str, split: str = "train", root: str | os.PathLike | None = None, *,
                      limit: int | None = None, vocab: Vocabulary | None = None, seed: int = 0,
                      subset_seed: int = 0) -> TextDataset:
    """``"sst"`` (fine-grained), ``"sst-2"``, ``"sst-decoy"`` / ``"sst-article"`` / ``"sst-gender"`` (the split's
    CDEP variant) or ``"rotten-tomatoes"`` (split "train" only: the whole corpus) as a :class:`TextDataset`;
    the vocabulary comes from the data set's training split unless given.

    Args:
        name: one of :data:`TEXT_DATASETS`.
        split: ``"train"``, ``"dev"`` or ``"test"`` (Rotten Tomatoes: ``"train"``).
        root: the data root.
        limit: ``limit`` sentences: a seeded subset stratified by label, in file order
            (:func:`~explainreg.data.arrays.stratified_subset`; named in ``source``).
        vocab: the vocabulary (e.g. the training set's, for a test split).
        seed: the CDEP variant's seed.
        subset_seed: seed of the ``limit`` subset.

    Returns:
        A :class:`TextDataset`.

    Raises:
        ValueError: an unknown name or split.
        FileNotFoundError: the data files are missing.

    Example::

        >>> import tempfile, zipfile; from pathlib import Path
        >>> tmp = tempfile.TemporaryDirectory(); Path(tmp.name, "sst").mkdir()   # a tiny stand-in for SST's zip
        >>> trees = "(4 (3 a) (4 (4 great) (2 film)))\\n(0 (2 the) (0 (0 awful) (2 plot)))\\n(2 (2 a) (2 video))\\n"
        >>> with zipfile.ZipFile(Path(tmp.name, "sst", "trainDevTestTrees_PTB.zip"), "w") as archive:
        ...     for split in ("train", "dev", "test"):
        ...         archive.writestr(f"trees/{split}.txt", trees)
        >>> from explainreg.data import load_dataset
        >>> sst2 = load_dataset("sst-2", "test", tmp.name)                  # through load_text_dataset
        >>> sst2.y.tolist(), sst2.sentences()[1], sst2.vocab.itos[:4]
        ([1, 0], ['the', 'awful', 'plot'], ['<pad>', '<unk>', 'a', 'awful'])
        >>> tmp.cleanup()
    """
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
        if limit is None:
            return ds
        part = ds.take(stratified_subset(ds.y, limit, subset_seed))
        part.source = f"{ds.source}{subset_note(limit, subset_seed)}"
        return part
    elif key in ("rotten-tomatoes", "rt"):
        if split != "train":
            raise ValueError("rotten-tomatoes has one split, 'train' (the whole corpus)")
        sentences = read_rotten_tomatoes(root)
        vocab = vocab or Vocabulary.build(sentences)
    else:
        raise ValueError(f"unknown text dataset {name!r}; available: {', '.join(TEXT_DATASETS)}")
    if limit is not None:
        sentences = [sentences[i] for i in _subset(sentences, limit, subset_seed)]
    return TextDataset.from_sentences(sentences, vocab, None, key, f"{key} {split}{subset_note(limit, subset_seed)}")


TEXT_DATASETS = ("sst", "sst-2", "sst-decoy", "sst-article", "sst-gender", "rotten-tomatoes")


def text_sources(root: str | os.PathLike | None = None) -> list[tuple[str, str, str]]:
    """``(name, splits, where)`` of each text data set (``"not found"`` when its file is missing).

    Args:
        root: the data root.

    Returns:
        One row per text data set and one for the GloVe vectors.

    Example::

        >>> import tempfile
        >>> from explainreg.data.text import text_sources
        >>> with tempfile.TemporaryDirectory() as empty:
        ...     rows = text_sources(empty)
        >>> [name for name, _, _ in rows][-2:], rows[0][2].startswith("not found")
        (['rotten-tomatoes', 'glove (vectors)'], True)
    """
    data_root, _ = resolve_data_root(root)
    sst, rt, glove = data_root / "sst" / SST_ZIP, data_root / "rotten-tomatoes" / RT_FILE, data_root / "glove" / GLOVE_FILE
    found = lambda p: str(p) if p.is_file() else f"not found ({p})"  # noqa: E731
    rows = [(name, "train/dev/test", found(sst)) for name in TEXT_DATASETS if name.startswith("sst")]
    rows.append(("rotten-tomatoes", "train", found(rt)))
    rows.append(("glove (vectors)", "-", found(glove)))
    return rows

#: what prepares a text set for training (a vocabulary and word vectors come first)
TEXT_STUDIES = "`explainreg study sst-bias` (CDEP's SST setting, LSTM on GloVe) or `explainreg study sgt-text`"


def _where(name: str, root: str | os.PathLike | None) -> list[tuple[str, str, str]]:
    return [row for row in text_sources(root) if row[0] == name]


def _load(name: str, split: str, root, *, limit: int | None, subset_seed: int) -> TextDataset:
    return load_text_dataset(name, split, root, limit=limit, subset_seed=subset_seed)


for _name, _splits, _help, _aliases in (
        ("sst", ("train", "dev", "test"), "SST: Stanford Sentiment Treebank sentences, 5 classes (PTB-tree zip).", ()),
        ("sst-2", ("train", "dev", "test"), "SST-2: SST without the neutral class, 2 classes.", ("sst2",)),
        ("sst-decoy", ("train", "dev", "test"), "SST-2 with CDEP's class-coded decoy words (text / video).", ()),
        ("sst-article", ("train", "dev", "test"), "SST-2 with CDEP's article bias (the / a, placeholder that).", ()),
        ("sst-gender", ("train", "dev", "test"), "SST-2 with CDEP's gender bias (he / she, placeholder who).", ()),
        ("rotten-tomatoes", ("train",), "Rotten Tomatoes critic snippets, fresh / rotten (one split).", ("rt",))):
    DATASETS.register(_name, DataSetFamily(_name, _load, _help, _splits, _where, prepared_by=TEXT_STUDIES),
                      aliases=_aliases)

__all__ = ["BIASES", "REPLACEMENTS", "Sentence", "TEXT_DATASETS", "TEXT_STUDIES", "TextDataset", "TextSplits", "Vocabulary",
           "binary_sst", "contains_any", "text_sources", "decoy_bias", "glove_vectors", "load_text_dataset", "parse_tree",
           "read_glove", "read_rotten_tomatoes", "read_sst", "replacement_bias", "sst_bias", "tokenize"]
