"""Unconditional generation in the paper's Table-1 setting (P = 15, 4 levels, T = 10, η = 0) on
../shared/data/sinddm15: seconds per sample, patch SWD, diversity, copy fraction, per backend, and each
as a ratio to exact attention when that runs too (by default on a GPU; on a CPU one timed step per
level stands in for its time)."""
from __future__ import annotations

import time

import numpy as np
import torch

import sidlite

from ..common import best_time, sync


def exact_seconds_per_sample(model, steps, device):
    """One exact attention step per level, timed at a mid noise level and multiplied by the steps: the
    cost of an exact sample without spending minutes on one (the step cost does not depend on σ)."""
    total = 0.0
    for level in model.levels:
        denoiser = sidlite.ImageDenoiser(level, model.patch_size, "attention")
        x = level + 0.5 * torch.randn_like(level)
        total += steps * best_time(lambda: denoiser(x, 0.5, 0.5), device, repeats=1, warmup=0)
    return total


QUALITY = ("patch_swd", "pixel_diversity", "copy_fraction")


def draw(model, samples, batch, device):
    """The Table-1 samples of seeds 10, 11, …, ``batch`` at a time through every step (the last batch
    may be smaller), and each sample's seconds: its batch's wall time shared among the batch."""
    outs, times = [], []
    for first in range(0, samples, batch):
        size = min(batch, samples - first)
        sync(device)
        start = time.perf_counter()
        images = model.sample(seed=10 + first, steps=10, eta=0.0, progress=False, batch=size).image
        sync(device)
        seconds = time.perf_counter() - start
        outs += list(images) if size > 1 else [images]
        times += [seconds / size] * size
    return outs, times


def compare_with_exact(rows, exact_spec="attention"):
    """Each backend's mean seconds and quality as ratios to the exact backend's, when it ran in this run."""
    exact = rows.get(exact_spec)
    if not exact:
        return
    for spec, row in rows.items():
        if spec in (exact_spec, "exact_estimate"):
            continue
        s, e = row["summary"], exact["summary"]
        s["speedup_over_exact"] = e["seconds_per_sample"] / s["seconds_per_sample"]
        for key in QUALITY:
            if key in s and key in e:
                s[key + "_relative_to_exact"] = s[key] / e[key] - 1


def run(context):
    device, results, save = context.device, context.results, context.save
    options = context.options
    backends = options.backends.split(";") if options.backends else \
        (["attention"] if device.type == "cuda" else []) + ["clustered:nprobe=1", "clustered:nprobe=2", "topk"]
    images, samples, data, copy_samples = options.images, options.samples, options.data, options.copy_samples
    folder = data / "sinddm15"
    if not folder.is_dir():
        print(f"  skipped: {folder} not found")
        results["table1"] = {"skipped": f"{folder} not found"}
        return
    files = sorted(folder.glob("*.png"))[:images] if images else sorted(folder.glob("*.png"))
    rows = {}
    first = sidlite.SingleImageModel(sidlite.load_image(files[0]).to(device), patch_size=15, num_levels=4,
                                     min_short_side=None, backend="naive", device=device)
    exact = exact_seconds_per_sample(first, 10, device)
    rows["exact_estimate"] = {"image": files[0].stem, "seconds_per_sample": exact}
    results["table1_settings"] = {"images": len(files), "samples": samples, "copy_samples": min(copy_samples, samples),
                                  "batch": options.batch}
    print(f"  exact attention, {files[0].stem}: {exact:.1f} s per sample (one timed step per level × 10)")
    for spec in backends:
        per_image = []
        for path in files:
            image = sidlite.load_image(path).to(device)
            start = time.perf_counter()
            model = sidlite.SingleImageModel(image, patch_size=15, num_levels=4, min_short_side=None,
                                             backend=spec, device=device)
            build = time.perf_counter() - start
            outs, times = draw(model, samples, options.batch, device)
            # the copy search is O(N²) itself (16 s a sample on the 2-core CPU): the first copy_samples only
            copied = float(np.mean([sidlite.copy_fraction(o, image) for o in outs[:copy_samples]]))
            reference = image.cpu()
            outs = [o.cpu() for o in outs]
            row = {"image": path.stem, "size": list(image.shape[1:]), "build_s": build,
                   "seconds_per_sample": sum(times) / len(times),
                   "patch_swd": float(np.mean([sidlite.patch_swd(o, reference) for o in outs])),
                   "copy_fraction": copied}
            if len(outs) > 1:
                row["pixel_diversity"] = sidlite.pixel_diversity(torch.stack(outs), reference)
            per_image.append(row)
            print(f"  {spec:>20} {path.stem:>16}: {row['seconds_per_sample']:.2f} s/sample, "
                  f"SWD {row['patch_swd']:.4f}, copy {row['copy_fraction']:.2f}"
                  + (f", diversity {row['pixel_diversity']:.3f}" if "pixel_diversity" in row else ""))
        summary = {key: float(np.mean([r[key] for r in per_image if key in r]))
                   for key in ("seconds_per_sample", "build_s", "patch_swd", "copy_fraction", "pixel_diversity")
                   if any(key in r for r in per_image)}
        same_image = per_image[0]["seconds_per_sample"]
        summary["speedup_over_exact_on_first_image"] = exact / same_image
        rows[spec] = {"summary": summary, "images": per_image}
        compare_with_exact(rows)
        results["table1"] = rows
        save()  # a long run keeps what it measured so far


def markdown(results) -> list[str]:
    lines = []
    t = results.get("table1")
    if t and "skipped" not in t:
        settings = results.get("table1_settings", {})
        lines += ["## Table-1 setting on sinddm15 (P = 15, 4 levels, T = 10, η = 0)", "",
                  f"{settings.get('samples', '?')} samples per image (seeds 10, 11, …), {settings.get('batch', 1)} "
                  f"through each step together; patch SWD averaged over them, copy fraction over the first "
                  f"{settings.get('copy_samples', 1)}.", "",
                  "| backend | images | s / sample | build s | patch SWD | pixel diversity | copy fraction |",
                  "|---|---|---|---|---|---|---|"]
        exact = t.get("exact_estimate")
        specs = [b for b in t if b != "exact_estimate"]
        for backend in specs:
            s = t[backend]["summary"]
            lines.append(f"| {backend} | {len(t[backend]['images'])} | {s['seconds_per_sample']:.2f} | {s['build_s']:.2f} | "
                         f"{s['patch_swd']:.4f} | {s.get('pixel_diversity', float('nan')):.3f} | {s['copy_fraction']:.3f} |")
        compared = [b for b in specs if "speedup_over_exact" in t[b]["summary"]]
        if compared:
            lines += ["", "Against exact attention in this run (quality as the relative difference; the target is within ±10 %):",
                      "", "| backend | speed-up | patch SWD | pixel diversity | copy fraction |", "|---|---|---|---|---|"]
            for backend in compared:
                s = t[backend]["summary"]
                lines.append(f"| {backend} | {s['speedup_over_exact']:.1f}× | " + " | ".join(
                    f"{s[key + '_relative_to_exact']:+.1%}" if key + "_relative_to_exact" in s else "–"
                    for key in QUALITY) + " |")
        if exact:
            lines += ["", f"Exact attention on {exact['image']}: {exact['seconds_per_sample']:.1f} s per sample "
                      "(one timed step per level × 10). Speed-up on that image: " +
                      ", ".join(f"{b} {t[b]['summary']['speedup_over_exact_on_first_image']:.0f}×" for b in specs)]
        lines.append("")
    return lines
