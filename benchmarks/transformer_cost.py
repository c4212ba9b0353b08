"""Cost of explanation penalties and contextual decomposition on a tiny BERT (documentation: transformers).

A BERT of BERT-Tiny's shape (2 layers, hidden 128, 2 heads, feed-forward 512; built from its config,
random weights) through :class:`explainreg.hf.HFClassifier`, on real decoy-SST batches (B sentences,
their own lengths, padding trimmed per batch): the median time of one Adam step with CE + a penalty
(GradientL1, RRR, CDEP through CD-T) against a plain CE step, and of a CD pass
(``decompose_tokens``) against a plain forward, all in the same run (interleaved repetitions). Then
the memory of double back-propagation at sequence length 128 (rows of concatenated real SST
sentences): the bytes autograd saves for the backward of a plain step's forward against those of a
penalty step (the forward, and the input gradient's graph kept with ``create_graph=True``), counted
with ``torch.autograd.graph.saved_tensors_hooks`` (device-independent), and on CUDA the peak
allocated memory of each step as well.

    python benchmarks/transformer_cost.py [--data-root ../shared/data] [--batch 32] [--repeats 10] [--threads 1]
"""
from __future__ import annotations

import argparse
import platform
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).parent))
from _common import interleaved_medians, make_step, markdown_table  # noqa: E402

from explainreg.data.text import sst_bias  # noqa: E402
from explainreg.decomposition import decompose_tokens  # noqa: E402
from explainreg.objective import Objective  # noqa: E402
from explainreg.penalties import CDEP, RRR, GradientL1  # noqa: E402
from explainreg.training import iterate_batches  # noqa: E402


def tiny_bert(vocab: int, max_len: int = 512):
    from transformers import BertConfig, BertForSequenceClassification

    from explainreg.hf import HFClassifier

    torch.manual_seed(0)
    config = BertConfig(vocab_size=vocab, hidden_size=128, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=512, max_position_embeddings=max_len, num_labels=2, pad_token_id=0)
    return HFClassifier(BertForSequenceClassification(config))


def saved_bytes(fn) -> int:
    """Bytes of the tensors autograd saves for backward while ``fn`` runs (each storage counted once)."""
    seen: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        storage = t.untyped_storage()
        seen[storage.data_ptr()] = storage.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        fn()
    return sum(seen.values())


def long_rows(splits, rows: int, length: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``rows`` rows of ``length`` real tokens: consecutive SST training sentences concatenated."""
    flat, masks = [], []
    for i in range(len(splits.train)):
        n = int(splits.train.extras["lengths"][i])
        flat.append(splits.train.x[i, :n])
        masks.append(splits.train.extras["mask"][i, :n])
        if sum(len(f) for f in flat) >= rows * length:
            break
    ids = torch.cat(flat)[: rows * length].view(rows, length)
    mask = torch.cat(masks)[: rows * length].view(rows, length)
    return ids, splits.train.y[:rows], mask


def memory(model, ids, y, mask, device: str) -> list[list[str]]:
    model = model.to(device).train()
    ids, y, mask = ids.to(device), y.to(device), mask.to(device)
    out = []
    plain = Objective({})
    for name, objective in (("plain CE", plain), ("GradientL1", Objective({GradientL1(): 0.1})),
                            ("RRR", Objective({RRR(): 0.1})), ("CDEP", Objective({CDEP(): 0.1}))):
        def step() -> None:
            objective(model, ids, y, mask=mask).loss.backward()

        saved = saved_bytes(step)
        peak = "–"
        if device == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            step()
            torch.cuda.synchronize()
            peak = f"{torch.cuda.max_memory_allocated() / 2**20:.0f}"
        model.zero_grad(set_to_none=True)
        out.append([name, f"{saved / 2**20:.1f}", peak])
    base = float(out[0][1])
    for row in out:
        row.insert(2, f"{float(row[1]) / base:.2f}×")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", default=None)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--long-rows", type=int, default=8, help="rows of the sequence-length-128 memory batch")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    splits = sst_bias("decoy", args.data_root)
    x, y, extras = next(iterate_batches(splits.train, args.batch, shuffle=False))
    extras = {"mask": extras["mask"], "lengths": extras["lengths"]}
    model = tiny_bert(len(splits.vocab)).train()
    steps = {name: make_step(model, objective, x, y, extras, args.device) for name, objective in (
        ("plain CE step", Objective({})), ("GradientL1 step", Objective({GradientL1(): 0.1})),
        ("RRR step", Objective({RRR(): 0.1})), ("CDEP step (CD-T)", Objective({CDEP(): 0.1})))}
    xd, md = x.to(args.device), extras["mask"].to(args.device)

    def forward() -> None:
        with torch.no_grad():
            model(xd)

    def cd_pass() -> None:
        with torch.no_grad():
            decompose_tokens(model, xd, md)

    steps["plain forward"] = forward
    steps["CD pass"] = cd_pass
    times = interleaved_medians(steps, args.repeats)
    rows = []
    for name, t in times.items():
        base = times["plain forward"] if name == "CD pass" else times["plain CE step"]
        rows.append([name, f"{t * 1e3:.1f}", f"{t / base:.2f}×"])
    device = torch.cuda.get_device_name() if args.device == "cuda" else f"CPU, {args.threads} thread(s)"
    print(f"tiny BERT (2 layers, hidden 128, 2 heads), decoy-SST batch of {len(x)} sentences (T = {x.shape[1]}), "
          f"{device}, torch {torch.__version__}, {platform.processor() or platform.machine()}; medians of "
          f"{args.repeats} interleaved repetitions")
    print(markdown_table(["step", "ms", "ratio (steps: to the plain step; CD pass: to the plain forward)"], rows))
    ids, yl, mask = long_rows(splits, args.long_rows, 128)
    print(f"\nmemory at sequence length 128 ({args.long_rows} rows of concatenated SST sentences), training mode")
    print(markdown_table(["step", "saved for backward (MiB)", "ratio to plain", "CUDA peak (MiB)"],
                         memory(model, ids, yl, mask, args.device)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
