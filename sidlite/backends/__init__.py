"""Patch-denoiser backends behind one interface, and the factory that picks one by name."""
from __future__ import annotations

import torch

from ..errors import SidliteError
from .attention import AttentionBackend
from .base import PatchBackend
from .clustered import ClusteredBackend, TopKBackend
from .exact import ExactBackend
from .faiss_backend import FaissBackend
from .naive import NaiveBackend, naive_denoise

BACKENDS: dict[str, type[PatchBackend]] = {
    "naive": NaiveBackend,
    "exact": ExactBackend,
    "attention": AttentionBackend,
    "clustered": ClusteredBackend,
    "topk": TopKBackend,
    "faiss": FaissBackend,
}


# Dataset sizes (patches) above which 'auto' switches from exact attention to the clustered backend.
# CPU: measured on the 2-core development CPU (P = 15, D = 675, one scale of 9 denoising steps,
# the k-means build included): clustered first wins between N ≈ 2.5k and 5.8k patches, and is
# 4-6× faster from 13k on. The crossover hardly moves with D, since both costs are linear in D
# (N·M·D against √N·M·D). CUDA: the paper's gigapixel preset, 250k patches.
AUTO_CLUSTERED_THRESHOLD = {"cpu": 4_000, "cuda": 250_000}


def choose_backend(num_patches: int, dim: int, device: torch.device) -> str:
    """The backend 'auto' picks for a dataset of ``num_patches`` patches of length ``dim`` on ``device``.

    Exact attention for small datasets, where it is fast and has no build cost; the clustered backend
    (exact softmax over the probed lists) above :data:`AUTO_CLUSTERED_THRESHOLD`.
    """
    threshold = AUTO_CLUSTERED_THRESHOLD.get(torch.device(device).type, AUTO_CLUSTERED_THRESHOLD["cpu"])
    return "clustered" if num_patches > threshold else "attention"


def make_backend(name: str, dataset: torch.Tensor, **options) -> PatchBackend:
    """Build the backend called ``name`` (or 'auto') over an (N, D) patch dataset."""
    if name == "auto":
        name = choose_backend(dataset.shape[0], dataset.shape[1], dataset.device)
    if name not in BACKENDS:
        raise SidliteError(f"unknown backend {name!r}; choose auto or one of: {', '.join(BACKENDS)}")
    return BACKENDS[name](dataset, **options)


__all__ = ["AUTO_CLUSTERED_THRESHOLD", "BACKENDS", "PatchBackend", "NaiveBackend", "ExactBackend", "AttentionBackend", "ClusteredBackend", "TopKBackend",
           "FaissBackend",
           "choose_backend", "make_backend", "naive_denoise"]
