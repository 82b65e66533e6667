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


def choose_backend(num_patches: int, dim: int, device: torch.device) -> str:
    """The backend 'auto' picks for a dataset of ``num_patches`` patches of length ``dim`` on ``device``."""
    return "attention"


def make_backend(name: str, dataset: torch.Tensor, **options) -> PatchBackend:
    """Build the backend called ``name`` (or 'auto') over an (N, D) patch dataset."""
    if name == "auto":
        name = choose_backend(dataset.shape[0], dataset.shape[1], dataset.device)
    if name not in BACKENDS:
        raise SidliteError(f"unknown backend {name!r}; choose auto or one of: {', '.join(BACKENDS)}")
    return BACKENDS[name](dataset, **options)


__all__ = ["BACKENDS", "PatchBackend", "NaiveBackend", "ExactBackend", "AttentionBackend",
           "choose_backend", "make_backend", "naive_denoise"]
