"""The backend interface: a patch dataset in, posterior means out. Backends know nothing about images."""
from __future__ import annotations

import math
from abc import ABC, abstractmethod

import torch

from ..errors import check


class PatchBackend(ABC):
    """Closed-form MMSE denoiser of a finite dataset y_1..y_N ∈ R^D under x = α·y + σ·ε.

    ``denoise(x, α, σ) = Σ_i softmax_i(-‖x - α·y_i‖² / 2σ²) · y_i`` for every row x of the queries.
    Subclasses implement :meth:`_denoise` for α > 0; α = 0 (all weights equal) returns the dataset mean
    here, without any search.
    """

    name: str = "base"
    exact: bool = True

    def __init__(self, dataset: torch.Tensor):
        check(isinstance(dataset, torch.Tensor) and dataset.dim() == 2 and dataset.shape[0] >= 1,
              f"a backend needs an (N, D) tensor of patches with N >= 1, got {getattr(dataset, 'shape', type(dataset))}")
        check(bool(torch.isfinite(dataset).all()), "the patch dataset contains NaN or infinite values")
        self.dataset = dataset.contiguous()  # row-major, whatever view the caller passed
        self.mean = dataset.double().mean(0).to(dataset.dtype)

    @property
    def num_patches(self) -> int:
        return self.dataset.shape[0]

    @property
    def dim(self) -> int:
        return self.dataset.shape[1]

    def denoise(self, queries: torch.Tensor, alpha: float, sigma: float) -> torch.Tensor:
        """Posterior mean E[y | x] for each row of ``queries`` (M, D); returns (M, D)."""
        check(queries.dim() == 2 and queries.shape[1] == self.dim,
              f"queries must be (M, {self.dim}), got {tuple(queries.shape)}")
        alpha, sigma = float(alpha), float(sigma)
        check(alpha >= 0 and math.isfinite(alpha), f"alpha must be a finite number >= 0, got {alpha}")
        check(sigma > 0 and math.isfinite(sigma), f"sigma must be a finite number > 0, got {sigma}")
        if alpha == 0.0:
            return self.mean.to(queries.device, queries.dtype).expand(queries.shape[0], -1).clone()
        return self._denoise(queries, alpha, sigma)

    @abstractmethod
    def _denoise(self, queries: torch.Tensor, alpha: float, sigma: float) -> torch.Tensor:
        """The α > 0 case."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}(N={self.num_patches}, D={self.dim})"
