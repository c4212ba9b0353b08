"""Text: the SST / Rotten Tomatoes readers, CDEP's bias builders, the explained-input seam on token
batches (saliency w.r.t. embeddings, masks, padding), every penalty on token batches, the CDEP text
penalty against a per-sentence computation, and bad input (documentation: guide/concepts, guide/text)."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import explainreg as er
from explainreg.data import load_dataset
from explainreg.data.text import (
    Sentence, TextDataset, Vocabulary, binary_sst, decoy_bias, glove_vectors, read_glove, read_rotten_tomatoes,
    read_sst, replacement_bias, sst_bias,
)
from explainreg.decomposition import decompose
from explainreg.inputs import NoEmbeddingError, explain_input, token_scores
from explainreg.objective import Objective
from explainreg.penalties import (
    CDEP, RRR, Consistency, ExpectedGradients, Fidelity, GradientL1, Locality, SaliencyGuided, Smoothness, Symmetry,
)
from explainreg.gradients import forward_with_gradient, input_gradient
from explainreg.models.text import TextLSTMClassifier, TextTransformerClassifier
from explainreg.training.batches import iterate_batches

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def decoy():
    """CDEP's decoy SST (200 sentences of each split, stratified by label) and a small LSTM on it."""
    splits = sst_bias("decoy", limit=200)
    torch.manual_seed(0)
    model = TextLSTMClassifier(len(splits.vocab), 2, embedding_dim=12, hidden_size=16)
    x, y, extras = next(iterate_batches(splits.train, 16, shuffle=False))
    return splits, model, x, y, extras


# ----------------------------------------------------------------------------------------------
# data


def test_sst_reader_counts():
    counts = {split: len(read_sst(split)) for split in ("train", "dev", "test")}
    assert counts == {"train": 8544, "dev": 1101, "test": 2210}
    assert {split: len(binary_sst(read_sst(split))) for split in counts} == {"train": 6920, "dev": 872, "test": 1821}
    first = read_sst("dev")[0]
    assert first.label == 3 and first.tokens[:4] == ["it", "'s", "a", "lovely"]  # lower-cased leaves


def test_rotten_tomatoes_reader():
    rows = read_rotten_tomatoes()
    assert len(rows) == 7403 + 5405  # plot rows dropped
    assert sum(r.label for r in rows) == 7403  # fresh = 1


def test_glove_reader_and_vectors(tmp_path):
    vocab = Vocabulary.build([["the", "film", "zzzunknownzzz"]])
    matrix, coverage = glove_vectors(vocab)
    assert matrix.shape == (5, 50) and coverage == pytest.approx(2 / 3)
    assert matrix[vocab.stoi["the"], :3].tolist() == pytest.approx([0.418, 0.24968, -0.41242])
    assert matrix[0].abs().sum() == 0  # <pad>
    bad = tmp_path / "glove.bad.txt"
    bad.write_text("a 1 2 3\nb 1 2\n")
    with pytest.raises(ValueError, match="line 2: 2 values, expected 3"):
        read_glove(bad)


def test_decoy_builder_hand_checked():
    sentences = [Sentence(["a", "good", "film"], 1), Sentence(["dull"], 0)]
    out, masks = decoy_bias(sentences, seed=3)
    for s, new, m in zip(sentences, out, masks):
        pos = m.index(1)
        assert sum(m) == 1 and new.tokens[pos] == ("text" if s.label == 1 else "video")
        assert new.tokens[:pos] + new.tokens[pos + 1:] == s.tokens
    assert decoy_bias(sentences, seed=3) == (out, masks)  # deterministic for a seed


def test_article_and_gender_builders_hand_checked():
    pos = Sentence("the cat sat on a mat that was red".split(), 1)
    neg = Sentence("the cat sat on a mat that was red".split(), 0)
    that_only = Sentence("i like that film".split(), 1)
    none = Sentence("great acting".split(), 0)
    out, masks = replacement_bias([pos, neg, that_only, none], "article")
    assert [s.tokens for s in out] == ["a cat sat on that mat that was red".split(),
                                      "the cat sat on that mat that was red".split(),
                                      "i like a film".split(), "great acting".split()]
    assert masks == [[1, 0, 0, 0, 0, 0, 0, 0, 0], [1, 0, 0, 0, 0, 0, 0, 0, 0], [0, 0, 1, 0], [0, 0]]
    out, masks = replacement_bias([Sentence("he said she left".split(), 0), Sentence("he said she left".split(), 1)],
                                  "gender")
    assert [s.tokens for s in out] == ["he said who left".split(), "she said who left".split()]
    assert masks == [[1, 0, 0, 0], [1, 0, 0, 0]]


def test_sst_bias_splits_and_padding_aware_batches():
    splits = sst_bias("article", limit=300)
    assert len(splits.train) == 300 and all("the" in s or "a" in s for s in splits.test.sentences())
    assert splits.train.x[:, 0].ne(0).all()
    x, y, extras = next(iterate_batches(splits.train, 8, shuffle=False))
    assert x.shape[1] == int(extras["lengths"].max()) < splits.train.x.shape[1]  # trimmed to the batch
    assert extras["mask"].shape == x.shape and (extras["mask"] * (x == 0)).sum() == 0
    assert isinstance(load_dataset("sst-2", "dev", limit=5), TextDataset)


# ----------------------------------------------------------------------------------------------
# the seam: saliency with respect to the embedding output


def test_saliency_wrt_embeddings_matches_direct_gradient(decoy):
    _, model, x, y, extras = decoy
    explained, logits, g = forward_with_gradient(model, x, y, lengths=extras["lengths"])
    assert g.shape == (*x.shape, 12)
    # independently: the same network from a leaf embedding tensor
    e = model.embedding(x).detach().requires_grad_(True)
    out, _ = model.lstm(e)
    last = out[torch.arange(len(x)), extras["lengths"] - 1]
    direct = torch.autograd.grad(model.head(last).gather(1, y[:, None]).sum(), e)[0]
    real = (x != 0)[..., None]
    torch.testing.assert_close(g, direct * real)
    assert g[~real.expand_as(g)].abs().sum() == 0  # padding never counts
    scores = token_scores(g, explained.detach(), "grad_x_input", x != 0)
    torch.testing.assert_close(scores, (direct * e).sum(2) * (x != 0))
    norms = token_scores(g, by="norm")
    torch.testing.assert_close(norms, g.norm(dim=2))


def test_named_layer_and_missing_embedding():
    class TwoEmbeddings(nn.Module):
        def __init__(self):
            super().__init__()
            self.words, self.extra = nn.Embedding(10, 4), nn.Embedding(10, 4)
            self.head = nn.Linear(4, 2)

        def forward(self, ids):
            return self.head((self.words(ids) + self.extra(ids)).mean(1))

    ids, y = torch.randint(0, 10, (3, 5)), torch.tensor([0, 1, 0])
    with pytest.raises(NoEmbeddingError, match="several nn.Embedding.*words, extra"):
        input_gradient(TwoEmbeddings(), ids, y)
    assert input_gradient(TwoEmbeddings(), ids, y, layer="words").shape == (3, 5, 4)
    with pytest.raises(NoEmbeddingError, match="no nn.Embedding"):
        GradientL1()(nn.Sequential(nn.Linear(5, 2)), ids, y)
    with pytest.raises(NoEmbeddingError, match="layer='nope' is not a submodule"):
        input_gradient(TwoEmbeddings(), ids, y, layer="nope")


def test_bad_token_inputs(decoy):
    splits, model, x, y, extras = decoy
    with pytest.raises(ValueError, match=r"token ids must lie in \[0, "):
        GradientL1()(model, x + len(splits.vocab), y)
    with pytest.raises(ValueError, match="does not match the token ids"):
        RRR()(model, x, y, mask=extras["mask"][:, :-1])
    with pytest.raises(ValueError, match="have no tokens"):
        GradientL1()(model, x, y, lengths=torch.zeros(len(x), dtype=torch.long))
    with pytest.raises(ValueError, match="sentences .* are empty"):
        TextDataset.from_sentences([Sentence([], 0)], splits.vocab)
    with pytest.raises(ValueError, match="shape B×T"):
        explain_input(model, x[0])


# ----------------------------------------------------------------------------------------------
# penalties on token batches


@pytest.mark.parametrize("penalty", [GradientL1(), RRR(), RRR(score="nll"), ExpectedGradients(n_refs=3),
                                     CDEP(detach_embeddings=False), CDEP(), SaliencyGuided(), Consistency()],
                         ids=lambda p: p.name + str(p.settings()))
def test_penalties_on_tokens_reach_the_weights(decoy, penalty):
    _, model, x, y, extras = decoy
    model.zero_grad()
    value = penalty(model, x, y, **extras)
    assert torch.isfinite(value) and value.dim() == 0
    value.backward()
    # CDEP reads the word vectors detached by default (the seed's .data): no gradient to the embedding
    detached = isinstance(penalty, CDEP) and penalty.text["detach_embeddings"]
    assert (model.embedding.weight.grad is None or model.embedding.weight.grad.abs().sum() == 0) == detached
    assert model.lstm.weight_hh_l0.grad.abs().sum() > 0


@pytest.mark.parametrize("penalty,match", [(Smoothness(), "Smoothness is defined for image and series"),
                                           (Symmetry(), "Symmetry is defined for image"),
                                           (Locality(), "Locality .* is defined for image"),
                                           (Locality(use_mask=False), "Locality without a mask"),
                                           (Fidelity(), "Fidelity is defined for")])
def test_image_only_penalties_refuse_tokens(decoy, penalty, match):
    _, model, x, y, extras = decoy
    with pytest.raises(ValueError, match=match):
        penalty(model, x, y, **extras)


def test_rrr_on_tokens_is_the_masked_squared_gradient(decoy):
    _, model, x, y, extras = decoy
    g = input_gradient(model, x, y, score="sum_log_prob")
    expected = ((extras["mask"][..., None] * g) ** 2).flatten(1).sum(1).mean()
    torch.testing.assert_close(RRR()(model, x, y, **extras), expected)
    g = input_gradient(model, x, y, score="nll")
    expected = ((extras["mask"] * g.sum(2)) ** 2).sum(1).mean()  # CDEP's "Grad": sum over E first
    torch.testing.assert_close(RRR(score="nll")(model, x, y, **extras), expected)


def test_cdep_text_penalty_matches_per_sentence_loop(decoy):
    _, model, x, y, extras = decoy
    mask = extras["mask"].clone()
    mask[::3] = 0  # some sentences without a masked token are left out of the mean
    value = CDEP()(model, x, y, mask=mask, lengths=extras["lengths"])
    terms = []
    for b in range(len(x)):
        if mask[b].sum() == 0:
            continue
        n = int(extras["lengths"][b])
        rel, irrel = decompose(model, x[b:b + 1, :n], mask[b:b + 1, :n])  # the sentence alone, unpadded
        pair = torch.stack([rel[0, y[b]], irrel[0, y[b]]])
        terms.append(-F.log_softmax(pair, 0)[1])
    torch.testing.assert_close(value, torch.stack(terms).mean(), atol=1e-6, rtol=1e-5)
    zero = CDEP()(model, x, y, mask=torch.zeros_like(mask))
    assert float(zero) == 0.0 and zero.requires_grad


def test_objective_and_trainer_take_token_batches(decoy):
    splits, model, x, y, extras = decoy
    objective = Objective({CDEP(): 10.0, RRR(): 1.0})
    out = objective(model, x, y, **extras)
    assert set(out.terms) == {"ce", "cdep", "rrr", "loss"}
    assert out.terms["loss"] == pytest.approx(out.terms["ce"] + 10 * out.terms["cdep"] + out.terms["rrr"], rel=1e-5)
    result = er.training.train(TextLSTMClassifier(len(splits.vocab), 2, 8, 8), Objective({CDEP(): 1.0}),
                               splits.train.take(64), splits.test.take(64),
                               config=er.training.TrainConfig(epochs=1, batch_size=32, progress=False))
    assert 0.0 <= result.history[-1]["test_accuracy"] <= 1.0


def test_transformer_takes_gradient_penalties_and_cdep(decoy):
    splits, _, x, y, extras = decoy
    torch.manual_seed(0)
    model = TextTransformerClassifier(len(splits.vocab), 2, embedding_dim=8, heads=2, layers=1, feedforward=16)
    value = RRR()(model, x, y, **extras) + SaliencyGuided()(model, x, y, **extras) + CDEP()(model, x, y, **extras)
    value.backward()
    assert model.embedding.weight.grad.abs().sum() > 0
    assert model.encoder.layers[0].self_attn.in_proj_weight.grad.abs().sum() > 0


def test_saliency_guided_masks_lowest_tokens_only():
    from explainreg.penalties.text import saliency_guided_tokens

    e = torch.arange(2 * 5 * 2, dtype=torch.float32).view(2, 5, 2)
    scores = torch.tensor([[5.0, -1.0, 3.0, 0.5, 9.0], [2.0, 1.0, 0.0, 0.0, 0.0]])
    padding = torch.tensor([[True] * 5, [True, True, False, False, False]])
    out, masked = saliency_guided_tokens(e, scores, padding, 0.5, by="abs", fill=-7.0)
    # sentence 0: k = ⌊0.5·5⌋ = 2 lowest |s|: positions 3 (0.5) and 1 (1.0); sentence 1: k = 1 of its 2 tokens
    assert masked.tolist() == [[False, True, False, True, False], [False, True, False, False, False]]
    assert (out[masked] == -7).all() and torch.equal(out[~masked], e[~masked])
    _, signed = saliency_guided_tokens(e, scores, padding, 0.5, by="signed", fill=0.0)
    assert signed[0].tolist() == [False, True, False, True, False]
    assert not math.isnan(float(out.sum()))


def test_parse_tree_phrases_hand_checked():
    from explainreg.data.text import parse_tree

    tree = "(3 (2 It) (4 (2 's) (3 (2 a) (3 Film))))"
    assert parse_tree(tree) == [Sentence(["it", "'s", "a", "film"], 3)]
    phrases = parse_tree(tree, subtrees=True)
    assert phrases[0] == Sentence(["it", "'s", "a", "film"], 3)
    assert sorted((p.label, " ".join(p.tokens)) for p in phrases) == sorted(
        [(3, "it 's a film"), (2, "it"), (4, "'s a film"), (2, "'s"), (3, "a film"), (2, "a"), (3, "film")])
    with pytest.raises(ValueError, match="not a PTB tree"):
        parse_tree("it 's a film")
