"""Contextual decomposition on users' own models: a forward that depends on the model's mode, the
all-ones / all-zeros masks where a unit sees no input, and clear errors for what CD cannot do."""
from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from explainreg.decomposition import decompose
from explainreg.penalties.annotation import cdep


class ModeDependentNet(nn.Module):
    """A small MNIST CNN whose forward reads ``self.training``: a train-only shift and functional dropout."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 5)
        self.fc = nn.Linear(4 * 12 * 12, 10)
        self.shift, self.p = 0.5, 0.5

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.max_pool2d(F.relu(self.conv(x)), 2)
        if self.training:
            h = h + self.shift
        h = F.dropout(h, self.p, training=self.training)
        return self.fc(h.flatten(1))


def _half_mask() -> torch.Tensor:
    mask = torch.zeros(28, 28)
    mask[:, :14] = 1
    return mask


def test_eval_decomposition_after_a_training_mode_cdep_call_is_the_eval_models(mnist_test):
    torch.manual_seed(0)
    net, x, mask = ModeDependentNet(), mnist_test.x[:16], _half_mask()
    fresh = copy.deepcopy(net).eval()  # never decomposed: traced for the first time in eval mode
    net.train()
    cdep(net, x, mask).backward()
    net.eval()
    rel, irrel = decompose(net, x, mask)
    again = decompose(net, x, mask)
    rel_fresh, irrel_fresh = decompose(fresh, x, mask)
    logits = net(x).detach()
    scale = float(logits.abs().max())
    torch.testing.assert_close(rel + irrel, logits, atol=1e-5 * scale, rtol=1e-5)
    torch.testing.assert_close(rel, rel_fresh)
    torch.testing.assert_close(irrel, irrel_fresh)
    torch.testing.assert_close(again, (rel, irrel))


def test_training_mode_cdep_is_deterministic_with_functional_dropout(mnist_test):
    """CDEP decomposes the deterministic network: ``F.dropout(..., training=True)`` is the identity
    in the CD pass, as ``nn.Dropout`` layers are, so two calls on the same batch agree."""
    torch.manual_seed(0)
    net, x, mask = ModeDependentNet().train(), mnist_test.x[:16], _half_mask()
    first, second = cdep(net, x, mask), cdep(net, x, mask)
    torch.testing.assert_close(first, second)
    no_dropout = copy.deepcopy(net)
    no_dropout.p = 0.0
    torch.testing.assert_close(first, cdep(no_dropout, x, mask))


def test_a_changed_plain_setting_is_traced_again(mnist_test):
    torch.manual_seed(0)
    net, x, mask = ModeDependentNet().train(), mnist_test.x[:16], _half_mask()
    decompose(net, x, mask)
    net.shift = -0.25
    torch.manual_seed(1)
    rel, irrel = decompose(net, x, mask)
    torch.manual_seed(1)
    logits = net(x).detach()  # the same dropout draw: CD in training mode shares one mask between the parts
    torch.testing.assert_close(rel + irrel, logits, atol=1e-5 * float(logits.abs().max()), rtol=1e-5)


def test_one_trace_serves_other_input_sizes_and_dtypes(mnist_test):
    """torch.fx keeps the input symbolic (its shape, dtype and device are not baked into the graph):
    the graph traced on 28×28 float32 images decomposes 20×20 crops and float64 images exactly."""

    class SizeFree(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv, self.fc = nn.Conv2d(1, 4, 3), nn.Linear(4 * 4 * 4, 10)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            h = F.adaptive_avg_pool2d(F.relu(self.conv(x)), 4)
            return self.fc(h.view(h.size(0), -1) * torch.ones((), dtype=h.dtype, device=h.device))

    torch.manual_seed(0)
    net = SizeFree().eval()
    x = mnist_test.x[:8]
    for inputs, model in ((x, net), (x[:, :, 4:24, 4:24], net), (x.double(), copy.deepcopy(net).double())):
        mask = torch.zeros(inputs.shape[-2:], dtype=inputs.dtype)
        mask[:, : inputs.shape[-1] // 2] = 1
        with torch.no_grad():
            rel, irrel = decompose(model, inputs, mask)
            torch.testing.assert_close(rel + irrel, model(inputs), atol=1e-5, rtol=1e-5)


# ---------------------------------------------------------------------------------------------
# all-ones and all-zeros masks where units see no input (zero background, zero padding)


def _extremes(net: nn.Module, x: torch.Tensor, ones: torch.Tensor) -> tuple[float, float, float]:
    """max|irrel| for an all-ones mask, max|rel| of the images an all-zeros mask covers (one image
    carries the region: an empty mask for the whole batch is refused), max|rel + irrel − logits|, each
    over max|logit|."""
    with torch.no_grad():
        logits = net(x)
        scale = float(logits.abs().max())
        rel, irrel = decompose(net, x, ones)
        zeros = torch.zeros(len(x), *ones.shape)
        zeros[0] = 1
        rel0, _ = decompose(net, x, zeros)
    return (float(irrel.abs().max()) / scale, float(rel0[1:].abs().max()) / scale,
            float((rel + irrel - logits).abs().max()) / scale)


@pytest.mark.parametrize("name", ["cdep_decoymnist", "cdep_colormnist"])
def test_all_ones_mask_leaves_no_irrel_on_the_cdep_nets_over_mnist_background(mnist_test, name):
    """MNIST pixels in [0, 1]: 83 % of them are exactly 0, so many first-layer units see neither part
    (their bias went wholly to irrel: 44 % / 28 % of max|logit| with an all-ones mask)."""
    from explainreg.models import build_model

    torch.manual_seed(0)
    net = build_model(name).eval()
    x = mnist_test.x[:32].repeat(1, 3 if "color" in name else 1, 1, 1)
    assert float((x == 0).float().mean()) > 0.5
    irrel_ones, rel_zeros, completeness = _extremes(net, x, torch.ones(28, 28))
    assert irrel_ones <= 1e-6 and rel_zeros <= 1e-6 and completeness <= 1e-5


class _SeriesCNN(nn.Module):
    """A GroupNorm 1-D CNN over B×C×T series."""

    def __init__(self, channels: int, classes: int) -> None:
        super().__init__()
        self.features = nn.Sequential(nn.Conv1d(channels, 16, 3, padding=1), nn.GroupNorm(4, 16), nn.ReLU(),
                                      nn.Conv1d(16, 16, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool1d(1),
                                      nn.Flatten())
        self.fc = nn.Linear(16, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(x))


class _SeriesRNN(nn.Module):
    """A GRU or LSTM over a B×C×T series, read at its last step."""

    def __init__(self, channels: int, classes: int, kind: type) -> None:
        super().__init__()
        self.rnn = kind(channels, 16, batch_first=True)
        self.fc = nn.Linear(16, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.rnn(x.transpose(1, 2))
        return self.fc(out[:, -1])


@pytest.mark.parametrize("arch", ["cnn", "gru", "lstm"])
def test_all_ones_mask_leaves_no_irrel_on_zero_padded_series(arch):
    """JapaneseVowels' series have 7–29 steps, zero-padded to 29: the padded steps are exactly 0 (the
    bias went to irrel there: 66 % / 99.9 % / 99.99 % of max|logit| with an all-ones mask)."""
    from explainreg.data import load_dataset

    ds = load_dataset("ucr/JapaneseVowels", "test", limit=32)
    x = ds.x
    assert bool((ds.extras["lengths"] < x.shape[-1]).any())
    torch.manual_seed(0)
    classes = int(ds.y.max()) + 1
    net = _SeriesCNN(x.shape[1], classes) if arch == "cnn" else \
        _SeriesRNN(x.shape[1], classes, nn.GRU if arch == "gru" else nn.LSTM)
    irrel_ones, rel_zeros, completeness = _extremes(net.eval(), x, torch.ones(x.shape[-1]))
    assert irrel_ones <= 1e-6 and rel_zeros <= 1e-6 and completeness <= 1e-5


def test_a_unit_that_sees_no_input_splits_its_bias_by_the_inputs_relevant_share(mnist_test):
    """One linear layer on MNIST: a unit whose weights touch only background pixels (exact zeros) has
    r = s = 0; its bias goes to rel in the share |m ⊙ x|₁ / |x|₁ of the image, for every mask."""
    x = mnist_test.x[:8]
    background = (x == 0).all(0).flatten()  # pixels that are 0 in all eight images
    layer = nn.Linear(784, 2)
    with torch.no_grad():
        layer.weight.zero_()
        layer.weight[0, background] = 1.0  # unit 0 sees only background; unit 1 sees nothing at all
    net = nn.Sequential(nn.Flatten(), layer)
    mask = torch.zeros(28, 28)
    mask[:, :10] = 1
    rel, irrel = decompose(net, x, mask)
    share = (x * mask).abs().flatten(1).sum(1) / x.abs().flatten(1).sum(1)
    expected = share[:, None] * layer.bias.detach()
    torch.testing.assert_close(rel, expected)
    torch.testing.assert_close(irrel, layer.bias.detach() - expected)
    # the seed's order keeps the seed's convention: the whole bias to irrel
    rel_seed, irrel_seed = decompose(net, x, mask, order="seed")
    assert float(rel_seed.abs().max()) == 0


# ---------------------------------------------------------------------------------------------
# what CD cannot decompose: named, with what to do; wrappers it can see through


class _TextGRU(nn.Module):
    """Embedding → GRU → linear head on the last hidden state; ``h0``: a learned initial state;
    ``pack``: the GRU runs on a PackedSequence of the real lengths."""

    def __init__(self, vocab: int, h0: bool = False, pack: bool = False) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocab, 8, padding_idx=0)
        self.gru = nn.GRU(8, 6, batch_first=True)
        self.h0 = nn.Parameter(torch.randn(1, 1, 6)) if h0 else None
        self.pack = pack
        self.head = nn.Linear(6, 2)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        e = self.embedding(ids)
        if self.pack:
            lengths = (ids != 0).sum(1).cpu()
            e = nn.utils.rnn.pack_padded_sequence(e, lengths, batch_first=True, enforce_sorted=False)
        if self.h0 is not None:
            _, h = self.gru(e, self.h0.expand(1, ids.size(0), 6).contiguous())
        else:
            _, h = self.gru(e)
        return self.head(h[-1])


@pytest.fixture(scope="module")
def sst_ids() -> tuple[torch.Tensor, int]:
    """Eight real SST-2 dev sentences as token ids, right-padded with 0, and the vocabulary size."""
    from explainreg.data.text import Vocabulary, binary_sst, read_sst

    sentences = binary_sst(read_sst("dev"))[:8]
    vocab = Vocabulary.build(sentences)
    ids = torch.zeros(len(sentences), max(len(s.tokens) for s in sentences), dtype=torch.long)
    for i, s in enumerate(sentences):
        ids[i, : len(s.tokens)] = torch.tensor(vocab.encode(s.tokens))
    return ids, len(vocab)


def test_a_gru_with_a_learned_initial_state_is_refused_by_name(sst_ids):
    from explainreg.decomposition import UnsupportedLayerError

    ids, vocab = sst_ids
    net = _TextGRU(vocab, h0=True).eval()
    assert net(ids).shape == (len(ids), 2)
    with pytest.raises(UnsupportedLayerError, match=r"GRU 'gru' .*initial state.*Call the GRU without one"):
        decompose(net, ids, torch.ones(ids.shape))


def test_a_packed_sequence_is_refused_by_name_with_the_padded_alternative(sst_ids):
    from explainreg.decomposition import UnsupportedLayerError

    ids, vocab = sst_ids
    net = _TextGRU(vocab, pack=True).eval()
    assert net(ids).shape == (len(ids), 2)
    with pytest.raises(UnsupportedLayerError, match=r"PackedSequence \(torch.nn.utils.rnn.pack_padded_sequence "
                                                    r"in _TextGRU.forward\).*lengths - 1"):
        decompose(net, ids, torch.ones(ids.shape))


def test_the_supported_layer_list_names_only_layers_with_a_rule():
    from explainreg.decomposition import RULES, UnsupportedLayerError, find_rule, supported_layers

    names = supported_layers()
    assert "RNN" not in names and {"BatchNorm2d", "Dropout2d", "LSTM", "GRU", "Conv1d"} <= set(names)
    for name in names:  # torch.nn's layers, and registered classes of other packages (explainreg.hf's)
        cls = getattr(nn, name, None) or next(c for c in RULES if c.__name__ == name)
        assert find_rule(cls) is not None, name
    assert nn.RNN not in RULES
    net = nn.Sequential(nn.RNN(3, 4, batch_first=True))
    with pytest.raises(UnsupportedLayerError, match=r"no rule for RNN .*use nn.LSTM or nn.GRU\.") as err:
        decompose(net, torch.randn(2, 5, 3), torch.ones(3))
    listed = str(err.value).split("Supported layers: ")[1].split(". Add one")[0].split(", ")
    assert listed == names


def test_training_mode_dropout2d_drops_whole_channels_in_both_parts(mnist_test):
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 4, 3), nn.Dropout2d(0.5), nn.Flatten(), nn.Linear(4 * 26 * 26, 3)).train()
    mask = _half_mask()
    x = mnist_test.x[:4]
    _, _, layers = decompose(net, x, mask, return_layers=True)
    rel, irrel = layers["1"]
    total = rel + irrel
    dropped = total.flatten(2).abs().amax(2) == 0  # B×C: a channel is dropped whole or kept whole
    assert bool(dropped.any()) and bool((~dropped).any())
    kept = total.flatten(2)[~dropped]
    assert bool((kept != 0).any(1).all())
    alpha = nn.Sequential(nn.Linear(784, 3), nn.AlphaDropout(0.5)).train()
    with pytest.raises(ValueError, match="AlphaDropout in training mode.*model.eval"):
        decompose(nn.Sequential(nn.Flatten(), alpha), x, mask)


def test_data_parallel_is_decomposed_as_the_network_inside(mnist_test):
    from explainreg.models import build_model

    torch.manual_seed(0)
    net = build_model("cdep_decoymnist").eval()
    x, mask = mnist_test.x[:8], _half_mask()
    wrapped = nn.DataParallel(net)
    torch.testing.assert_close(decompose(wrapped, x, mask), decompose(net, x, mask))
    torch.testing.assert_close(cdep(wrapped, x, mask), cdep(net, x, mask))


class _DropoutTokenCNN(torch.nn.Module):
    """A CNN over embeddings with functional dropout in its forward, as users write it."""

    def __init__(self, vocab: int, dim: int = 8):
        super().__init__()
        self.embed = torch.nn.Embedding(vocab, dim)
        self.conv = torch.nn.Conv1d(dim, 8, 3, padding=1)
        self.out = torch.nn.Linear(8, 2)

    def forward(self, ids):
        h = F.dropout(self.embed(ids), 0.5, training=self.training).transpose(1, 2)
        return self.out(F.relu(self.conv(h)).mean(2))


def test_text_cdep_in_training_mode_treats_functional_dropout_as_identity():
    """The text CDEP penalty on real SST decoy sentences: two training-mode calls agree, and equal the
    network without dropout (functional dropout is the identity in the CD pass, as for images)."""
    from explainreg.data.text import sst_bias
    from explainreg.penalties.text import cdep_text

    from explainreg.training import iterate_batches

    splits = sst_bias("decoy", limit=64)
    ids, y, extras = next(iterate_batches(splits.train, 16, shuffle=False))
    mask, lengths = extras["mask"].float(), extras["lengths"]
    assert bool((mask != 0).any())
    torch.manual_seed(0)
    net = _DropoutTokenCNN(len(splits.vocab)).train()
    first = cdep_text(net, ids, y, mask, lengths=lengths)
    torch.testing.assert_close(first, cdep_text(net, ids, y, mask, lengths=lengths))
    torch.testing.assert_close(first, cdep_text(copy.deepcopy(net).eval(), ids, y, mask, lengths=lengths))
