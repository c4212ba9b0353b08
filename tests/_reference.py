"""Plainly written per-sample reference computations (loops, NumPy) to check the vectorised code against."""
from __future__ import annotations

import numpy as np
import torch


def per_sample_gradients(model, x, y, score="logit"):
    """g_b = ∂t_b/∂x_b computed one image at a time."""
    rows = []
    for b in range(len(x)):
        xb = x[b:b + 1].clone().requires_grad_(True)
        z = model(xb)[0]
        if score == "logit":
            t = z[y[b]]
        elif score == "log_prob":
            t = torch.log_softmax(z, 0)[y[b]]
        elif score == "nll":
            t = -torch.log_softmax(z, 0)[y[b]]
        else:
            t = torch.log_softmax(z, 0).sum()
        (g,) = torch.autograd.grad(t, xb)
        rows.append(g[0].numpy().astype(np.float64))
    return np.stack(rows)


def minmax(a):
    return (a - a.min()) / (a.max() - a.min() + 1e-12)


def smoothness(g, offset=1, seed_convention=False):
    B, C, H, W = g.shape
    if seed_convention:
        offset = 2
    vertical, v_count, horizontal, h_count = 0.0, 0, 0.0, 0
    for b in range(B):
        for c in range(C):
            for i in range(H):
                for j in range(W):
                    if i - offset >= 0 or seed_convention:
                        up = g[b, c, i - offset, j] if i - offset >= 0 else 0.0
                        vertical += abs(g[b, c, i, j] - up)
                        v_count += 1
                    if j - offset >= 0 or seed_convention:
                        left = g[b, c, i, j - offset] if j - offset >= 0 else 0.0
                        horizontal += abs(g[b, c, i, j] - left)
                        h_count += 1
    return vertical / v_count + horizontal / h_count


def locality(g, x, eps=0.01, mask=None):
    total, count = 0.0, 0
    for b in range(len(g)):
        g_hat = minmax(g[b])
        t = mask[b] if mask is not None else minmax(x[b].mean(0, keepdims=True))
        t = np.broadcast_to(t, g_hat.shape)
        total += -(t * np.log(g_hat + eps) + (1 - t) * np.log(1 - g_hat + eps)).sum()
        count += g_hat.size
    return total / count


def cosine(a, b):
    a, b = a.ravel(), b.ravel()
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def fidelity(model, x, g, threshold=0.1):
    cosines = []
    for b in range(len(x)):
        g_hat = minmax(g[b].sum(0, keepdims=True))
        xb = x[b].numpy().astype(np.float64)
        masked = torch.tensor(xb * (1 - g_hat), dtype=torch.float32)[None]
        with torch.no_grad():
            z = model(x[b:b + 1])[0].numpy()
            zm = model(masked)[0].numpy()
        cosines.append(abs(cosine(z, zm)))
    return max(0.0, float(np.mean(cosines)) - threshold)


def consistency(g, x, predicted, eps=1e-8):
    total = 0.0
    B = len(g)
    for i in range(B):
        for j in range(i + 1, B):
            if predicted[i] == predicted[j]:
                num = 1 - cosine(minmax(g[i]), minmax(g[j]))
                den = 1 - cosine(x[i].numpy().astype(np.float64), x[j].numpy().astype(np.float64))
                total += num / (den + eps)
    return total / B
