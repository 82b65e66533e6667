"""Seconds per denoising step against N for every backend, with fitted exponents."""
from __future__ import annotations

import numpy as np
import torch

from sidlite.backends import BACKENDS, make_backend

from ..common import best_time


def run(context, dim=147):
    device, results = context.device, context.results
    backends = [b for b in BACKENDS if b not in ("naive", "faiss")]
    sizes = [1024, 2048, 4096, 8192, 16384] + ([32768, 65536] if device.type == "cuda" else [])
    g = torch.Generator(device=device).manual_seed(0)
    rows = {}
    for backend in backends:
        times = []
        for n in sizes:
            y = torch.rand(n, dim, generator=g, device=device) * 2 - 1
            x = 0.9 * y[torch.randperm(n, generator=g, device=device)] + 0.1 * torch.randn(n, dim, generator=g, device=device)
            model = make_backend(backend, y)
            times.append(best_time(lambda: model.denoise(x, 0.9, 0.1), device, repeats=2))
        slope = float(np.polyfit(np.log(sizes), np.log(times), 1)[0])
        rows[backend] = {"n": sizes, "seconds": times, "exponent": slope}
        print(f"  {backend:>10}: " + ", ".join(f"N={n}: {t * 1e3:.1f} ms" for n, t in zip(sizes, times))
              + f"  → exponent {slope:.2f}")
    results["scaling"] = rows


def markdown(results) -> list[str]:
    lines = []
    sc = results.get("scaling")
    if sc:
        lines += ["## Seconds per denoising step against N (d = 147)", "", "| backend | " +
                  " | ".join(f"N={n}" for n in next(iter(sc.values()))["n"]) + " | exponent |",
                  "|---" * (len(next(iter(sc.values()))["n"]) + 2) + "|"]
        for backend, row in sc.items():
            lines.append(f"| {backend} | " + " | ".join(f"{s:.4f}" for s in row["seconds"]) + f" | {row['exponent']:.2f} |")
        lines.append("")
    return lines
