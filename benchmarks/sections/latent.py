"""A 1024×1024 output in the weight-free latent, with the latent preset's backend and with exact attention."""
from __future__ import annotations

import time

import sidlite

from ..common import sync


def run(context):
    """A 1024×1024 output from the 512² astronaut in the weight-free PCA latent (128² cells, 16 channels):
    the paper's latent preset (P = 7, T = 20, η = 1, ρ = ∞) with its own backend ('auto', 8 lists probed
    where a level runs top-k) and with exact attention at every level (the quality reference), and a fast
    setting (T = 10, queries at stride 2)."""
    device, results = context.device, context.results
    image = sidlite.example_image("astronaut")
    preset_backend = str(sidlite.preset("generate", "latent").backend)
    settings = {"preset T=20": dict(steps=20),
                "preset T=20, exact": dict(steps=20, backend="attention"),
                "fast T=10, query_stride=2": dict(steps=10, query_stride=2)}
    rows = {}
    for label, options in settings.items():
        backend = options.get("backend", preset_backend)
        sync(device)
        start = time.perf_counter()
        out = sidlite.generate(image, size=(1024, 1024), latent="pca", device=device, progress=False, **options)
        sync(device)
        seconds = time.perf_counter() - start
        rows[label] = {"output": list(out.shape[2:]), "seconds": seconds, "backend": backend,
                       "patch_swd": sidlite.patch_swd(sidlite.resize(out[0].cpu(), (512, 512)), image)}
        print(f"  1024x1024 in the PCA latent, {label} ({backend}): {seconds:.2f} s")
    results["latent"] = rows


def markdown(results) -> list[str]:
    lines = []
    if results.get("latent"):
        lines += ["## 1024×1024 in the weight-free PCA latent (from the 512² astronaut)", "",
                  "| setting | seconds | patch SWD (at 512²) |", "|---|---|---|"]
        for label, row in results["latent"].items():
            lines.append(f"| {label}, {row['backend']} | {row['seconds']:.2f} | {row['patch_swd']:.4f} |")
        lines.append("")
    return lines
