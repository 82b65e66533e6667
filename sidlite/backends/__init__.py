"""Patch-denoiser backends behind one interface, and the factory that picks one by name."""
from __future__ import annotations

import torch

from ..patchsets import PatchSet, as_patch_set
from .attention import AttentionBackend
from .base import PatchBackend
from .clustered import ClusteredBackend, TopKBackend
from .exact import ExactBackend
from .faiss_backend import FaissBackend
from .naive import NaiveBackend, naive_denoise
from .spec import BackendSpec, accepted_options

BACKENDS: dict[str, type[PatchBackend]] = {
    "naive": NaiveBackend,
    "exact": ExactBackend,
    "attention": AttentionBackend,
    "clustered": ClusteredBackend,
    "topk": TopKBackend,
    "faiss": FaissBackend,
}


# Dataset sizes (patches) above which 'auto' switches from exact attention to the paper's ANN (top-k).
# CPU, measured on the 2-core development CPU (P = 15, D = 675, 9 denoising steps with M = N queries,
# the index build included): top-k already beats attention at N ≈ 1.2k (0.12 s against 0.32 s) and is
# 9× faster at 5.7k (0.68 s against 6.2 s). Below 4k patches the exact denoiser costs at most ~2 s per
# level, so 'auto' keeps it exact there: those are the coarse levels, which set the layout. CUDA: the
# paper's gigapixel preset, 250k patches.
AUTO_ANN_THRESHOLD = {"cpu": 4_000, "cuda": 250_000}


def choose_backend(num_patches: int, dim: int, device: torch.device, num_queries: int | None = None) -> str:
    """The backend 'auto' picks for ``num_patches`` dataset patches of length ``dim`` on ``device``.

    Exact attention while a step's work, queries × patches (``num_queries`` defaults to
    ``num_patches``), is at most that of a square problem at :data:`AUTO_ANN_THRESHOLD` patches: it is
    fast there and has no build cost. Above, top-k over the probed k-means lists (k = 5, the paper's ANN),
    which keeps patch SWD, pixel diversity and copy fraction within about 10 % of exact on the paper's
    Table-1 setting (benchmarks/results); its nprobe = 2 is raised by the plan where a level's output
    outgrows its input (:func:`sidlite.plan.default_nprobe`).
    """
    threshold = AUTO_ANN_THRESHOLD.get(torch.device(device).type, AUTO_ANN_THRESHOLD["cpu"])
    work = num_patches * (num_queries or num_patches)
    return "topk" if work > threshold ** 2 else "attention"


def parse_backend(spec: str | BackendSpec, **options) -> BackendSpec:
    """A validated :class:`BackendSpec` from ``'topk:k=5,nprobe=4'``, a spec, and keyword options."""
    return BackendSpec.parse(spec, BACKENDS, **options)


def make_backend(spec: str | BackendSpec, dataset: PatchSet | torch.Tensor, num_queries: int | None = None,
                 **options) -> PatchBackend:
    """Build the backend of ``spec`` ('auto', 'topk', 'topk:nprobe=4', …) over a patch set or (N, D) tensor.

    With 'auto' the backend is chosen by :func:`choose_backend` for ``num_queries`` queries per call
    (default: as many as patches) and gets only the options it accepts.
    """
    spec = parse_backend(spec, **options)
    dataset = as_patch_set(dataset)
    name = spec.name
    if name == "auto":
        name = choose_backend(dataset.size, dataset.dim, dataset.device, num_queries)
    return BACKENDS[name](dataset, **spec.options_for(name, BACKENDS))


__all__ = ["AUTO_ANN_THRESHOLD", "BACKENDS", "BackendSpec", "accepted_options", "parse_backend", "PatchBackend", "NaiveBackend", "ExactBackend", "AttentionBackend", "ClusteredBackend", "TopKBackend",
           "FaissBackend",
           "choose_backend", "make_backend", "naive_denoise"]
