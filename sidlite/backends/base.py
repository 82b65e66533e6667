"""The backend interface: a patch set in, posterior means out. Backends know nothing about images."""
from __future__ import annotations

import math
from abc import ABC, abstractmethod

import torch

from ..errors import check
from ..patchsets import PatchSet, as_patch_set


class PatchBackend(ABC):
    """Closed-form MMSE denoiser of a finite dataset y_1..y_N ∈ R^D under x = α·y + σ·ε.

    ``denoise(x, α, σ) = Σ_i softmax_i(-‖x - α·y_i‖² / 2σ²) · y_i`` for every row x of the queries.
    The dataset is a :class:`~sidlite.patchsets.PatchSet` (an (N, D) tensor is wrapped in one).
    Subclasses implement :meth:`_denoise` for α > 0; α = 0 (all weights equal) returns the dataset mean
    here, without any search. :meth:`bytes_per_query` and :attr:`index_bytes` tell the per-level plan
    what a call and the backend's own state cost in memory.
    """

    name: str = "base"
    exact: bool = True

    def __init__(self, dataset: PatchSet | torch.Tensor):
        self.patches = as_patch_set(dataset)
        check(self.patches.size >= 1, "a backend needs a patch set with at least one patch")
        self.mean = self.patches.mean()

    @property
    def dataset(self) -> torch.Tensor:
        """The dataset as one (N, D) tensor (materialised for image-backed sets: for small sets and checks)."""
        return self.patches.dense()

    @property
    def num_patches(self) -> int:
        return self.patches.size

    @property
    def dim(self) -> int:
        return self.patches.dim

    @classmethod
    def estimate(cls, num_patches: int, dim: int, num_queries: int, **options) -> dict[str, float]:
        """What a backend over N patches of length D would cost, before building it: ``index_bytes``
        (held between calls), ``bytes_per_query`` (working memory of one query row in a call, beyond its
        input and output rows) and ``flops`` (per call with ``num_queries`` queries)."""
        return {"index_bytes": 0, "bytes_per_query": 4 * (num_patches + dim), "flops": 4.0 * num_queries * num_patches * dim}

    def _estimate(self) -> dict[str, float]:
        return self.estimate(self.num_patches, self.dim, 1, **getattr(self, "_options", {}))

    @property
    def index_bytes(self) -> int:
        """Memory the backend holds between calls (search structures, cached keys)."""
        return int(self._estimate()["index_bytes"])

    def bytes_per_query(self) -> int:
        """Working memory of one query row during :meth:`denoise`, beyond its input and output rows."""
        return int(self._estimate()["bytes_per_query"])

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
        return f"{type(self).__name__}(N={self.num_patches}, d={self.dim})"


class OnlineSoftmax:
    """Softmax-weighted sums over a dataset seen in blocks, merged by log-sum-exp.

    For each query keep the running maximum logit m, the sum s = Σ exp(ℓ − m) and the weighted sum
    a = Σ exp(ℓ − m)·y. A new block with its own (m', s', a') merges as m* = max(m, m'),
    s = s·e^{m−m*} + s'·e^{m'−m*} (the same for a): the result a/s equals one softmax over all blocks.
    """

    def __init__(self, rows: int, dim: int, like: torch.Tensor):
        self.best = like.new_full((rows,), -math.inf)
        self.total = like.new_zeros(rows)
        self.weighted = like.new_zeros(rows, dim)

    def add(self, start: int, best: torch.Tensor, total: torch.Tensor, weighted: torch.Tensor) -> None:
        """Merge a block's (max logit, Σ exp, Σ exp·y) into rows start … start + len − 1."""
        rows = slice(start, start + best.shape[0])
        new_best = torch.maximum(self.best[rows], best)
        old_factor, factor = torch.exp(self.best[rows] - new_best), torch.exp(best - new_best)
        self.total[rows] = self.total[rows] * old_factor + total * factor
        self.weighted[rows] = self.weighted[rows] * old_factor[:, None] + weighted * factor[:, None]
        self.best[rows] = new_best

    def result(self) -> torch.Tensor:
        return self.weighted / self.total[:, None]
