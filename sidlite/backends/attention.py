"""The denoiser as scaled dot-product attention, through homogeneous coordinates.

With Q = [x, 1], K = [α·y, -½α²‖y‖²], V = y and scale 1/σ², softmax(scale·QKᵀ)·V is exactly the
closed-form denoiser: scale·Q·K_i = (2α·x·y_i - α²‖y_i‖²) / 2σ², the logits with ‖x‖² dropped.
``torch.nn.functional.scaled_dot_product_attention`` then never materializes the N×M matrix
(a fused kernel on the CPU, FlashAttention or the memory-efficient kernel on CUDA).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ..errors import check
from .base import PatchBackend


def head_dim(dim: int, multiple: int = 8) -> int:
    """Feature length D + 1 (the homogeneous slot) rounded up to the kernels' preferred multiple."""
    return -(-(dim + 1) // multiple) * multiple


DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def compute_dtype(dtype: torch.dtype | str | None, default: torch.dtype) -> torch.dtype:
    """The kernel's compute type from a torch dtype, its name ('bfloat16', …) or None (the dataset's)."""
    if dtype is None:
        return default
    if isinstance(dtype, str):
        check(dtype in DTYPES, f"unknown dtype {dtype!r}; choose one of: {', '.join(DTYPES)}")
        return DTYPES[dtype]
    check(dtype in DTYPES.values(), f"the attention backend computes in {', '.join(DTYPES)}, not {dtype}")
    return dtype


class AttentionBackend(PatchBackend):
    """Exact denoiser via ``scaled_dot_product_attention``.

    ``dtype`` is the kernel's compute type: the dataset's (float32) by default on every device, so
    that CPU and GPU give the same image for a seed; ``'bfloat16'`` or ``'float16'`` are several times
    faster on GPUs but round the logits enough to change images (the paper's authors note the same).
    Queries are sent in chunks of ``query_chunk`` rows to bound the padded copies.
    """

    name = "attention"

    def __init__(self, dataset: torch.Tensor, dtype: torch.dtype | str | None = None, query_chunk: int = 65536):
        super().__init__(dataset)
        self.dtype = compute_dtype(dtype, dataset.dtype)
        check(isinstance(query_chunk, int) and query_chunk >= 1, f"query_chunk must be an integer >= 1, got {query_chunk}")
        self.width = head_dim(self.dim, 64 if dataset.is_cuda else 8)
        self.values = torch.zeros(self.num_patches, self.width, dtype=self.dtype, device=dataset.device)
        self.values[:, :self.dim] = dataset
        self.sq_norms = (dataset.float() ** 2).sum(1)
        self.query_chunk = query_chunk

    def keys(self, alpha: float) -> torch.Tensor:
        """K = [α·y, -½α²‖y‖²]: a new tensor, never the shared value buffer scaled in place."""
        keys = self.values * alpha
        keys[:, -1] = (-0.5 * alpha ** 2 * self.sq_norms).to(self.dtype)
        return keys

    @torch.no_grad()
    def _denoise(self, queries, alpha, sigma):
        keys = self.keys(alpha)[None, None]
        values = self.values[None, None]
        out = torch.empty_like(queries)
        for start in range(0, queries.shape[0], self.query_chunk):
            x = queries[start:start + self.query_chunk]
            q = torch.zeros(x.shape[0], self.width, dtype=self.dtype, device=x.device)
            q[:, :self.dim] = x
            q[:, -1] = 1.0
            result = F.scaled_dot_product_attention(q[None, None], keys, values, scale=1.0 / sigma ** 2)
            out[start:start + self.query_chunk] = result[0, 0, :, :self.dim].to(out.dtype)
        return out
