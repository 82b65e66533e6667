"""The NumPy reference against the attention backend at a size the reference finishes in ~10 s."""
from __future__ import annotations

import time

import numpy as np
import torch

from sidlite.backends import make_backend, naive_denoise

from ..common import best_time


def run(context, target_seconds=10.0):
    device, results = context.device, context.results
    dim = 147
    n = 2048
    g = np.random.default_rng(0)
    alpha, sigma = 0.3, 0.9  # a broad posterior, so the comparison is not a trivial nearest-neighbour copy
    while True:  # grow N until the reference takes about the target time
        y = g.uniform(-1, 1, (n, dim)).astype(np.float32)
        x = (alpha * y[g.permutation(n)] + sigma * g.standard_normal((n, dim))).astype(np.float32)
        start = time.perf_counter()
        expected = naive_denoise(x, y, alpha, sigma)
        seconds = time.perf_counter() - start
        if seconds > target_seconds / 4 or n >= 65536:
            break
        n *= 2
    yt, xt = torch.from_numpy(y).to(device), torch.from_numpy(x).to(device)
    attention = make_backend("attention", yt)
    attention_s = best_time(lambda: attention.denoise(xt, alpha, sigma), device)
    out = attention.denoise(xt, alpha, sigma).cpu().numpy()
    error = float(np.abs(out - expected).max())
    results["naive"] = {"n": n, "d": dim, "naive_s": seconds, "attention_s": attention_s,
                        "speedup": seconds / attention_s, "max_abs_difference": error}
    print(f"  N = M = {n}, D = {dim}: naive {seconds:.2f} s, attention {attention_s:.3f} s "
          f"({seconds / attention_s:.0f}x), max |difference| {error:.1e}")


def markdown(results) -> list[str]:
    lines = []
    if "naive" in results:
        n = results["naive"]
        lines += ["## Naive NumPy against attention", "",
                  f"N = M = {n['n']}, D = {n['d']}: naive {n['naive_s']:.2f} s, attention {n['attention_s']:.3f} s, "
                  f"speed-up {n['speedup']:.0f}×, max |difference| {n['max_abs_difference']:.1e}", ""]
    return lines
