"""Text classifiers over token ids B×T (right-padded with ``padding_idx``).

Every model takes only the ids and finds each sentence's length as the number of non-padding
tokens, so the same call works for training, saliency (w.r.t. ``model.embedding``'s output) and
contextual decomposition:

* :class:`TextLSTMClassifier` — CDEP's SST model (Rieger et al. 2020, "Interpretations are useful: penalizing
  explanations to align neural networks with prior knowledge"): an embedding (GloVe-initialised, fine-tuned), an LSTM
  (1 layer, hidden 128), a linear head on the hidden state at each sentence's last token.
* :class:`TextCNNClassifier` — Kim-style 1-D CNN (Kim 2014, "Convolutional neural networks for sentence
  classification"): wide convolutions of widths 3, 4, 5, ReLU, max over
  time, dropout, linear head.
* :class:`TextTransformerClassifier` — a small Transformer encoder, mean over the real tokens, linear
  head (saliency, gradient penalties and contextual decomposition through attention, CD-T).
"""
from __future__ import annotations

import torch
import torch.fx
from torch import nn


def _embedding(vocab_size: int, dim: int, padding_idx: int, vectors: torch.Tensor | None, freeze: bool) -> nn.Embedding:
    if vocab_size < 2:
        raise ValueError(f"vocab_size must be at least 2 (padding and one word), got {vocab_size}")
    if vectors is not None:
        vectors = torch.as_tensor(vectors, dtype=torch.float32)
        if vectors.shape != (vocab_size, dim):
            raise ValueError(f"vectors must be vocab_size × embedding_dim = ({vocab_size}, {dim}), "
                             f"got {tuple(vectors.shape)}")
        emb = nn.Embedding.from_pretrained(vectors.clone(), freeze=freeze, padding_idx=padding_idx)
        with torch.no_grad():
            emb.weight[padding_idx].zero_()
        return emb
    return nn.Embedding(vocab_size, dim, padding_idx=padding_idx)


class TextLSTMClassifier(nn.Module):
    """Embedding → LSTM → linear head on the state at each sentence's last real token.

    Bidirectional: the forward direction's state at the last token and the backward direction's
    state at the first, concatenated. ``vectors`` (vocab_size × embedding_dim) initialises the
    embedding (fine-tuned unless ``freeze``).

    Args:
        vocab_size: rows of the embedding (padding included, ≥ 2).
        num_classes: logits K.
        embedding_dim, hidden_size, num_layers, bidirectional: the embedding and the LSTM.
        padding_idx: the padding id (its embedding row is zero and not trained).
        vectors: initial embedding rows (e.g. GloVe), vocab_size × embedding_dim.
        freeze: keep ``vectors`` fixed.

    Shape:
        ids B×T (long) → logits B×num_classes.

    Raises:
        ValueError: ``vocab_size`` < 2 or ``vectors`` of another shape.

    Example::

        >>> import torch
        >>> from explainreg.models.text import TextLSTMClassifier
        >>> model = TextLSTMClassifier(vocab_size=10, embedding_dim=4, hidden_size=3).eval()
        >>> ids = torch.tensor([[3, 5, 7, 0], [3, 5, 7, 9]])
        >>> logits = model(ids)
        >>> logits.shape, bool(torch.allclose(logits[0], model(ids[:1, :3])[0], atol=1e-6))  # padding ignored
        (torch.Size([2, 2]), True)
    """

    def __init__(self, vocab_size: int, num_classes: int = 2, embedding_dim: int = 50, hidden_size: int = 128,
                 num_layers: int = 1, bidirectional: bool = False, padding_idx: int = 0,
                 vectors: torch.Tensor | None = None, freeze: bool = False) -> None:
        super().__init__()
        self.padding_idx = padding_idx
        self.embedding = _embedding(vocab_size, embedding_dim, padding_idx, vectors, freeze)
        self.lstm = nn.LSTM(embedding_dim, hidden_size, num_layers, batch_first=True, bidirectional=bidirectional)
        self.bidirectional, self.hidden_size = bidirectional, hidden_size
        self.head = nn.Linear(hidden_size * (2 if bidirectional else 1), num_classes)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        last = ((ids != self.padding_idx).sum(1) - 1).clamp(min=0)
        out, _ = self.lstm(self.embedding(ids))
        index = last.view(-1, 1, 1).expand(-1, 1, self.hidden_size)
        forward_state = out[:, :, : self.hidden_size].gather(1, index).squeeze(1)
        if not self.bidirectional:
            return self.head(forward_state)
        backward_state = out[:, 0, self.hidden_size:]
        return self.head(torch.cat([forward_state, backward_state], 1))


class TextCNNClassifier(nn.Module):
    """Embedding → transpose → wide Conv1d of each width (padding width − 1) → ReLU → max over time →
    concatenation → dropout → linear head.

    Args:
        vocab_size, num_classes, embedding_dim, padding_idx, vectors, freeze: as :class:`TextLSTMClassifier`.
        channels: filters per width.
        widths: the convolution widths.
        dropout: before the head.

    Shape:
        ids B×T → logits B×num_classes.

    Example::

        >>> import torch
        >>> from explainreg.models.text import TextCNNClassifier
        >>> model = TextCNNClassifier(vocab_size=10, embedding_dim=4, channels=2, widths=(2, 3)).eval()
        >>> model(torch.tensor([[1, 2, 3], [4, 0, 0]])).shape, model.head.in_features
        (torch.Size([2, 2]), 4)
    """

    def __init__(self, vocab_size: int, num_classes: int = 2, embedding_dim: int = 50, channels: int = 100,
                 widths: tuple[int, ...] = (3, 4, 5), dropout: float = 0.5, padding_idx: int = 0,
                 vectors: torch.Tensor | None = None, freeze: bool = False) -> None:
        super().__init__()
        self.padding_idx = padding_idx
        self.embedding = _embedding(vocab_size, embedding_dim, padding_idx, vectors, freeze)
        self.convs = nn.ModuleList(nn.Conv1d(embedding_dim, channels, w, padding=w - 1) for w in widths)
        self.relu = nn.ReLU()
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(channels * len(widths), num_classes)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        e = self.embedding(ids).transpose(1, 2)  # B×E×T
        pooled = [self.relu(conv(e)).amax(2) for conv in self.convs]
        return self.head(self.dropout(torch.cat(pooled, 1)))


@torch.fx.wrap
def _positions(table: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    """The first T rows of the position table (a clear error when the sentences are longer)."""
    if ids.shape[1] > table.shape[0]:
        raise ValueError(f"sentences of {ids.shape[1]} tokens exceed the model's max_len = {table.shape[0]}")
    return table[: ids.shape[1]]


class TextTransformerClassifier(nn.Module):
    """Embedding + learned positions → Transformer encoder (padding masked) → mean over the real
    tokens → linear head.

    Args:
        vocab_size, num_classes, embedding_dim, padding_idx, vectors, freeze: as :class:`TextLSTMClassifier`.
        heads, layers, feedforward, dropout: the encoder (GELU activation, batch first).
        max_len: rows of the learned position table, the longest sentence accepted.

    Shape:
        ids B×T (T ≤ max_len) → logits B×num_classes.

    Raises:
        ValueError: (in forward) sentences longer than ``max_len``.

    Example::

        >>> import torch
        >>> from explainreg.models.text import TextTransformerClassifier
        >>> model = TextTransformerClassifier(vocab_size=10, embedding_dim=8, heads=2, layers=1, feedforward=16,
        ...                               max_len=6).eval()
        >>> ids = torch.tensor([[1, 2, 3, 0], [4, 5, 0, 0]])
        >>> bool(torch.allclose(model(ids)[1], model(ids[1:, :2])[0], atol=1e-5))   # padding masked
        True
        >>> model(torch.ones(1, 7, dtype=torch.long))
        Traceback (most recent call last):
        ...
        ValueError: sentences of 7 tokens exceed the model's max_len = 6
    """

    def __init__(self, vocab_size: int, num_classes: int = 2, embedding_dim: int = 64, heads: int = 4,
                 layers: int = 2, feedforward: int = 128, dropout: float = 0.1, max_len: int = 512,
                 padding_idx: int = 0, vectors: torch.Tensor | None = None, freeze: bool = False) -> None:
        super().__init__()
        self.padding_idx = padding_idx
        self.embedding = _embedding(vocab_size, embedding_dim, padding_idx, vectors, freeze)
        self.positions = nn.Parameter(torch.randn(max_len, embedding_dim) * 0.02)
        layer = nn.TransformerEncoderLayer(embedding_dim, heads, feedforward, dropout, batch_first=True,
                                           activation="gelu")
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.head = nn.Linear(embedding_dim, num_classes)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        real = ids != self.padding_idx
        h = self.encoder(self.embedding(ids) + _positions(self.positions, ids), src_key_padding_mask=~real)
        weight = real.to(h.dtype).unsqueeze(2)
        return self.head((h * weight).sum(1) / weight.sum(1).clamp_min(1))


def cdep_lstm(vocab_size: int, num_classes: int = 2, vectors: torch.Tensor | None = None, **kwargs) -> TextLSTMClassifier:
    """CDEP's SST classifier (Rieger et al. 2020): 1-layer LSTM, hidden 128, head on the last state.

    Args:
        vocab_size, num_classes: as :class:`TextLSTMClassifier`.
        vectors: initial embeddings (their width sets ``embedding_dim``; without, ``embedding_dim``
            from ``kwargs`` or 50).
        **kwargs: other :class:`TextLSTMClassifier` options (``padding_idx``, ``freeze``).

    Shape:
        ids B×T → logits B×num_classes.

    Returns:
        The :class:`TextLSTMClassifier`.

    Example::

        >>> import torch
        >>> from explainreg.models.text import cdep_lstm
        >>> model = cdep_lstm(vocab_size=6, vectors=torch.randn(6, 5), freeze=True)
        >>> model.lstm.hidden_size, model.embedding.embedding_dim, model.embedding.weight.requires_grad
        (128, 5, False)
        >>> model(torch.tensor([[1, 2, 0]])).shape
        torch.Size([1, 2])
    """
    dim = vectors.shape[1] if vectors is not None else kwargs.pop("embedding_dim", 50)
    return TextLSTMClassifier(vocab_size, num_classes, dim, 128, 1, vectors=vectors, **kwargs)


__all__ = ["TextCNNClassifier", "TextLSTMClassifier", "TextTransformerClassifier", "cdep_lstm"]
