"""Seconds per denoising step against N for every backend, with fitted exponents; then top-k from
N = 15k to 1M real patches, with the share of the true nearest patches it finds and, the measure that
matters for samples, how far its output is from the exact denoiser's beside how far the true top 5's is."""
from __future__ import annotations

import time

import numpy as np
import torch

import sidlite
from sidlite.backends import BACKENDS, make_backend
from sidlite.patches import extract_patches

from ..common import best_time
from .ranking import recall

#: The large-N sweep: P = 7 patches of (h, w)-pixel crops of this photograph (1500×941, fur), the
#: queries those of the mirrored crop at α = 0.7, σ = 0.3.
LARGE_IMAGE = "analogy/style/furr2_fliped.jpeg"
LARGE_CROPS = ((128, 128), (256, 256), (512, 512), (1130, 935))
LARGE_SPECS = ("topk",)
RECALL_QUERIES = 2000


def exponent(sizes, seconds) -> float:
    """The slope of log seconds against log N: how a step's cost grows with the set."""
    return float(np.polyfit(np.log(sizes), np.log(seconds), 1)[0])


def nearest_five(queries, data, block=16384) -> torch.Tensor:
    """Rows (M, 5) of each query's 5 nearest rows of ``data``, exactly, merged over blocks of the set
    (the whole (M, N) distance matrix of a million patches would not fit)."""
    best, true = None, None
    for start in range(0, data.shape[0], block):
        near = torch.cdist(queries, data[start:start + block]).topk(5, dim=1, largest=False)
        values = near.values if best is None else torch.cat([best, near.values], 1)
        rows = near.indices + start if true is None else torch.cat([true, near.indices + start], 1)
        best, keep = values.topk(5, dim=1, largest=False)
        true = rows.gather(1, keep)
    return true


def distances(points, data, rows) -> torch.Tensor:
    """‖p − y‖² of each point to each of its (M, k) rows of ``data``."""
    return ((points[:, None, :] - data[rows]) ** 2).sum(2)


def top_k_estimate(x, data, rows, alpha, sigma) -> torch.Tensor:
    """The denoiser's output when the softmax runs over the given (M, k) rows only."""
    y = data[rows]
    logits = (alpha * torch.bmm(y, x[:, :, None])[..., 0] - alpha ** 2 / 2 * (y * y).sum(2)) / sigma ** 2
    return torch.bmm(torch.softmax(logits, 1)[:, None, :], y)[:, 0]


def relative_error(estimate, exact) -> float:
    """Mean over queries of ‖estimate − exact‖ / ‖exact‖."""
    return float(((estimate - exact).norm(dim=1) / exact.norm(dim=1)).mean())


def run_large(context):
    """Each spec of :data:`LARGE_SPECS` over N ≈ 15k, 62k, 256k and 1M real patches: build and step
    seconds, the exponent of the step over that range, and the top-5 recall on a few queries."""
    path = context.options.data / LARGE_IMAGE
    if not path.is_file():
        print(f"  large N skipped: {path} not found")
        return {"skipped": f"{path} not found"}
    image = sidlite.load_image(path).to(context.device)
    g = torch.Generator(device=context.device).manual_seed(0)
    rows = {}
    for spec in LARGE_SPECS:
        row = rows[spec] = {"n": [], "seconds": [], "build_seconds": [], "top5_recall": [], "distance_ratio": [],
                            "error_vs_exact": [], "true_top5_error_vs_exact": []}
        for h, w in LARGE_CROPS:
            crop = image[:, :h, :w]
            data = extract_patches(crop, 7, 1)
            noisy = 0.7 * crop.flip(2) + 0.3 * torch.randn(crop.shape, generator=g, device=crop.device)
            queries = extract_patches(noisy, 7, 1)
            start = time.perf_counter()
            backend = make_backend(spec, data)
            row["build_seconds"].append(time.perf_counter() - start)
            row["seconds"].append(best_time(lambda: backend.denoise(queries, 0.7, 0.3), context.device, repeats=2))
            picks = torch.randperm(queries.shape[0], generator=g, device=crop.device)[:RECALL_QUERIES]
            x = queries[picks]
            found = backend.neighbours(x, 0.7)  # nearest to x/α
            true = nearest_five(x / 0.7, data)
            row["top5_recall"].append(recall(found, true))
            row["distance_ratio"].append(float((distances(x / 0.7, data, found).sum(1)
                                                / distances(x / 0.7, data, true).sum(1)).mean()))
            exact = make_backend("exact", data).denoise(x, 0.7, 0.3)
            row["error_vs_exact"].append(relative_error(backend.denoise(x, 0.7, 0.3), exact))
            row["true_top5_error_vs_exact"].append(relative_error(top_k_estimate(x, data, true, 0.7, 0.3), exact))
            row["n"].append(data.shape[0])
            print(f"  {spec:>20} N={data.shape[0]:>7}: step {row['seconds'][-1]:.3f} s, build "
                  f"{row['build_seconds'][-1]:.1f} s, top-5 recall {row['top5_recall'][-1]:.3f}, distance ratio "
                  f"{row['distance_ratio'][-1]:.4f}, error vs exact {row['error_vs_exact'][-1]:.4f} (true top 5: "
                  f"{row['true_top5_error_vs_exact'][-1]:.4f})", flush=True)
            del backend, data, queries
        row["exponent"] = exponent(row["n"], row["seconds"])
        print(f"  {spec:>20}: exponent {row['exponent']:.2f}")
    return rows


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
        slope = exponent(sizes, times)
        rows[backend] = {"n": sizes, "seconds": times, "exponent": slope}
        print(f"  {backend:>10}: " + ", ".join(f"N={n}: {t * 1e3:.1f} ms" for n, t in zip(sizes, times))
              + f"  → exponent {slope:.2f}")
    results["scaling"] = rows
    context.save()
    results["scaling_large"] = run_large(context)


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
    large = results.get("scaling_large")
    if large and "skipped" not in large:
        sizes = next(iter(large.values()))["n"]
        lines += ["## Large N on real patches (P = 7, d = 147; crops of furr2, α = 0.7, σ = 0.3)", "",
                  "Seconds per step (build seconds); on "
                  f"{RECALL_QUERIES} queries, the share of the true 5 nearest patches found (recall), the summed "
                  "distance of the 5 found over that of the true 5 (ratio), and the mean relative distance of "
                  "the output from the exact denoiser's (error; in brackets that of a softmax over the true 5). "
                  "Exponent: fitted over the row.", "",
                  "| backend | " + " | ".join(f"N={n:,}" for n in sizes) + " | exponent |",
                  "|---" * (len(sizes) + 2) + "|"]
        for spec, row in large.items():
            cells = []
            for i, (s, b, r) in enumerate(zip(row["seconds"], row["build_seconds"], row["top5_recall"])):
                cells.append(f"{s:.3f} ({b:.1f}), recall {r:.2f}")
                if "error_vs_exact" in row:  # results stored before these were measured lack them
                    cells[-1] += (f", ratio {row['distance_ratio'][i]:.3f}, error {row['error_vs_exact'][i]:.3f}"
                                  f" ({row['true_top5_error_vs_exact'][i]:.3f})")
            lines.append(f"| {spec} | " + " | ".join(cells) + f" | {row['exponent']:.2f} |")
        lines.append("")
    return lines
