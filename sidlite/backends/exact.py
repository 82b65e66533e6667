"""Exact denoiser as chunked matrix products and a softmax, with the score matrix bounded in memory."""
from __future__ import annotations

import torch

from .base import PatchBackend


class ExactBackend(PatchBackend):
    """Logits (2α·x·y - α²‖y‖²) / 2σ² (‖x‖² cancels in the softmax), softmax over N, times Y.

    Queries are processed in chunks so that a chunk's (M_c, N) score matrix has at most
    ``max_scores`` entries.
    """

    name = "exact"

    def __init__(self, dataset: torch.Tensor, max_scores: int = 2 ** 24):
        super().__init__(dataset)
        self.sq_norms = (dataset.double() ** 2).sum(1).to(dataset.dtype)
        self.chunk = max(1, max_scores // self.num_patches)

    @torch.no_grad()
    def _denoise(self, queries, alpha, sigma):
        y = self.dataset
        bias = (-(alpha ** 2) / (2 * sigma ** 2)) * self.sq_norms
        out = torch.empty_like(queries)
        for start in range(0, queries.shape[0], self.chunk):
            x = queries[start:start + self.chunk]
            logits = torch.addmm(bias, x, y.T, alpha=alpha / sigma ** 2)
            out[start:start + self.chunk] = torch.softmax(logits, dim=1) @ y
        return out
