"""HuggingFace classifiers (built from small configs; no weights are downloaded) as explainreg models:
every token penalty reaches the weights (the word embeddings included) and agrees with a computation
on each sentence alone; attributions and metrics run; ViT on pixels; the Trainer subclass trains a
tiny BERT on real SST batches and logs the terms (documentation: guide/concepts, transformers)."""
from __future__ import annotations

import os

import pytest
import torch
import torch.nn.functional as F

if os.environ.get("EXPLAINREG_REQUIRE_OPTIONAL"):  # make test: the hf extra is installed, so these must run
    import transformers
else:
    transformers = pytest.importorskip("transformers", reason="the optional extra `hf` is not installed")

from transformers import (BertConfig, BertForSequenceClassification, DistilBertConfig,  # noqa: E402
                          DistilBertForSequenceClassification, ViTConfig, ViTForImageClassification)

import explainreg as er  # noqa: E402
from explainreg.data import load_dataset  # noqa: E402
from explainreg.data.text import sst_bias  # noqa: E402
from explainreg.decomposition import decompose  # noqa: E402
from explainreg.hf import ExplainregTrainer, HFClassifier  # noqa: E402
from explainreg.attribution import attribute  # noqa: E402
from explainreg.metrics.functional.text import eraser  # noqa: E402
from explainreg.objective import Objective  # noqa: E402
from explainreg.penalties import (CDEP, RRR, Consistency, ExpectedGradients, GradientL1,  # noqa: E402
                                  SaliencyGuided)
from explainreg.gradients import input_gradient  # noqa: E402
from explainreg.training.batches import iterate_batches  # noqa: E402

torch.set_num_threads(1)


def tiny_bert(vocab: int, *, seed: int = 0, layers: int = 2) -> HFClassifier:
    torch.manual_seed(seed)
    config = BertConfig(vocab_size=vocab, hidden_size=16, num_hidden_layers=layers, num_attention_heads=2,
                        intermediate_size=32, max_position_embeddings=64, num_labels=2, pad_token_id=0)
    return HFClassifier(BertForSequenceClassification(config))


def tiny_distilbert(vocab: int, *, seed: int = 0) -> HFClassifier:
    torch.manual_seed(seed)
    config = DistilBertConfig(vocab_size=vocab, dim=16, n_layers=2, n_heads=2, hidden_dim=32,
                              max_position_embeddings=64, num_labels=2, pad_token_id=0)
    return HFClassifier(DistilBertForSequenceClassification(config))


def tiny_vit(*, seed: int = 0) -> HFClassifier:
    torch.manual_seed(seed)
    config = ViTConfig(image_size=28, patch_size=7, num_channels=1, hidden_size=16, num_hidden_layers=2,
                       num_attention_heads=2, intermediate_size=32, num_labels=10)
    return HFClassifier(ViTForImageClassification(config))


@pytest.fixture(scope="module")
def decoy():
    """CDEP's decoy SST (real sentences, 200 per split) and one padded batch of 12 sentences."""
    splits = sst_bias("decoy", limit=200)
    x, y, extras = next(iterate_batches(splits.train, 12, shuffle=False))
    return splits, x, y, extras


BUILDERS = {"bert": tiny_bert, "distilbert": tiny_distilbert}
PENALTIES = [GradientL1(), RRR(), ExpectedGradients(n_refs=3), CDEP(), SaliencyGuided(), Consistency()]


@pytest.mark.parametrize("arch", BUILDERS)
@pytest.mark.parametrize("penalty", PENALTIES, ids=lambda p: p.name)
def test_every_token_penalty_reaches_the_weights(decoy, arch, penalty):
    splits, x, y, extras = decoy
    model = BUILDERS[arch](len(splits.vocab)).train()
    value = penalty(model, x, y, **extras)
    assert torch.isfinite(value) and value.dim() == 0
    value.backward()
    embedding_grad = model.get_input_embeddings().weight.grad
    if isinstance(penalty, CDEP):  # by default CDEP reads the word vectors detached (no embedding gradient)
        assert embedding_grad is None or embedding_grad.abs().sum() == 0
        model.zero_grad()
        CDEP(detach_embeddings=False)(model, x, y, **extras).backward()
        embedding_grad = model.get_input_embeddings().weight.grad
    assert embedding_grad.abs().sum() > 0
    grads = [p.grad for n, p in model.named_parameters() if "layer" in n and "query" in n or "q_lin" in n]
    assert grads and all(g is not None and g.abs().sum() > 0 for g in grads), "attention weights got no gradient"


def _alone(model, x, extras, b):
    n = int(extras["lengths"][b])
    return x[b:b + 1, :n], extras["mask"][b:b + 1, :n]


@pytest.mark.parametrize("arch", BUILDERS)
def test_saliency_and_penalties_equal_each_sentence_alone(decoy, arch):
    """Padding is the attention mask: a sentence in a padded batch gets the saliency, RRR term and CDEP
    term it gets alone (unpadded); GradientL1 is the mean |g| over the real tokens of the batch."""
    splits, x, y, extras = decoy
    model = BUILDERS[arch](len(splits.vocab)).eval()
    g = input_gradient(model, x, y)
    lengths = extras["lengths"]
    rrr, cdep, l1_sum = [], [], 0.0
    for b in range(len(x)):
        ids, mask = _alone(model, x, extras, b)
        n = ids.shape[1]
        g_b = input_gradient(model, ids, y[b:b + 1])
        torch.testing.assert_close(g[b:b + 1, :n], g_b, atol=1e-6, rtol=1e-4)
        assert float(g[b, n:].detach().abs().sum()) == 0.0
        l1_sum += float(g_b.abs().sum())
        rrr.append(RRR()(model, ids, y[b:b + 1], mask=mask))
        if mask.sum() > 0:
            rel, irrel = decompose(model, ids, mask)
            cdep.append(-F.log_softmax(torch.stack([rel[0, y[b]], irrel[0, y[b]]]), 0)[1])
    E = g.shape[2]
    torch.testing.assert_close(GradientL1()(model, x, y, **extras).item(), l1_sum / (float(lengths.sum()) * E),
                               rtol=1e-4, atol=0)
    torch.testing.assert_close(RRR()(model, x, y, **extras), torch.stack(rrr).mean(), atol=1e-7, rtol=1e-4)
    assert cdep, "the batch holds sentences with the decoy token"
    torch.testing.assert_close(CDEP()(model, x, y, **extras), torch.stack(cdep).mean(), atol=1e-6, rtol=1e-4)
    sgt = [SaliencyGuided(fill=0.0)(model, *_alone(model, x, extras, b)[:1], y[b:b + 1]) for b in range(len(x))]
    torch.testing.assert_close(SaliencyGuided(fill=0.0)(model, x, y, **extras), torch.stack(sgt).mean(),
                               atol=1e-7, rtol=1e-4)
    torch.testing.assert_close(Consistency()(model, x, y, **extras), _consistency_pairs(model, x, y, extras),
                               atol=1e-6, rtol=1e-4)


def _consistency_pairs(model, x, y, extras) -> torch.Tensor:
    """Consistency written pair by pair from each sentence alone: ĝ min–max normalised over the sentence's
    own tokens, ĝ and the embeddings zero-padded to T, (1 − cos ĝ) / (max(1 − cos e, 1e-3) + 1e-8) over the
    pairs of one predicted class, divided by B."""
    T = x.shape[1]
    units, embeds, predicted = [], [], []
    for b in range(len(x)):
        ids, _ = _alone(model, x, extras, b)
        g = input_gradient(model, ids, y[b:b + 1]).detach()
        g = (g - g.min()) / (g.max() - g.min() + 1e-12)
        units.append(F.pad(g[0], (0, 0, 0, T - ids.shape[1])).flatten())
        embeds.append(F.pad(model.get_input_embeddings()(ids)[0].detach(), (0, 0, 0, T - ids.shape[1])).flatten())
        predicted.append(int(model(ids).argmax(1)))
    total = torch.zeros(())
    for i in range(len(x)):
        for j in range(i + 1, len(x)):
            if predicted[i] == predicted[j]:
                gap = 1 - F.cosine_similarity(units[i], units[j], 0)
                distance = (1 - F.cosine_similarity(embeds[i], embeds[j], 0)).clamp_min(1e-3)
                total = total + gap / (distance + 1e-8)
    return total / len(x)


def test_attention_mask_is_the_padding_and_is_checked(decoy):
    splits, x, _, _ = decoy
    model = tiny_bert(len(splits.vocab))
    assert torch.equal(model.attention_mask(x).bool(), x != 0)
    model.check_attention_mask(x, (x != 0).long())
    with pytest.raises(ValueError, match="attention_mask differs from input_ids != pad_token_id"):
        model.check_attention_mask(x, torch.ones_like(x))
    config = BertConfig(vocab_size=20, hidden_size=8, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=8, pad_token_id=None)
    with pytest.raises(ValueError, match="no pad_token_id"):
        HFClassifier(BertForSequenceClassification(config))
    pair = torch.tensor([[101, 5, 102, 7, 8, 102, 0]])
    segments = HFClassifier(BertForSequenceClassification(BertConfig(vocab_size=120, hidden_size=8,
                            num_hidden_layers=1, num_attention_heads=2, intermediate_size=8)), token_types="segments")
    assert segments.token_type_ids(pair).tolist() == [[0, 0, 0, 1, 1, 1, 0]]


@pytest.mark.parametrize("method", ["input_x_gradient", "integrated_gradients", "smoothgrad"])
def test_token_attributions_and_eraser_run(decoy, method):
    splits, x, y, extras = decoy
    model = tiny_bert(len(splits.vocab)).eval()
    s = attribute(model, x, y, method, lengths=extras["lengths"], n_steps=16) if method == "integrated_gradients" \
        else attribute(model, x, y, method, lengths=extras["lengths"])
    assert s.shape == x.shape and float(s[x == 0].abs().sum()) == 0.0 and s.abs().sum() > 0
    scores = eraser(model, x, y, s)
    assert set(scores) == {"comprehensiveness", "sufficiency"}
    assert all(torch.isfinite(v).all() and v.shape == (len(x),) for v in scores.values())


@pytest.fixture(scope="module")
def mnist():
    data = load_dataset("mnist", "test")
    return data.x[:8], data.y[:8]


def test_vit_on_pixels_penalties_attributions_and_metrics(mnist):
    x, y = mnist
    model = tiny_vit().train()
    mask = torch.zeros(8, 28, 28)
    mask[:, 7:14, 7:21] = 1  # two central patches (the corner is 0 on MNIST: no input gradient term there)
    patch = torch.zeros(8, 4, 4)
    patch[:, 1, 1:3] = 1
    assert torch.equal(model.pixel_mask(patch), mask)
    for penalty in (GradientL1(), RRR(), ExpectedGradients(n_refs=2), CDEP(), SaliencyGuided(), Consistency()):
        model.zero_grad()
        value = penalty(model, x, y, mask=mask)
        value.backward()
        assert torch.isfinite(value)
        assert model.model.vit.embeddings.patch_embeddings.projection.weight.grad.abs().sum() > 0, penalty.name
    model.eval()
    a = er.attribute(model, x, y, "integrated_gradients", n_steps=8)
    assert a.shape == x.shape and a.abs().sum() > 0
    flips = er.metrics.functional.pixel_flipping(model, x, y, a)
    assert torch.isfinite(flips)
    with pytest.raises(ValueError, match="patch mask of shape"):
        model.pixel_mask(torch.zeros(8, 3, 3))


def test_trainer_trains_tiny_bert_on_sst_and_logs_the_terms(decoy, tmp_path):
    splits, _, _, _ = decoy
    model = tiny_bert(len(splits.vocab), layers=1)
    rows = []
    for x, y, extras in iterate_batches(splits.train.take(48), 48, shuffle=False):
        for b in range(len(x)):
            rows.append({"input_ids": x[b], "labels": y[b], "mask": extras["mask"][b],
                         "attention_mask": (x[b] != 0).long()})

    def collate(items):
        return {k: torch.stack([it[k] for it in items]) for k in items[0]}

    args = transformers.TrainingArguments(output_dir=str(tmp_path), per_device_train_batch_size=16, max_steps=3,
                                          logging_steps=1, report_to=[], save_strategy="no", use_cpu=True,
                                          learning_rate=1e-3, disable_tqdm=True)
    before = model.get_input_embeddings().weight.detach().clone()
    trainer = ExplainregTrainer(model=model.model, args=args, train_dataset=rows, data_collator=collate,
                                objective=Objective({RRR(): 1.0, CDEP(): 0.5}))
    trainer.train()
    logs = [h for h in trainer.state.log_history if "explainreg/rrr" in h]
    assert len(logs) == 3
    for h in logs:
        assert h["explainreg/loss"] == pytest.approx(h["explainreg/ce"] + h["explainreg/rrr"]
                                                     + 0.5 * h["explainreg/cdep"], rel=1e-4)
        assert h["explainreg/cdep"] > 0
    assert not torch.equal(before, model.get_input_embeddings().weight)


def test_own_loop_recipe_with_a_wordpiece_tokenizer_trained_on_sst(decoy):
    """The recipe of docs/transformers.md: a fast tokenizer (here a WordPiece trained on SST's training
    sentences; from_pretrained in practice), word-level decoy masks carried to word pieces by word_mask,
    and an Objective step on the HFClassifier; [CLS], [SEP] and padding never carry the mask."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    from explainreg.hf import word_mask

    splits, _, _, _ = decoy
    sentences = splits.train.sentences()
    wp = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    wp.pre_tokenizer = pre_tokenizers.Whitespace()
    wp.train_from_iterator([" ".join(s) for s in sentences], trainers.WordPieceTrainer(
        vocab_size=400, special_tokens=["[PAD]", "[UNK]", "[CLS]", "[SEP]"], show_progress=False))
    wp.post_processor = processors.TemplateProcessing(single="[CLS] $A [SEP]", special_tokens=[("[CLS]", 2),
                                                                                               ("[SEP]", 3)])
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=wp, pad_token="[PAD]", unk_token="[UNK]",
                                        cls_token="[CLS]", sep_token="[SEP]")
    rows = list(range(16))
    words = [sentences[i] for i in rows]
    masks = [splits.train.extras["mask"][i, :len(w)].tolist() for i, w in zip(rows, words)]
    enc = tokenizer(words, is_split_into_words=True, padding=True, return_tensors="pt")
    m = word_mask(enc, masks)
    assert m.sum() >= sum(sum(x) for x in masks) and float(m[:, 0].sum()) == 0.0
    assert float(m[enc["attention_mask"] == 0].sum()) == 0.0
    torch.manual_seed(0)
    config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=32, max_position_embeddings=128, num_labels=2,
                        pad_token_id=tokenizer.pad_token_id)
    model = HFClassifier(BertForSequenceClassification(config))
    model.check_attention_mask(enc["input_ids"], enc["attention_mask"])
    y = splits.train.y[rows]
    out = Objective({RRR(): 1.0, CDEP(): 1.0})(model, enc["input_ids"], y, mask=m)
    out.loss.backward()
    assert out.terms["cdep"] > 0 and model.get_input_embeddings().weight.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="give one value per word"):
        word_mask(enc, [[1]] * len(words))


def test_a_model_returning_a_model_output_is_told_to_use_hfclassifier(decoy):
    splits, x, y, extras = decoy
    raw = tiny_bert(len(splits.vocab)).model
    with pytest.raises(TypeError, match=r"SequenceClassifierOutput \(a HuggingFace ModelOutput\).*HFClassifier"):
        RRR()(raw, x, y, **extras)


def test_explainreg_training_loop_trains_and_checkpoints_an_hf_classifier(decoy, tmp_path):
    splits, _, _, _ = decoy
    model = tiny_bert(len(splits.vocab), layers=1)
    result = er.training.train(model, Objective({CDEP(): 1.0}), splits.train.take(64), splits.test.take(64),
                               config=er.training.TrainConfig(epochs=1, batch_size=32, progress=False),
                               run_dir=tmp_path / "run")
    assert result.history[-1]["train_cdep"] > 0 and 0.0 <= result.history[-1]["test_accuracy"] <= 1.0
    again = er.training.train(tiny_bert(len(splits.vocab), layers=1, seed=1), Objective({CDEP(): 1.0}),
                              splits.train.take(64), splits.test.take(64),
                              config=er.training.TrainConfig(epochs=1, batch_size=32, progress=False),
                              run_dir=tmp_path / "run", resume=True)
    assert again.history == result.history
