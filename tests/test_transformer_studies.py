"""``explainreg study transformers`` on small real subsets, 1 epoch (documentation: transformers): the files
a user reads, the settings and versions recorded, and numbers that a computation over the saved model and
the saved tokenizer gives again."""
from __future__ import annotations

import csv
import json
import os

import pytest
import torch

if os.environ.get("EXPLAINREG_REQUIRE_OPTIONAL"):  # make test: the hf extra is installed, so these must run
    import transformers  # noqa: F401
else:
    pytest.importorskip("transformers", reason="the optional extra `hf` is not installed")

from explainreg.cli import main  # noqa: E402
from explainreg.data.text import DECOY_WORDS, sst_bias  # noqa: E402
from explainreg.runs import load_run  # noqa: E402
from explainreg.studies.transformer_studies import (CLS, PAD, SEP, FramedDecoyShortcut, frame,  # noqa: E402
                                                    load_tokenizer, train_wordpiece, unframe)

torch.set_num_threads(1)
TINY = ["--epochs", "1", "--seeds", "0", "--hidden", "16", "--heads", "2", "--threads", "1"]


def _predict_one_by_one(model, tokenizer, sentences):
    """The predicted class of each sentence, encoded alone (no padding) with the saved tokenizer."""
    out = []
    with torch.no_grad():
        for words in sentences:
            ids = torch.tensor([tokenizer(words, is_split_into_words=True)["input_ids"]])
            out.append(int(model(ids).argmax(1)))
    return torch.tensor(out)


def test_decoy_part_writes_its_files_and_its_accuracies_are_those_of_the_saved_model(tmp_path):
    out = tmp_path / "decoy"
    argv = ["study", "transformers", "--part", "decoy", "--limit", "64", "--methods", "vanilla", "cdep",
            "--vocab-size", "400", "--out", str(out), *TINY]
    assert main(argv) == 0
    for name in ("runs.csv", "results.csv", "results.json", "summary.md", "summary.html", "tokenizer.json"):
        assert (out / name).is_file(), name
    record = json.loads((out / "results.json").read_text())
    assert record["settings"]["limit"] == 64 and record["settings"]["epochs"] == 1
    assert record["settings"]["methods"] == ["vanilla", "cdep"]
    assert record["command"].startswith("explainreg study transformers --part decoy")
    assert "--limit 64" in record["command"]
    assert {"torch", "transformers", "tokenizers", "explainreg"} <= set(record["environment"])
    assert "64 sentences" in record["data"]["train"]
    rows = {r["method"]: r for r in csv.DictReader(open(out / "runs.csv"))}
    assert set(rows) == {"vanilla", "cdep"}
    summary = (out / "summary.md").read_text()
    assert "--part decoy" in summary and "transformers" in summary and "reliance" in summary

    # the saved model and tokenizer give the recorded accuracies again, one sentence at a time
    tokenizer = load_tokenizer(out / "tokenizer.json")
    assert tokenizer.convert_tokens_to_ids(list(DECOY_WORDS)) == record["data"]["decoy_ids"]
    test = sst_bias("decoy", limit=64).test
    sentences, y = test.sentences(), test.y
    for method, run in rows.items():
        model, config = load_run(out / "runs" / f"{method}_lam{'0' if method == 'vanilla' else '1'}_seed0")
        assert config["model"].endswith("transformer_studies:bert_classifier")
        predicted = _predict_one_by_one(model, tokenizer, sentences)
        assert float(run["test_accuracy"]) == pytest.approx(100 * float((predicted == y).double().mean()), abs=1e-9)
        assert float(run["accuracy"]) == pytest.approx(float(run["test_accuracy"]), abs=1e-9)
        # accuracy with the label's own decoy: the hook's sentences, each predicted alone
        hook = FramedDecoyShortcut.for_tokenizer(tokenizer, DECOY_WORDS, seed=0)
        enc = tokenizer([list(s) for s in sentences], is_split_into_words=True, padding=True, return_tensors="pt")
        planted = hook(enc["input_ids"], None, y, torch.arange(len(y)))
        with torch.no_grad():
            agree = torch.tensor([int(model(row[row != PAD][None]).argmax(1)) for row in planted])
        assert float(run["acc_agree"]) == pytest.approx(100 * float((agree == y).double().mean()),
                                                                         abs=1e-9)

    # a rerun reuses the finished runs; other settings into the same folder are refused, naming the difference
    done = out / "runs" / "cdep_lam1_seed0" / "result.json"
    stamp = done.stat().st_mtime
    assert main(argv) == 0 and done.stat().st_mtime == stamp
    with pytest.raises(SystemExit, match=r"vanilla_lam0_seed0.*\n.*epochs: 1 → 2"):
        main([*argv, "--epochs", "2"])


def test_the_decoy_hook_puts_one_decoy_piece_between_words_and_keeps_the_frame():
    splits = sst_bias("decoy", limit=200)
    tokenizer = train_wordpiece(splits.train.sentences(), 300)   # a small vocabulary: many words in pieces
    continuation = {i for piece, i in tokenizer.get_vocab().items() if piece.startswith("##")}
    words = splits.test.sentences()
    enc = tokenizer(words, is_split_into_words=True, padding=True, return_tensors="pt")
    ids, n = enc["input_ids"], len(words)
    hook = FramedDecoyShortcut.for_tokenizer(tokenizer, DECOY_WORDS, seed=3)
    decoys = hook.word_ids.tolist()
    target = torch.arange(n) % 2
    out = hook(ids, None, target, torch.arange(n))
    assert out.shape == (n, ids.shape[1] + 1)
    before_word = []
    for b in range(n):
        row, original = out[b][out[b] != PAD], ids[b][ids[b] != PAD]
        assert row[0] == CLS and row[-1] == SEP and len(row) == len(original) + 1
        # the decoy piece whose removal gives the sentence back (SST itself holds a few "text" / "video")
        found = [int(i) for i in (row == decoys[int(target[b])]).nonzero().flatten()
                 if torch.equal(torch.cat([row[:i], row[i + 1:]]), original)]
        assert found and 1 <= found[0] <= len(original) - 1
        where = found[0]
        assert int(row[where + 1]) not in continuation           # never inside a word
        n_words = sum(1 for i in original[1:-1].tolist() if i not in continuation)
        before_word.append((sum(1 for i in row[1:where].tolist() if i not in continuation), n_words))
    assert any(w == 0 for w, _ in before_word) and any(w == n_words for w, n_words in before_word)
    assert any(int(i) in continuation for i in ids.flatten())     # the case the word boundaries matter for
    # a masked piece is replaced in place; unframe and frame are inverses
    mask = torch.zeros_like(ids)
    mask[:, 1] = 1
    replaced = hook(ids, mask, target, torch.arange(n))
    assert torch.equal(replaced[:, 1], torch.tensor(decoys)[target]) and torch.equal(replaced[:, 2:-1], ids[:, 2:])
    assert torch.equal(frame(unframe(ids))[:, : ids.shape[1]], ids)


def test_eraser_part_records_eraser_per_attribution_and_the_saved_models_accuracy(tmp_path):
    out = tmp_path / "eraser"
    argv = ["study", "transformers", "--part", "eraser", "--limit", "64", "--eval-limit", "12", "--vocab-size", "400",
            "--out", str(out), *TINY]
    assert main(argv) == 0
    rows = list(csv.DictReader(open(out / "runs.csv")))
    assert [r["method"] for r in rows] == ["vanilla", "sgt"]
    for r in rows:
        for key in ("gradient", "integrated_gradients", "smoothgrad", "random"):
            assert -1 <= float(r[f"{key}_comprehensiveness"]) <= 1 and -1 <= float(r[f"{key}_sufficiency"]) <= 1
    assert "random comp." in (out / "summary.md").read_text()
    record = json.loads((out / "results.json").read_text())
    assert record["settings"]["eval_limit"] == 12 and "ERASER on 12" in record["data"]["test"]
    from explainreg.studies.sgt_text import _data, token_attribution

    _, _, test, _ = _data(None, 64)
    tokenizer = load_tokenizer(out / "tokenizer.json")
    model, _ = load_run(out / "runs" / "sgt_lam1_seed0")
    predicted = _predict_one_by_one(model, tokenizer, test.sentences())
    assert float(rows[1]["test_accuracy"]) == pytest.approx(100 * float((predicted == test.y).double().mean()),
                                                            abs=1e-9)
    # gradient comprehensiveness / sufficiency again, one sentence at a time: the word pieces between [CLS]
    # and [SEP] ranked by |score|, the top k % deleted (comprehensiveness) or kept alone (sufficiency)
    pick = torch.randperm(len(test), generator=torch.Generator().manual_seed(1))[:12].sort().values
    comp, suff = [], []
    for i in pick.tolist():
        words, y = test.sentences()[i], test.y[i:i + 1]
        ids = torch.tensor([tokenizer(words, is_split_into_words=True)["input_ids"]])
        score = token_attribution(model, ids, y, "gradient", seed=0)[0, 1:-1].abs()
        pieces, n = ids[0, 1:-1], ids.shape[1] - 2
        order = sorted(range(n), key=lambda t: (-float(score[t]), t))

        def p_true(kept):
            with torch.no_grad():
                return float(torch.softmax(model(torch.tensor([[CLS, *kept, SEP]])), 1)[0, int(y)])

        base, c, u = p_true(pieces.tolist()), [], []
        for pct in (1, 5, 10, 20, 50):
            k = max(1, n * pct // 100)
            top = set(order[:k])
            dropped = set(order[:min(k, n - 1)])
            c.append(base - p_true([int(pieces[t]) for t in range(n) if t not in dropped]))
            u.append(base - p_true([int(pieces[t]) for t in range(n) if t in top]))
        comp.append(sum(c) / 5)
        suff.append(sum(u) / 5)
    assert float(rows[1]["gradient_comprehensiveness"]) == pytest.approx(sum(comp) / len(comp), abs=1e-5)
    assert float(rows[1]["gradient_sufficiency"]) == pytest.approx(sum(suff) / len(suff), abs=1e-5)


def test_vit_part_records_accuracy_and_shortcut_columns_of_the_saved_model(tmp_path):
    from explainreg.data import decoy_mnist

    out = tmp_path / "vit"
    argv = ["study", "transformers", "--part", "vit", "--limit", "200", "--test-limit", "100", "--methods", "rrr",
            "--out", str(out), *TINY]
    assert main(argv) == 0
    run = next(csv.DictReader(open(out / "runs.csv")))
    test = decoy_mnist("test", limit=100)
    model, config = load_run(out / "runs" / "rrr_lam10_seed0")
    assert config["model"].endswith("transformer_studies:vit_classifier")
    with torch.no_grad():
        accuracy = 100 * float((model(test.x).argmax(1) == test.y).double().mean())
    assert float(run["test_accuracy"]) == pytest.approx(accuracy, abs=1e-9)
    assert float(run["accuracy"]) == pytest.approx(accuracy, abs=1e-9)
    assert float(run["reliance"]) == pytest.approx(float(run["acc_agree"]) - float(run["acc_disagree"]), abs=1e-9)
    assert json.loads((out / "results.json").read_text())["settings"]["test_limit"] == 100
