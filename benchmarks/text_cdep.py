"""Cost of CDEP on text (documentation: methods/decomposition): a CDEP text training step against a plain step, and the
LSTM CD pass against a plain LSTM forward.

CDEP's SST model (GloVe 50-d, 1-layer LSTM, hidden 128) on real decoy-SST batches of 64 sentences
(their own lengths, padding trimmed per batch): median time of one Adam step with CE + λ·CDEP
(target ≤ 6× a plain CE step) and of ``decompose(model, ids, mask)`` against ``model(ids)``.

    python benchmarks/text_cdep.py [--data-root ../shared/data] [--repeats 10] [--threads 1]
"""
from __future__ import annotations

import argparse
import platform
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).parent))
from _common import interleaved_medians, markdown_table  # noqa: E402

from explainreg.data.text import glove_vectors, sst_bias  # noqa: E402
from explainreg.decomposition import decompose  # noqa: E402
from explainreg.objective import Objective  # noqa: E402
from explainreg.penalties import CDEP  # noqa: E402
from explainreg.models.text import cdep_lstm  # noqa: E402
from explainreg.training import iterate_batches  # noqa: E402

TARGET = 6.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", default=None)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    splits = sst_bias("decoy", args.data_root)
    vectors, _ = glove_vectors(splits.vocab, root=args.data_root)
    torch.manual_seed(0)
    model = cdep_lstm(len(splits.vocab), 2, vectors=vectors)
    optimizer = torch.optim.Adam(model.parameters())
    batches = list(iterate_batches(splits.train, 64, seed=0))[:args.repeats + 2]
    lengths = [int(b[2]["lengths"].float().mean()) for b in batches]
    cdep = Objective({CDEP(): 600.0})
    state = {"i": 0}

    def batch():
        state["i"] = (state["i"] + 1) % len(batches)
        return batches[state["i"]]

    def plain_step():
        x, y, _ = batch()
        optimizer.zero_grad()
        F.cross_entropy(model(x), y).backward()
        optimizer.step()

    def cdep_step():
        x, y, extras = batch()
        optimizer.zero_grad()
        cdep(model, x, y, **extras).loss.backward()
        optimizer.step()

    def forward():
        x, _, _ = batch()
        with torch.no_grad():
            model(x)

    def cd_pass():
        x, _, extras = batch()
        with torch.no_grad():
            decompose(model, x, extras["mask"])

    t = interleaved_medians({"plain step": plain_step, "CDEP step": cdep_step, "forward": forward, "CD pass": cd_pass},
                            args.repeats)
    rows = [["CE step", f"{1000 * t['plain step']:.1f}", "1.0"],
            ["CE + CDEP step", f"{1000 * t['CDEP step']:.1f}", f"{t['CDEP step'] / t['plain step']:.2f}"],
            ["LSTM forward (no grad)", f"{1000 * t['forward']:.1f}", "1.0"],
            ["LSTM CD pass (no grad)", f"{1000 * t['CD pass']:.1f}", f"{t['CD pass'] / t['forward']:.2f}"]]
    print(f"{platform.processor() or platform.machine()}, torch {torch.__version__}, {args.threads} thread(s), "
          f"batch 64, mean sentence length {sum(lengths) / len(lengths):.1f} tokens, {args.repeats} repeats")
    print(markdown_table(["what", "median ms", "ratio"], rows))
    ratio = t["CDEP step"] / t["plain step"]
    print(f"CDEP step / plain step = {ratio:.2f} (target ≤ {TARGET:g}: {'met' if ratio <= TARGET else 'NOT met'})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
