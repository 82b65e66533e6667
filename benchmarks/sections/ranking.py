"""Top-k ranked in an r-dimensional PCA projection: candidate recall against full-dimension top-k and
seconds per denoising call, per projection size r, at three noise levels."""
from __future__ import annotations

import sidlite
import torch

from sidlite.backends import TopKBackend
from sidlite.patches import extract_patches
from sidlite.patchsets import ImagePatchSet
from sidlite.runtime import make_generator

from ..common import SHARED, best_time

RANKS = (16, 32, 64, 128)
NOISE = ((0.5, 0.866), (0.9, 0.436), (0.999, 0.045))  # (α, σ): early, middle and late steps


def recall(found: torch.Tensor, reference: torch.Tensor) -> float:
    """Share of the reference's candidates (dataset rows, −1 = none) that ``found`` also returns."""
    hit = (found[:, :, None] == reference[:, None, :]).any(2) & (reference >= 0)
    return int(hit.sum()) / int((reference >= 0).sum())


def run(context):
    device, results = context.device, context.results
    data = getattr(context.options, "data", SHARED)
    image = sidlite.load_image(data / "sinddm15" / "aqueduct.png").to(device)
    patches = ImagePatchSet(image, 15)  # the finest Table-1 level: 43,676 patches, d = 675
    clean = extract_patches(image, 15)
    generator = make_generator(0, device)
    noisy = {sigma: alpha * clean + sigma * torch.randn(clean.shape, generator=generator, device=device)
             for alpha, sigma in NOISE}
    full = TopKBackend(patches)
    rows = {"full": {"seconds": {}, "recall": {}}}
    for alpha, sigma in NOISE:
        rows["full"]["seconds"][str(sigma)] = best_time(lambda: full.denoise(noisy[sigma], alpha, sigma), device, 2)
    for rank in RANKS:
        backend = TopKBackend(patches, rank_dim=rank)
        row = {"seconds": {}, "recall": {}}
        for alpha, sigma in NOISE:
            x = noisy[sigma]
            row["recall"][str(sigma)] = recall(backend.neighbours(x, alpha), full.neighbours(x, alpha))
            row["seconds"][str(sigma)] = best_time(lambda: backend.denoise(x, alpha, sigma), device, 2)
        rows[f"r={rank}"] = row
        print(f"  rank_dim {rank}: recall " + ", ".join(f"σ={s}: {v:.3f}" for s, v in row["recall"].items())
              + "; s/call " + ", ".join(f"{v:.3f}" for v in row["seconds"].values()), flush=True)
    results["ranking"] = {"image": "aqueduct", "patches": patches.size, "dim": patches.dim, "rows": rows}


def markdown(results) -> list[str]:
    r = results.get("ranking")
    if not r:
        return []
    sigmas = list(r["rows"]["full"]["seconds"])
    lines = [f"## Top-k ranked in a PCA projection (finest Table-1 level of {r['image']}: N = M = "
             f"{r['patches']:,}, d = {r['dim']})", "",
             "Recall: share of the full-dimension top-5 candidates the projection also finds (the winners are "
             "always weighted exactly).", "",
             "| ranking | " + " | ".join(f"recall σ={s}" for s in sigmas) + " | "
             + " | ".join(f"s / call σ={s}" for s in sigmas) + " |", "|---" * (2 * len(sigmas) + 1) + "|"]
    for name, row in r["rows"].items():
        recalls = [f"{row['recall'][s]:.3f}" if s in row["recall"] else "1" for s in sigmas]
        lines.append(f"| {name} | " + " | ".join(recalls) + " | "
                     + " | ".join(f"{row['seconds'][s]:.3f}" for s in sigmas) + " |")
    return lines + [""]
