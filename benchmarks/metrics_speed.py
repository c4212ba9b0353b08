"""Speed of explainreg's metrics on real MNIST test images with CNN3b (or CNN4b), against Quantus 0.6,
a per-image loop like the seed's, and the forward passes alone (the floor).

    python benchmarks/metrics_speed.py [--model cnn3b|cnn4b] [--n 1000] [--threads 1] [--skip-quantus-road]
                                       [--fixed-rows 512]

CNN3b is trained for one epoch on 10k real train images, CNN4b for one epoch on 3k (cached in
benchmarks/.cache/). Prints one row per metric: seconds for (a) explainreg, (b) Quantus, (c) per-image
loop, (d) forwards alone, the ratios, and the difference of the summary values between (a) and (b).
explainreg sizes its chunks by the model's activation memory (``M.ACTIVATION_BUDGET``);
``--fixed-rows R`` adds rows timing the forward-bound metrics with a fixed chunk of R rows instead
(the earlier default was 512).
"""
from __future__ import annotations

import argparse
import os
import time
import warnings
from pathlib import Path

import numpy as np
import torch

os.environ.setdefault("EXPLAINREG_DATA", str(Path(__file__).resolve().parents[2] / "shared" / "data"))

from explainreg import metrics as M  # noqa: E402
from explainreg.attribution import attribute  # noqa: E402
from explainreg.metrics.functional.imputation import QUANTUS_PERCENTAGES, noisy_linear_imputation  # noqa: E402
from explainreg.data import load_dataset  # noqa: E402
from explainreg.models import build_model  # noqa: E402

TRAIN_LIMIT = {"cnn3b": 10_000, "cnn4b": 3_000}


def trained_model(name: str = "cnn3b") -> torch.nn.Module:
    model = build_model(name)
    limit = TRAIN_LIMIT.get(name, 3_000)
    cache = Path(__file__).resolve().parent / ".cache" / f"{name}_1epoch_{limit // 1000}k.pt"
    if cache.is_file():
        model.load_state_dict(torch.load(cache))
        return model.eval()
    train = load_dataset("mnist", "train", limit=limit)
    torch.manual_seed(0)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    for s in range(0, len(train), 30):
        loss = torch.nn.functional.cross_entropy(model(train.x[s:s + 30]), train.y[s:s + 30])
        opt.zero_grad()
        loss.backward()
        opt.step()
    cache.parent.mkdir(exist_ok=True)
    torch.save(model.state_dict(), cache)
    return model.eval()


DEVICE = "cpu"  # --device: where the model, the images and Quantus run


def timed(fn):
    t = time.perf_counter()
    out = fn()
    if torch.device(DEVICE).type == "cuda":
        torch.cuda.synchronize()  # time the work, not its launch
    return time.perf_counter() - t, out


FLOOR_IMAGES: torch.Tensor | None = None  # real test images the floors run on (set by main)


def forwards(model, rows: int, max_batch: int | None = None, repeats: int = 2) -> float:
    """Seconds for ``rows`` forward passes alone (the real test images, repeated, in the chunks the
    metrics use: ``M.rows_per_forward``, or ``max_batch``); the fastest of ``repeats`` timings, so that
    the floor is not inflated by a noisy moment."""
    if max_batch is None:
        max_batch = M.rows_per_forward(model, FLOOR_IMAGES[:1])
    return min(_forwards_once(model, rows, max_batch) for _ in range(repeats))


def _forwards_once(model, rows: int, max_batch: int) -> float:
    x = FLOOR_IMAGES.repeat(max_batch // len(FLOOR_IMAGES) + 1, 1, 1, 1)[:min(rows, max_batch)]
    t = time.perf_counter()
    with torch.no_grad():
        done = 0
        while done < rows:
            k = min(max_batch, rows - done)
            model(x[:k]).softmax(1)
            done += k
    if torch.device(DEVICE).type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - t


def gradients(model, rows: int, max_batch: int = 256) -> float:
    """Seconds for ``rows`` input-gradient computations alone (the floor of max-sensitivity)."""
    x = FLOOR_IMAGES.repeat(max_batch // len(FLOOR_IMAGES) + 1, 1, 1, 1)[:min(rows, max_batch)]
    y = torch.zeros(len(x), dtype=torch.long, device=x.device)
    t = time.perf_counter()
    done = 0
    while done < rows:
        k = min(max_batch, rows - done)
        xi = x[:k].clone().requires_grad_(True)
        model(xi).gather(1, y[:k, None]).sum().backward()
        done += k
    if torch.device(DEVICE).type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - t


def road_imputations(x, a, max_batch: int = 512) -> float:
    """Seconds for ROAD's noisy linear imputations alone (Quantus's 50 percentages, MoRF order,
    chunked as ``M.road`` does): the part of ROAD that is not a forward pass."""
    ks = torch.tensor([int(784 * p / 100) for p in QUANTUS_PERCENTAGES], device=a.device)
    order = torch.sort(a.sum(1).flatten(1).double(), dim=1, descending=True, stable=True).indices
    ranks = torch.empty_like(order).scatter_(1, order, torch.arange(784, device=a.device).expand_as(order))
    group = max(1, max_batch // len(ks))
    t = time.perf_counter()
    for i0 in range(0, len(x), group):
        removed = (ranks[i0:i0 + group, None, :] < ks[None, :, None]).view(-1, 28, 28)
        xs = x[i0:i0 + group, None].expand(-1, len(ks), -1, -1, -1).reshape(-1, 1, 28, 28)
        noisy_linear_imputation(xs, removed)
    if torch.device(DEVICE).type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - t


def morf_loop(model, x, a) -> float:
    """The seed's MoRF: one image at a time, 20 percentiles."""
    ds = []
    with torch.no_grad():
        for i in range(len(x)):
            xi, ai = x[i:i + 1], a[i:i + 1].cpu().numpy()
            p0 = model(xi).softmax(1)[0]
            c = int(p0.argmax())
            row = []
            for p in M.SEED_PERCENTILES:
                xm = xi.clone()
                xm[torch.from_numpy(ai > np.percentile(ai[ai != 0], p)).to(xm.device)] = 0
                row.append(float(model(xm).softmax(1)[0, c] / p0.max()))
            ds.append(row)
    curve = 1 - np.mean(ds, 0)
    return float(np.trapezoid(curve, 1 - np.array(M.SEED_PERCENTILES) / 100))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="cpu", help="cpu (default), cuda, ...: ours and Quantus on the same device")
    ap.add_argument("--skip-quantus-road", action="store_true")
    ap.add_argument("--road-n", type=int, default=None, help="images for Quantus ROAD (extrapolated to --n)")
    ap.add_argument("--model", default="cnn3b", help="cnn3b (default) or cnn4b")
    ap.add_argument("--fixed-rows", type=int, default=None,
                    help="also time the forward-bound metrics with this fixed chunk (rows per forward)")
    ap.add_argument("--only", default=None, help="comma-separated row-name prefixes to run (default: all)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore")
    import quantus

    global DEVICE
    DEVICE = args.device
    model = trained_model(args.model).to(DEVICE)
    test = load_dataset("mnist", "test", limit=args.n)
    x, y = test.x.to(DEVICE), test.y.to(DEVICE)
    a = attribute(model, x, y)
    global FLOOR_IMAGES
    FLOOR_IMAGES = x
    xn, yn, an = x.cpu().numpy(), y.cpu().numpy(), a.cpu().numpy()
    n = len(x)
    rows = []
    wanted = [w.strip() for w in args.only.split(",")] if args.only else None

    def skip(name):
        return wanted is not None and not any(name.startswith(w) for w in wanted)

    def add(name, ours, q=None, loop=None, floor=None, q_scale=1.0):
        if ours is None:
            return
        t_ours, v_ours = ours
        t_q, v_q = (q if q is not None else (None, None))
        if t_q is not None:
            t_q *= q_scale
        rows.append((name, t_ours, t_q, loop[0] if loop else None, floor, v_ours, v_q, loop[1] if loop else None))

    fc = dict(nr_runs=100, subset_size=224)
    rp = dict(patch_size=8, regions_evaluation=16)

    def fixed(rows_: int):
        """Run a metric with a fixed chunk of ``rows_`` rows (the budget lifted, max_batch = rows_)."""
        def wrap(fn):
            def run():
                saved = dict(M.ACTIVATION_BUDGET)
                M.ACTIVATION_BUDGET.update({k: 1 << 60 for k in saved})
                try:
                    return fn(rows_)
                finally:
                    M.ACTIVATION_BUDGET.update(saved)
            return run
        return wrap

    ours_fc = lambda mb=M.MAX_BATCH: M.faithfulness_correlation(model, x, y, a, convention="quantus", max_batch=mb,  # noqa: E731
                                                               **fc).value
    ours_rp = lambda mb=M.MAX_BATCH: M.region_perturbation(model, x, y, a, convention="quantus", max_batch=mb,  # noqa: E731
                                                           **rp).value
    ours_pf = lambda mb=M.MAX_BATCH: M.pixel_flipping(model, x, y, a, features_in_step=28, convention="quantus",  # noqa: E731
                                                      max_batch=mb).value

    # MoRF, 20 steps: explainreg vs the seed's loop; Quantus has no exact MoRF (see region perturbation)
    if not skip("morf"):
        add("morf (20 steps)", timed(lambda: M.morf(model, x, y, a).value),
            loop=timed(lambda: morf_loop(model, x, a)), floor=forwards(model, n * 21))
    # Faithfulness correlation, 100 runs × 224 features
    if not skip("faithfulness_correlation"):
        add("faithfulness_correlation", timed(ours_fc),
            q=timed(lambda: float(np.nanmean(quantus.FaithfulnessCorrelation(
                disable_warnings=True, return_aggregate=False, **fc)(model, xn, yn, an.copy(), device=DEVICE,
                                                                     batch_size=256)))),
            floor=forwards(model, n * 101))
        if args.fixed_rows:
            add(f"faithfulness_correlation ({args.fixed_rows} rows)", timed(fixed(args.fixed_rows)(ours_fc)),
                q=(rows[-1][2], rows[-1][6]))
    # Region perturbation (Quantus's MoRF), 8×8 patches, all 16 regions
    if not skip("region_perturbation"):
        add("region_perturbation", timed(ours_rp),
            q=timed(lambda: float(np.mean([np.trapezoid(c) for c in quantus.RegionPerturbation(
                disable_warnings=True, **rp)(model, xn, yn, an.copy(), device=DEVICE, batch_size=256)]))),
            floor=forwards(model, n * 17))
        if args.fixed_rows:
            add(f"region_perturbation ({args.fixed_rows} rows)", timed(fixed(args.fixed_rows)(ours_rp)),
                q=(rows[-1][2], rows[-1][6]))
    # Pixel flipping, 28 features per step
    if not skip("pixel_flipping"):
        add("pixel_flipping (28 steps)", timed(ours_pf),
            q=timed(lambda: float(np.mean([np.trapezoid(c) for c in quantus.PixelFlipping(
                features_in_step=28, disable_warnings=True)(model, xn, yn, an.copy(), device=DEVICE,
                                                            batch_size=256)]))),
            floor=forwards(model, n * 28))
        if args.fixed_rows:
            add(f"pixel_flipping ({args.fixed_rows} rows)", timed(fixed(args.fixed_rows)(ours_pf)),
                q=(rows[-1][2], rows[-1][6]))
    # Complexity and sparseness (no model)
    if not skip("complexity"):
        add("complexity", timed(lambda: M.complexity(a, convention="quantus").value),
            q=timed(lambda: float(np.mean(quantus.Complexity(disable_warnings=True)(None, xn, None, an.copy())))))
    if not skip("sparseness"):
        add("sparseness", timed(lambda: M.sparseness(a, convention="quantus").value),
            q=timed(lambda: float(np.mean(quantus.Sparseness(disable_warnings=True)(None, xn, None, an.copy())))))

    # Max-sensitivity, 10 samples of U(−0.2, 0.2) noise, saliency
    def q_explain(model, inputs, targets, **kw):
        return attribute(model, torch.as_tensor(inputs, device=DEVICE), torch.as_tensor(targets, device=DEVICE)).cpu().numpy()

    if not skip("max_sensitivity"):
        add("max_sensitivity (10 samples)", timed(lambda: M.max_sensitivity(model, x, y, a, nr_samples=10).value),
            q=timed(lambda: float(np.mean(quantus.MaxSensitivity(nr_samples=10, disable_warnings=True)(
                model, xn, yn, an.copy(), explain_func=q_explain, device=DEVICE, batch_size=256)))),
            floor=gradients(model, n * 10))
    # ROAD, Quantus's 50 percentages (1, 3, ..., 99), MoRF
    scale = 1.0
    if not skip("road"):
        road_q = None
        if not args.skip_quantus_road:
            m = args.road_n or n
            road_q = timed(lambda: float(np.mean(list(quantus.ROAD(disable_warnings=True)(
                model, xn[:m], yn[:m], an[:m].copy(), device=DEVICE, batch_size=m).values()))))
            scale = n / m
        add("road (50 percentages)", timed(lambda: float(M.road(model, x, y, a, convention="quantus").curve.mean())),
            q=road_q, floor=forwards(model, n * 50), q_scale=scale)
        road_floor = rows[-1][4] + road_imputations(x, a)
        add("road ÷ (forwards + imputations)", (rows[-1][1], rows[-1][5]), floor=road_floor)
    # The seed's robustness tests
    if not skip("gaussian"):
        add("gaussian (4 sigmas)", timed(lambda: M.gaussian_noise(model, x, y).value), floor=forwards(model, n * 5))
    if not skip("blocks"):
        add("blocks (4 sizes)", timed(lambda: M.square_blocks(model, x, y).value), floor=forwards(model, n * 5))

    print(f"\n{n} MNIST test images, {args.model}, saliency, torch threads = {args.threads}, "
          f"rows per forward = {M.rows_per_forward(model, x[:1])} (activation budget "
          f"{M.ACTIVATION_BUDGET['cpu'] >> 20} MiB, {M.activation_bytes(model, x[:1]) / 1e6:.2f} MB per row)\n")
    head = ("| metric | explainreg s | Quantus s | per-image loop s | forwards s | ÷ floor | Quantus ÷ ours "
            "| loop ÷ ours | value ours | value Quantus/loop |")
    print(head)
    print("|" + "---|" * 10)
    fmt = lambda v, d=2: "–" if v is None else f"{v:.{d}f}"  # noqa: E731
    for name, t, tq, tl, tf, v, vq, vl in rows:
        other = vq if vq is not None else vl
        print(f"| {name} | {fmt(t)} | {fmt(tq)} | {fmt(tl)} | {fmt(tf)} | {fmt(t / tf if tf else None)} "
              f"| {fmt(tq / t if tq else None, 1)} | {fmt(tl / t if tl else None, 1)} | {v:.4f} | "
              f"{fmt(other, 4)} |")
    if scale != 1.0:
        print(f"(Quantus ROAD timed on {args.road_n} images and scaled ×{scale:g}; its value is on those images)")


if __name__ == "__main__":
    main()
