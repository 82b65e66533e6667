"""Bounded-memory generation at growing output sizes in the weight-free latent (the gigapixel issue).

Each size runs as its own ``sidlite generate --preset generate-gigapixel`` process, so its peak resident
memory (and on CUDA its peak GPU memory) is its own: outputs 1024² … 8192² on a CPU with
``--memory-budget 4GB``, 8192², 32768² and 14336 × 70080 on a GPU. Reported: seconds, peak memory against
the budget, the time exponent in output pixels, patch SWD / copy fraction of a 256² crop of each output
against the input, and the washed-out share of the whole output (``sidlite.flat_fraction``). On a CPU one
more run repeats :data:`PROBE_COMPARISON` with 2 lists probed (the paper's pixel setting) instead of the preset's 8.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import sidlite

from ..common import ROOT

CPU_SIZES = [(1024, 1024), (2048, 2048), (4096, 4096), (8192, 8192)]
CUDA_SIZES = [(8192, 8192), (32768, 32768), (14336, 70080)]
INPUT = "example:gravel"  # a 512² texture (0.26 MP): 64² cells in the weight-free latent
PRESET = "generate-gigapixel"  # the paper's gigapixel settings (P = 7, ρ = 0.2, T = 20, η = 1), 8 lists probed
PROBE_COMPARISON = ((4096, 4096), "auto:nprobe=2")  # a size and backend run again on a CPU, for the probe's effect

CHILD = """
import json, sys, time, torch
from sidlite.cli import main
start = time.perf_counter()
code = main(sys.argv[1:])
if torch.cuda.is_available():
    torch.cuda.synchronize()
peak_gpu = torch.cuda.max_memory_allocated() if torch.cuda.is_available() else 0
report = {"code": code, "seconds": time.perf_counter() - start, "peak_gpu_bytes": peak_gpu}
try:  # this program's own peak (Linux): VmHWM starts afresh at exec, unlike the rusage maximum
    hwm = next(line for line in open("/proc/self/status") if line.startswith("VmHWM"))
    report["peak_rss_bytes"] = int(hwm.split()[1]) * 1024
except (OSError, StopIteration):
    pass
print(json.dumps(report))
"""


def generate_once(size, device, budget, steps, out: Path, backend: str | None = None) -> dict:
    """One CLI run in a child process; its wall time, peak RSS and peak GPU memory.

    The peak RSS is the child's own VmHWM where Linux reports it. wait4's maximum is the fallback: it
    keeps the forked parent's resident size across exec, so after a large section it reads too high."""
    command = [sys.executable, "-c", CHILD, "generate", INPUT, "-o", str(out), "--latent", "pca",
               "--size", str(size[0]), str(size[1]), "--steps", str(steps), "--memory-budget", budget,
               "--device", device, "--preset", PRESET, "--quiet", "--overwrite"] + \
        (["--backend", backend] if backend else [])
    start = time.perf_counter()
    child = subprocess.Popen(command, stdout=subprocess.PIPE, cwd=ROOT)
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - start
    lines = child.stdout.read().decode().strip().splitlines()
    report = json.loads(lines[-1]) if lines and lines[-1].startswith("{") else {"code": status}
    return {"size": list(size), "wall_s": wall, "seconds": report.get("seconds", wall),
            "peak_rss_bytes": report.get("peak_rss_bytes", usage.ru_maxrss * 1024),
            "peak_gpu_bytes": report.get("peak_gpu_bytes", 0),
            "exit": report.get("code", status)}


def keep_preview(out: Path, keep: Path) -> None:
    """The output's preview (long side 2048) in ``keep``: the one saved beside a streamed output, or made here."""
    from PIL import Image

    preview = out.with_name(out.stem + "_preview.jpg")
    if preview.exists():
        (keep / preview.name).write_bytes(preview.read_bytes())
        return
    with Image.open(out) as image:
        image.thumbnail((2048, 2048))
        image.convert("RGB").save(keep / preview.name, quality=90)


def crop_quality(path: Path, reference, keep: Path | None = None) -> dict:
    """Patch SWD and copy fraction of the central 256² crop of an output against the input, and the
    washed-out share of the whole output; the 1:1 crop is saved into ``keep`` when given."""
    from PIL import Image

    Image.MAX_IMAGE_PIXELS = None  # our own output, in a benchmark process
    image = sidlite.load_image(path)
    h, w = image.shape[1:]
    top, left = max(0, h // 2 - 128), max(0, w // 2 - 128)
    crop = image[:, top:top + 256, left:left + 256]
    if keep is not None:
        sidlite.save_image(crop, keep / f"{path.stem}_crop256.png", overwrite=True)
    return {"patch_swd": sidlite.patch_swd(crop, reference), "copy_fraction": sidlite.copy_fraction(crop, reference),
            "flat_fraction": sidlite.flat_fraction(image, reference)}


def run(context):
    device, results, options = context.device, context.results, context.options
    sizes = CUDA_SIZES if device.type == "cuda" else CPU_SIZES
    runs = [(size, None) for size in sizes] + ([PROBE_COMPARISON] if device.type == "cpu" else [])
    budget = options.memory_budget or ("70GB" if device.type == "cuda" else "4GB")
    reference = sidlite.example_image(INPUT.split(":", 1)[1])
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for size, backend in runs:
            label = "" if backend is None else "_" + backend.replace(":", "_").replace("=", "")
            out = Path(folder) / f"scale_{size[0]}x{size[1]}{label}.png"
            row = generate_once(size, device.type, budget, options.scale_steps, out, backend)
            row.update(budget=budget, backend=backend or "preset")
            if row["exit"] == 0:
                keep = ROOT / "benchmarks" / "results" / "scale" if options.keep_previews else None
                if keep is not None:
                    keep.mkdir(parents=True, exist_ok=True)
                    keep_preview(out, keep)
                row.update(crop_quality(out, reference, keep))
            rows.append(row)
            print(f"  {size[0]}x{size[1]} ({row['backend']}): {row['seconds']:.1f} s, peak RSS "
                  f"{row['peak_rss_bytes'] / 2 ** 30:.2f} GB"
                  + (f", peak GPU {row['peak_gpu_bytes'] / 2 ** 30:.2f} GB" if row["peak_gpu_bytes"] else "")
                  + f" (budget {budget}), washed out {row.get('flat_fraction', float('nan')):.3f}, exit {row['exit']}",
                  flush=True)
            results["scale"] = {"steps": options.scale_steps, "input": INPUT, "preset": PRESET, "rows": rows}
            context.save()
    done = [r for r in rows if r["exit"] == 0 and r["backend"] == "preset"]
    if len(done) >= 2:
        pixels = [r["size"][0] * r["size"][1] for r in done]
        results["scale"]["time_exponent"] = float(np.polyfit(np.log(pixels), np.log([r["seconds"] for r in done]), 1)[0])


def markdown(results) -> list[str]:
    scale = results.get("scale")
    if not scale:
        return []
    lines = [f"## Output size against time and memory (weight-free latent, {scale['input']}, "
             f"{scale.get('preset', 'generate-latent')}, T = {scale['steps']})", "",
             "| output | megapixels | backend | seconds | peak RSS | peak GPU | budget | patch SWD (256² crop) | "
             "copy fraction | washed out (flat_fraction) |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    nan = float("nan")
    for r in scale["rows"]:
        h, w = r["size"]
        lines.append(f"| {h}×{w} | {h * w / 1e6:,.0f} | {r.get('backend', 'preset')} | {r['seconds']:.1f} | "
                     f"{r['peak_rss_bytes'] / 2 ** 30:.2f} GB | "
                     + (f"{r['peak_gpu_bytes'] / 2 ** 30:.2f} GB" if r["peak_gpu_bytes"] else "–")
                     + f" | {r['budget']} | {r.get('patch_swd', nan):.4f} | {r.get('copy_fraction', nan):.3f} | "
                     f"{r.get('flat_fraction', nan):.3f} |")
    if "time_exponent" in scale:
        lines += ["", f"Time exponent in output pixels (the preset's runs): {scale['time_exponent']:.2f}."]
    return lines + [""]
