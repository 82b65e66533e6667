"""Top-k ranked in an r-dimensional PCA projection: candidate recall against full-dimension top-k and
seconds per denoising call, per projection size r, at three noise levels. Then the probe through a bf16
shortlist (``sidlite.backends.shortlist``), where this CPU serves it: how often it probes the float32
probe's lists, and the probe's seconds both ways, on three Table-1 images at seven noise levels."""
from __future__ import annotations

import os
from unittest import mock

import sidlite
import torch

from sidlite.backends import TopKBackend, shortlist
from sidlite.patches import extract_patches
from sidlite.patchsets import ImagePatchSet
from sidlite.runtime import make_generator

from ..common import SHARED, best_time

RANKS = (16, 32, 64, 128)
NOISE = ((0.5, 0.866), (0.9, 0.436), (0.999, 0.045))  # (α, σ): early, middle and late steps
PROBE_IMAGES = ("aqueduct", "balloons", "seascape")
PROBE_SIGMAS = (0.99, 0.9, 0.7, 0.4, 0.2, 0.05, 0.01)


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
    results["shortlist_probe"] = run_shortlist_probe(device, data)


def run_shortlist_probe(device, data):
    """Per image: the least share, over :data:`PROBE_SIGMAS`, of queries whose two probed lists through the
    bf16 shortlist are the float32 probe's, and the probe's best seconds both ways at σ = 0.4."""
    rows = {}
    for name in PROBE_IMAGES:
        image = sidlite.load_image(data / "sinddm15" / f"{name}.png").to(device)
        clean = extract_patches(image, 15)
        backend = TopKBackend(ImagePatchSet(image, 15))
        if not shortlist.shortlist_serves(clean, backend.nlist, backend.nprobe):
            print("  bf16 shortlist probe: does not serve on this device (no bf16 hardware, no kernels or a GPU)")
            return {"skipped": "the bf16 shortlist does not serve on this device"}
        generator = make_generator(1, device)
        row = rows[name] = {"lists": backend.nlist, "agreement": {}, "seconds": {}}
        for sigma in PROBE_SIGMAS:
            alpha = (1 - sigma ** 2) ** 0.5
            x = alpha * clean + sigma * torch.randn(clean.shape, generator=generator, device=device)
            probed = {}
            for way, switch in (("float32", "0"), ("shortlist", "1")):
                with mock.patch.dict(os.environ, {"SIDLITE_BF16_PROBE": switch}):  # the user's setting comes back
                    probed[way] = backend.probe(x, alpha).sort(1).values
                    if sigma == 0.4:
                        row["seconds"][way] = best_time(lambda: backend.probe(x, alpha), device, 3)
            row["agreement"][str(sigma)] = float((probed["float32"] == probed["shortlist"]).all(1).float().mean())
        least = min(row["agreement"].values())
        print(f"  bf16 shortlist probe, {name} ({row['lists']} lists): the float32 lists for {least:.5f} of queries "
              f"at worst; {row['seconds']['float32'] * 1e3:.1f} → {row['seconds']['shortlist'] * 1e3:.1f} ms a probe",
              flush=True)
    return rows


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
    probe = results.get("shortlist_probe")
    if probe and "skipped" not in probe:
        lines += ["", "## The probe through a bf16 shortlist (finest Table-1 level, P = 15, d = 675)", "",
                  "Share of queries whose two probed lists are the float32 probe's, least over σ = "
                  + ", ".join(str(s) for s in PROBE_SIGMAS) + "; a probe's seconds at σ = 0.4.", "",
                  "| image | lists | agreement (least) | float32 probe s | shortlist probe s |", "|---|---|---|---|---|"]
        for name, row in probe.items():
            lines.append(f"| {name} | {row['lists']} | {min(row['agreement'].values()):.5f} | "
                         f"{row['seconds']['float32']:.4f} | {row['seconds']['shortlist']:.4f} |")
    return lines + [""]
