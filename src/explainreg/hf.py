"""HuggingFace Transformers classifiers as explainreg models (the optional extra ``hf``:
``pip install -c constraints.txt "explainreg[hf]"``; documentation: guide/concepts, transformers).

:class:`HFClassifier` wraps a ``*ForSequenceClassification`` (BERT, DistilBERT, …) or a
``ViTForImageClassification`` into the model explainreg expects: token ids (or pixels) in, logits
B×K out. Everything written for token or image models then takes it unchanged:

* tokens: the explained tensor is the output of the model's word embeddings
  (``get_input_embeddings()``), B×T×E; the padding is ``input_ids == pad_token_id`` and is given to
  the model as its ``attention_mask`` (1 at real tokens), so the padding the penalties and metrics
  skip is exactly the one attention skips. ``token_types="segments"`` gives BERT's
  ``token_type_ids`` for sentence pairs (0 up to the first ``[SEP]``, 1 after).
* images: the explained tensor is ``pixel_values`` (B×C×H×W); :meth:`HFClassifier.pixel_mask` turns a
  patch-level mask (B×h×w, one value per patch) into a pixel mask.
* contextual decomposition (CDEP, :func:`explainreg.decompose`) runs through the attention blocks
  (:mod:`explainreg.decomposition.attention`, CD-T's rule).

:class:`ExplainregTrainer` is a ``transformers.Trainer`` whose ``compute_loss`` is an explainreg
:class:`~explainreg.objective.Objective` (cross-entropy + Σ λ_i R_i) and whose logs carry each term.

Example::

    >>> import torch
    >>> from transformers import BertConfig, BertForSequenceClassification
    >>> from explainreg import penalties
    >>> from explainreg.hf import HFClassifier
    >>> config = BertConfig(vocab_size=30, hidden_size=8, num_hidden_layers=1, num_attention_heads=2,
    ...                     intermediate_size=16, max_position_embeddings=16, num_labels=2)
    >>> model = HFClassifier(BertForSequenceClassification(config).eval())
    >>> ids = torch.tensor([[2, 7, 9, 0], [2, 5, 0, 0]])          # right-padded with pad_token_id 0
    >>> model(ids).shape
    torch.Size([2, 2])
    >>> r = penalties.GradientL1()(model, ids, torch.tensor([0, 1]))
    >>> r.ndim
    0
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import torch
from torch import nn

try:
    import transformers
except ImportError as exc:  # pragma: no cover - the extra is missing
    raise ImportError("explainreg.hf needs the optional extra `hf` (transformers, tokenizers): "
                      'pip install -c constraints.txt "explainreg[hf]"') from exc

from .decomposition.attention import register_transformers_rules
from .objective import Objective

register_transformers_rules()

TOKEN_TYPES = (None, "segments")


def _image_model(model: nn.Module) -> bool:
    return getattr(model, "main_input_name", "input_ids") == "pixel_values"


class HFClassifier(nn.Module):
    """A HuggingFace classifier as an explainreg model: ``forward(input_ids)`` (or ``forward(pixel_values)``)
    returns the logits tensor B×K of the wrapped model's ``ModelOutput``.

    Args:
        model: a ``*ForSequenceClassification`` taking ``inputs_embeds`` and ``attention_mask`` (BERT,
            DistilBERT, RoBERTa, …; built with ``from_pretrained`` or from a config), or an image
            classifier taking ``pixel_values`` (``ViTForImageClassification``). Its parameters are
            shared, not copied.
        pad_token_id: the padding id (default: ``model.config.pad_token_id``); must equal the word
            embedding's ``padding_idx`` when that is set.
        token_types: None (the model's default, all 0) or ``"segments"``: 0 up to and including the
            first ``sep_token_id``, 1 after it (BERT sentence pairs).
        sep_token_id: for ``"segments"`` (default: ``model.config.sep_token_id``, else 102 as BERT's).

    Shape:
        input_ids B×T (integers) or pixel_values B×C×H×W → logits B×K.

    Raises:
        ValueError: no padding id is known, or it disagrees with the embedding's ``padding_idx``.

    Example::

        >>> from transformers import ViTConfig, ViTForImageClassification
        >>> vit = HFClassifier(ViTForImageClassification(ViTConfig(image_size=4, patch_size=2, num_channels=1,
        ...     hidden_size=8, num_hidden_layers=1, num_attention_heads=2, intermediate_size=16, num_labels=3)))
        >>> vit(torch.rand(2, 1, 4, 4)).shape
        torch.Size([2, 3])
        >>> vit.pixel_mask(torch.tensor([[1, 0], [0, 0]]))        # the top-left patch, as pixels
        tensor([[1, 1, 0, 0],
                [1, 1, 0, 0],
                [0, 0, 0, 0],
                [0, 0, 0, 0]])
    """

    def __init__(self, model: nn.Module, *, pad_token_id: int | None = None, token_types: str | None = None,
                 sep_token_id: int | None = None) -> None:
        super().__init__()
        if token_types not in TOKEN_TYPES:
            raise ValueError(f"token_types must be one of {TOKEN_TYPES}, got {token_types!r}")
        self.model = model
        self.images = _image_model(model)
        config = getattr(model, "config", None)
        self.token_types = token_types
        if self.images:
            self.pad_token_id = self.sep_token_id = None
            return
        pad = getattr(config, "pad_token_id", None) if pad_token_id is None else pad_token_id
        embedding = model.get_input_embeddings()
        held = getattr(embedding, "padding_idx", None)
        if pad is None:
            raise ValueError(f"{type(model).__name__} has no pad_token_id in its config; pass pad_token_id= (the id "
                             "the tokenizer pads with, tokenizer.pad_token_id)")
        if held is not None and held != pad:
            raise ValueError(f"pad_token_id={pad} but the word embedding's padding_idx is {held}: explainreg reads "
                             "padding as ids == padding_idx; pass pad_token_id={held} or fix the config")
        self.pad_token_id = int(pad)
        sep = getattr(config, "sep_token_id", None) if sep_token_id is None else sep_token_id
        self.sep_token_id = int(sep) if sep is not None else 102

    def get_input_embeddings(self) -> nn.Module:
        """The word embeddings (the explained layer for token ids)."""
        return self.model.get_input_embeddings()

    def attention_mask(self, input_ids: torch.Tensor) -> torch.Tensor:
        """B×T, 1 at real tokens (ids ≠ pad_token_id), as the model's ``attention_mask``."""
        return (input_ids != self.pad_token_id).long()

    def token_type_ids(self, input_ids: torch.Tensor) -> torch.Tensor:
        """B×T segments: 0 up to and including the first [SEP], 1 after (0 at padding)."""
        sep = (input_ids == self.sep_token_id).long()
        after = (sep.cumsum(1) - sep).clamp(max=1)
        return after * self.attention_mask(input_ids)

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        if self.images:
            return self.model(pixel_values=input_ids).logits
        embeds = self.model.get_input_embeddings()(input_ids)
        if self.token_types == "segments":
            out = self.model(inputs_embeds=embeds, attention_mask=self.attention_mask(input_ids),
                             token_type_ids=self.token_type_ids(input_ids))
        else:
            out = self.model(inputs_embeds=embeds, attention_mask=self.attention_mask(input_ids))
        return out.logits

    def pixel_mask(self, mask: torch.Tensor) -> torch.Tensor:
        """A patch-level mask (h×w or B×h×w, one value per ViT patch) as the pixel mask H×W / B×H×W."""
        if not self.images:
            raise ValueError("pixel_mask is for image models (pixel_values); token models take B×T token masks")
        p = self.model.config.patch_size
        size = self.model.config.image_size
        m = torch.as_tensor(mask)
        grid = (size // p, size // p)
        if tuple(m.shape[-2:]) != grid or m.dim() not in (2, 3):
            raise ValueError(f"patch mask of shape {tuple(m.shape)}: give h×w or B×h×w with h×w = {grid} "
                             f"(image {size}, patch {p})")
        return m.repeat_interleave(p, -2).repeat_interleave(p, -1)

    def check_attention_mask(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None) -> None:
        """A given ``attention_mask`` must be the padding explainreg reads (ids ≠ pad_token_id)."""
        if attention_mask is None or self.images:
            return
        if not torch.equal(attention_mask.bool(), self.attention_mask(input_ids).bool()):
            raise ValueError(f"attention_mask differs from input_ids != pad_token_id ({self.pad_token_id}): explainreg "
                             "reads the padding from the ids; pad with the tokenizer's pad token only "
                             "(tokenizer(..., padding=True)) and mask nothing else")


def word_mask(encoding: Any, masks: Sequence[Sequence[float]]) -> torch.Tensor:
    """A B×T token mask from per-word masks: every word piece takes its word's value; special tokens
    ([CLS], [SEP]) and padding take 0.

    Args:
        encoding: a fast tokenizer's ``BatchEncoding`` (``tokenizer(words, is_split_into_words=True,
            padding=True, return_tensors="pt")``; it knows each token's word, ``word_ids(b)``).
        masks: one sequence per sentence with a value in [0, 1] per word (1 = the word the explanation
            concerns, e.g. a decoy word).

    Shape:
        output B×T (float32), T = ``encoding["input_ids"].shape[1]``.

    Example::

        >>> from tokenizers import Tokenizer, models, pre_tokenizers, processors, trainers
        >>> from transformers import PreTrainedTokenizerFast
        >>> wp = Tokenizer(models.WordPiece(unk_token="[UNK]"))
        >>> wp.pre_tokenizer = pre_tokenizers.Whitespace()
        >>> wp.train_from_iterator(["a fine film", "a dull film"], trainers.WordPieceTrainer(
        ...     vocab_size=30, special_tokens=["[PAD]", "[UNK]", "[CLS]", "[SEP]"], show_progress=False))
        >>> wp.post_processor = processors.TemplateProcessing(single="[CLS] $A [SEP]",
        ...                                                   special_tokens=[("[CLS]", 2), ("[SEP]", 3)])
        >>> tok = PreTrainedTokenizerFast(tokenizer_object=wp, pad_token="[PAD]", unk_token="[UNK]")
        >>> enc = tok([["a", "fine", "film"], ["dull"]], is_split_into_words=True, padding=True,
        ...           return_tensors="pt")
        >>> enc.tokens(0), enc.tokens(1)
        (['[CLS]', 'a', 'fine', 'film', '[SEP]'], ['[CLS]', 'dull', '[SEP]', '[PAD]', '[PAD]'])
        >>> word_mask(enc, [[0, 1, 0], [1]])                  # "fine" and "dull"
        tensor([[0., 0., 1., 0., 0.],
                [0., 1., 0., 0., 0.]])
    """
    ids = encoding["input_ids"]
    if len(masks) != ids.shape[0]:
        raise ValueError(f"masks has {len(masks)} sentences, the encoding {ids.shape[0]}")
    out = torch.zeros(ids.shape, dtype=torch.float32)
    for b, m in enumerate(masks):
        words = encoding.word_ids(b)
        for t, w in enumerate(words):
            if w is None:
                continue
            if w >= len(m):
                raise ValueError(f"sentence {b} has word {w} but its mask gives {len(m)} words; give one value per word")
            out[b, t] = float(m[w])
    return out


class ExplainregTrainer(transformers.Trainer):
    """A ``transformers.Trainer`` training ``CE + Σ λ_i R_i`` (an explainreg :class:`Objective`) and
    logging each term (``ce``, each penalty by name) averaged over the logging interval.

    Batches are dicts with ``input_ids`` (or ``pixel_values``), ``labels``, optionally
    ``attention_mask`` (checked: it must be ``input_ids != pad_token_id``) and the extras the
    penalties read (``mask``: B×T token masks for RRR / CDEP / expected gradients). Those extra
    columns are kept (the Trainer otherwise drops columns the model's forward does not take).

    Args:
        objective: the :class:`Objective` (or a mapping ``{penalty: weight}`` to build one).
        extras: the batch keys passed to the penalties (default ``("mask",)``).
        classifier: options of :class:`HFClassifier` (``pad_token_id``, ``token_types``, ...).
        *args, **kwargs: ``transformers.Trainer``'s.

    Example::

        >>> from transformers import BertConfig, BertForSequenceClassification, TrainingArguments
        >>> from explainreg.penalties import RRR
        >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
        <torch._C.Generator object at ...>
        >>> bert = BertForSequenceClassification(BertConfig(vocab_size=30, hidden_size=8, num_hidden_layers=1,
        ...     num_attention_heads=2, intermediate_size=16, max_position_embeddings=8, num_labels=2))
        >>> rows = [{"input_ids": torch.tensor([2, 5 + i % 7, 9, 0]), "labels": torch.tensor(i % 2),
        ...          "mask": torch.tensor([0.0, 1.0, 0.0, 0.0])} for i in range(8)]
        >>> collate = lambda items: {k: torch.stack([it[k] for it in items]) for k in items[0]}
        >>> args = TrainingArguments("/tmp/explainreg-trainer-example", max_steps=2, logging_steps=1,
        ...                          per_device_train_batch_size=4, report_to=[], save_strategy="no",
        ...                          use_cpu=True, disable_tqdm=True)
        >>> trainer = ExplainregTrainer(model=bert, args=args, train_dataset=rows, data_collator=collate,
        ...                             objective={RRR(): 1.0})
        >>> trainer.remove_callback(transformers.PrinterCallback)   # (no printed logs in this example)
        >>> _ = trainer.train()
        >>> sorted(k for k in trainer.state.log_history[0] if k.startswith("explainreg/"))
        ['explainreg/ce', 'explainreg/loss', 'explainreg/rrr']
    """

    def __init__(self, *args: Any, objective: Objective | Mapping, extras: tuple[str, ...] = ("mask",),
                 classifier: Mapping[str, Any] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.objective = objective if isinstance(objective, Objective) else Objective(objective)
        self.extras = tuple(extras)
        self.classifier_options = dict(classifier or {})
        self._wrapped: tuple[nn.Module, HFClassifier] | None = None
        self._sums: dict[str, float] = {}
        self._count = 0

    def _set_signature_columns_if_needed(self) -> None:
        super()._set_signature_columns_if_needed()
        self._signature_columns = list(dict.fromkeys([*self._signature_columns, *self.extras]))

    def classifier(self, model: nn.Module) -> HFClassifier:
        """The :class:`HFClassifier` over ``model`` (the Trainer's, possibly wrapped), built once."""
        inner = self.accelerator.unwrap_model(model) if hasattr(self, "accelerator") else model
        if self._wrapped is None or self._wrapped[0] is not inner:
            self._wrapped = (inner, HFClassifier(inner, **self.classifier_options))
        return self._wrapped[1]

    def compute_loss(self, model: nn.Module, inputs: dict[str, Any], return_outputs: bool = False,
                     num_items_in_batch: Any = None) -> Any:
        wrapped = self.classifier(model)
        x = inputs["pixel_values"] if wrapped.images else inputs["input_ids"]
        if "labels" not in inputs:
            raise ValueError("ExplainregTrainer needs `labels` in every batch (the cross-entropy and the "
                             "penalties' true class)")
        wrapped.check_attention_mask(x, inputs.get("attention_mask"))
        extras = {k: inputs[k] for k in self.extras if inputs.get(k) is not None}
        out = self.objective(wrapped, x, inputs["labels"], **extras)
        if model.training:
            for name, value in out.terms.items():
                self._sums[name] = self._sums.get(name, 0.0) + value
            self._count += 1
        if return_outputs:
            return out.loss, {"logits": out.logits}
        return out.loss

    def log(self, logs: dict[str, float], *args: Any, **kwargs: Any) -> None:
        if self._count and "loss" in logs:
            for name, total in self._sums.items():
                logs[f"explainreg/{name}"] = total / self._count
            self._sums, self._count = {}, 0
        super().log(logs, *args, **kwargs)


__all__ = ["ExplainregTrainer", "HFClassifier", "TOKEN_TYPES", "word_mask"]
