"""The teaching reference: the closed-form denoiser written directly in NumPy, O(N·M) memory and time.

Every other backend is tested against this one. It computes in float64 so it can serve as ground truth.
"""
from __future__ import annotations

import numpy as np
import torch

from .base import PatchBackend


def naive_denoise(queries: np.ndarray, dataset: np.ndarray, alpha: float, sigma: float) -> np.ndarray:
    """Posterior mean of a finite dataset: Σ_i softmax_i(-‖x - α·y_i‖² / 2σ²) · y_i, in float64.

    ``queries`` is (M, D), ``dataset`` is (N, D). The squared distances are expanded as
    ‖x‖² - 2α·x·y + α²‖y‖² so the (M, N) matrix is the only large intermediate.
    """
    x = np.asarray(queries, dtype=np.float64)
    y = np.asarray(dataset, dtype=np.float64)
    sq_dist = (x * x).sum(1)[:, None] - 2 * alpha * x @ y.T + alpha ** 2 * (y * y).sum(1)[None, :]
    logits = -np.maximum(sq_dist, 0.0) / (2 * sigma ** 2)
    logits -= logits.max(axis=1, keepdims=True)
    weights = np.exp(logits)
    weights /= weights.sum(axis=1, keepdims=True)
    return weights @ y


class NaiveBackend(PatchBackend):
    """:func:`naive_denoise` behind the backend interface (torch in, torch out)."""

    name = "naive"

    @classmethod
    def estimate(cls, num_patches, dim, num_queries, **_):
        return {"index_bytes": 8 * num_patches * dim, "bytes_per_query": 8 * (3 * num_patches + 2 * dim),
                "flops": 4.0 * num_queries * num_patches * dim}

    def __init__(self, dataset):
        super().__init__(dataset)
        self._dataset_np = self.patches.dense().detach().cpu().double().numpy()

    def _denoise(self, queries, alpha, sigma):
        out = naive_denoise(queries.detach().cpu().double().numpy(), self._dataset_np, alpha, sigma)
        return torch.from_numpy(out).to(queries.device, queries.dtype)
