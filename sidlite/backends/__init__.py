"""Patch-denoiser backends behind one interface, and the factory that picks one by name."""
from __future__ import annotations

import torch

from ..errors import SidliteError
from .attention import AttentionBackend
from .base import PatchBackend
from .exact import ExactBackend
from .naive import NaiveBackend, naive_denoise

BACKENDS: dict[str, type[PatchBackend]] = {
    "naive": NaiveBackend,
    "exact": ExactBackend,
    "attention": AttentionBackend,
}


def make_backend(name: str, dataset: torch.Tensor, **options) -> PatchBackend:
    """Build the backend called ``name`` over an (N, D) patch dataset."""
    if name not in BACKENDS:
        raise SidliteError(f"unknown backend {name!r}; choose one of: {', '.join(BACKENDS)}")
    return BACKENDS[name](dataset, **options)


__all__ = ["BACKENDS", "PatchBackend", "NaiveBackend", "ExactBackend", "AttentionBackend",
           "make_backend", "naive_denoise"]
