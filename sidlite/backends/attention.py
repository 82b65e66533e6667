"""The denoiser as scaled dot-product attention, through homogeneous coordinates.

With Q = [x, 1], K = [α·y, -½α²‖y‖²], V = y and scale 1/σ², softmax(scale·QKᵀ)·V is exactly the
closed-form denoiser: scale·Q·K_i = (2α·x·y_i - α²‖y_i‖²) / 2σ², the logits with ‖x‖² dropped.
``torch.nn.functional.scaled_dot_product_attention`` then never materializes the N×M matrix
(a fused kernel on the CPU, FlashAttention or the memory-efficient kernel on CUDA).

A dataset larger than ``dataset_chunk`` patches is attended block by block: each block's output and
log-sum-exp come from the same fused kernels, and the blocks merge by log-sum-exp, so no (N, D) copy of
an image-backed patch set is ever made.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ..errors import check
from .base import OnlineSoftmax, PatchBackend


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


def attention_with_lse(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, scale: float):
    """softmax(scale·q·kᵀ)·v and the log-sum-exp of every query's logits, from a fused kernel.

    (1, 1, M, E) inputs; returns (M, E) and (M,) float32. Falls back to explicit products where the
    device has no fused kernel that returns the log-sum-exp.
    """
    try:
        if q.is_cuda:
            out, lse = torch.ops.aten._scaled_dot_product_efficient_attention(
                q, k, v, None, True, 0.0, False, scale=scale)[:2]
        else:
            out, lse = torch.ops.aten._scaled_dot_product_flash_attention_for_cpu(q, k, v, 0.0, False, scale=scale)[:2]
        return out[0, 0], lse[0, 0, :q.shape[2]].float()
    except (RuntimeError, AttributeError, NotImplementedError):
        logits = (q[0, 0].float() @ k[0, 0].float().T) * scale
        lse = torch.logsumexp(logits, 1)
        return (torch.exp(logits - lse[:, None]) @ v[0, 0].float()).to(q.dtype), lse


#: Queries sent to one attention call: bounds the padded query and output copies (~180 MB at D = 675).
QUERY_CHUNK = 65536

class AttentionBackend(PatchBackend):
    """Exact denoiser via ``scaled_dot_product_attention``.

    ``dtype`` is the kernel's compute type: the dataset's (float32) by default on every device, so
    that CPU and GPU give the same image for a seed; ``'bfloat16'`` or ``'float16'`` are several times
    faster on GPUs but round the logits enough to change images (the paper's authors note the same).
    Queries are sent in chunks of :data:`QUERY_CHUNK` rows to bound the padded copies (the band the
    plan sizes from the memory budget is usually smaller); a dataset of at most ``dataset_chunk``
    patches is padded once and kept (:attr:`values`), a larger one is streamed.
    """

    name = "attention"

    def __init__(self, dataset, dtype: torch.dtype | str | None = None, dataset_chunk: int = 2 ** 18):
        super().__init__(dataset)
        self.dtype = compute_dtype(dtype, self.patches.dtype)
        check(isinstance(dataset_chunk, int) and dataset_chunk >= 1,
              f"dataset_chunk must be an integer >= 1, got {dataset_chunk}")
        self._options = {"dtype": dtype, "dataset_chunk": dataset_chunk}
        self.width = head_dim(self.dim, 64 if self.patches.device.type == "cuda" else 8)
        self.sq_norms = self.patches.sq_norms()
        self.block = min(self.num_patches, dataset_chunk)
        self.values = self._padded_set() if self.block == self.num_patches else None

    @classmethod
    def estimate(cls, num_patches, dim, num_queries, dtype=None, dataset_chunk: int = 2 ** 18, **_):
        itemsize = 2 if dtype in ("bfloat16", "float16", torch.bfloat16, torch.float16) else 4
        width = head_dim(dim, 64)
        streamed = num_patches > dataset_chunk
        # the padded values kept (or one padded block when streaming) and, during a call, their keys; per
        # query: the padded query and output rows, and the merge's running sums when streaming
        kept = 2 * min(num_patches, dataset_chunk) * width * itemsize
        return {"index_bytes": kept + 4 * num_patches,
                "bytes_per_query": 2 * width * itemsize + (4 * (dim + 2) if streamed else 0),
                "flops": 4.0 * num_queries * num_patches * width}

    def _padded_set(self) -> torch.Tensor:
        """The whole set padded to the head width, filled block by block (16 MB): no joined (N, D) copy
        beside the padded one, which held about twice the index's memory while it was built."""
        values = torch.zeros(self.num_patches, self.width, dtype=self.dtype, device=self.patches.device)
        for start, block in self.patches.chunks(max(1, 2 ** 22 // self.dim)):
            values[start:start + block.shape[0], :self.dim] = block
        return values

    def _padded(self, patches: torch.Tensor) -> torch.Tensor:
        values = torch.zeros(patches.shape[0], self.width, dtype=self.dtype, device=patches.device)
        values[:, :self.dim] = patches
        return values

    def keys(self, alpha: float, values: torch.Tensor | None = None, sq_norms: torch.Tensor | None = None) -> torch.Tensor:
        """K = [α·y, -½α²‖y‖²]: a new tensor, never the shared value buffer scaled in place."""
        values = self.values if values is None else values
        sq_norms = self.sq_norms if sq_norms is None else sq_norms
        keys = values * alpha
        keys[:, -1] = (-0.5 * alpha ** 2 * sq_norms).to(self.dtype)
        return keys

    def _padded_queries(self, x: torch.Tensor) -> torch.Tensor:
        q = torch.zeros(x.shape[0], self.width, dtype=self.dtype, device=x.device)
        q[:, :self.dim] = x
        q[:, -1] = 1.0
        return q[None, None]

    @torch.no_grad()
    def _denoise(self, queries, alpha, sigma):
        scale = 1.0 / sigma ** 2
        if self.values is not None:
            keys, values = self.keys(alpha)[None, None], self.values[None, None]
            out = torch.empty_like(queries)
            for start in range(0, queries.shape[0], QUERY_CHUNK):
                q = self._padded_queries(queries[start:start + QUERY_CHUNK])
                result = F.scaled_dot_product_attention(q, keys, values, scale=scale)
                out[start:start + QUERY_CHUNK] = result[0, 0, :, :self.dim].to(out.dtype)
            return out
        merged = OnlineSoftmax(queries.shape[0], self.dim, queries)
        for offset, block in self.patches.chunks(self.block):
            values = self._padded(block)
            keys = self.keys(alpha, values, self.sq_norms[offset:offset + block.shape[0]])[None, None]
            for start in range(0, queries.shape[0], QUERY_CHUNK):
                q = self._padded_queries(queries[start:start + QUERY_CHUNK])
                out, lse = attention_with_lse(q, keys, values[None, None], scale)
                # the block's (max, sum) pair as (lse, 1): exp(lse) = Σ exp(logits)
                merged.add(start, lse.to(queries.dtype), torch.ones_like(lse, dtype=queries.dtype),
                           out[:, :self.dim].to(queries.dtype))
        return merged.result()
