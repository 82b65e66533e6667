"""Exact denoiser as blocked matrix products and a softmax, with the score matrix bounded in memory."""
from __future__ import annotations

import torch

from ..errors import check
from .base import OnlineSoftmax, PatchBackend


class ExactBackend(PatchBackend):
    """Logits (2α·x·y - α²‖y‖²) / 2σ² (‖x‖² cancels in the softmax), softmax over N, times Y.

    The dataset is read in blocks of at most ``dataset_chunk`` patches (each block once per call), and
    queries in chunks so that a (queries, block) score matrix has at most ``max_scores`` entries.
    Blocks are merged by log-sum-exp, so the result is the one softmax over all N.
    """

    name = "exact"

    def __init__(self, dataset, max_scores: int = 2 ** 24, dataset_chunk: int = 2 ** 16):
        super().__init__(dataset)
        check(isinstance(max_scores, int) and max_scores >= 1, f"max_scores must be an integer >= 1, got {max_scores}")
        check(isinstance(dataset_chunk, int) and dataset_chunk >= 1,
              f"dataset_chunk must be an integer >= 1, got {dataset_chunk}")
        self._options = {"dataset_chunk": dataset_chunk}
        self.sq_norms = self.patches.sq_norms()
        self.block = min(self.num_patches, dataset_chunk)
        self.chunk = max(1, max_scores // self.block)

    @classmethod
    def estimate(cls, num_patches, dim, num_queries, dataset_chunk: int = 2 ** 16, **_):
        block = min(num_patches, dataset_chunk)
        # a score row against one block, and the merge's running sums when the dataset has several
        return {"index_bytes": 4 * num_patches + (block * dim * 4 if block < num_patches else 0),
                "bytes_per_query": 4 * (block + (2 * dim + 2 if block < num_patches else 0)),
                "flops": 4.0 * num_queries * num_patches * dim}

    @torch.no_grad()
    def _denoise(self, queries, alpha, sigma):
        coefficient = -(alpha ** 2) / (2 * sigma ** 2)
        if self.block == self.num_patches:  # one block: a plain softmax, nothing to merge
            y = self.patches.dense()
            bias = coefficient * self.sq_norms.to(y.dtype)
            out = torch.empty_like(queries)
            for start in range(0, queries.shape[0], self.chunk):
                logits = torch.addmm(bias, queries[start:start + self.chunk], y.T, alpha=alpha / sigma ** 2)
                out[start:start + self.chunk] = torch.softmax(logits, dim=1) @ y
            return out
        merged = OnlineSoftmax(queries.shape[0], self.dim, queries)
        for offset, y in self.patches.chunks(self.block):
            bias = coefficient * self.sq_norms[offset:offset + y.shape[0]].to(y.dtype)
            for start in range(0, queries.shape[0], self.chunk):
                logits = torch.addmm(bias, queries[start:start + self.chunk], y.T, alpha=alpha / sigma ** 2)
                best = logits.amax(1)
                weights = logits.sub_(best[:, None]).exp_()
                merged.add(start, best, weights.sum(1), weights @ y)
        return merged.result()
