"""The probe's nearest centroids from bf16 products, re-ranked exactly, on CPUs that multiply bf16 in hardware.

Ranking all L centroids for every query is one (M × D)·(D × L) matrix product per call, the largest cost
of a Table-1 sample after the list scan. Where the CPU multiplies bf16 in hardware (Intel's AMX matrix
units, or the AVX-512 BF16 dot products of AMD Zen 4 and Intel Cooper Lake), oneDNN makes that product
from bf16-rounded inputs with float32 sums about twice as fast as the float32 product (D = 675, L = 255:
21 against 55 ms with AMX; 46 against 91 ms on a Zen 4 EPYC). Rounding moves a score by up to about
2⁻⁷·‖x‖‖c‖, enough to swap lists whose distances nearly tie, so the ``count`` + :data:`SHORTLIST_EXTRA`
best lists by the rounded scores are scored again in float32 (a compiled kernel: R·D multiply-adds a
query, with the centroids in cache) and the ``count`` best of those kept. On the finest Table-1 level of
three images at σ from 0.01 to 0.99 this kept the float32 probe's two lists for at least 99.988 % of
queries (the others, checked on balloons, took a second list at most 0.02 % farther: near-ties), in
34–36 against 48–55 ms a probe with AMX, 50–52 against 81–97 ms on the Zen 4
(``benchmarks/sections/ranking.py``). Elsewhere (no bf16 hardware, no compiled kernels, a GPU, fewer
than :data:`MIN_DIM` dimensions, ``SIDLITE_BF16_PROBE=0``) the probe stays float32.
"""
from __future__ import annotations

import os
from contextlib import contextmanager
from functools import lru_cache

import torch

from .. import native
from ..errors import check
from .selection import top_k_rows

SHORTLIST_EXTRA = 4  # lists kept beyond the count asked for, by the bf16 scores, and scored again exactly
MIN_DIM = 256  # below, the float32 product costs about as much as rounding and re-ranking (45k points, 260 lists,
#                float32 against shortlist: AMX 14.5 / 16.6 ms at D = 147, 20.4 / 18.3 at D = 243, 49 / 36 at
#                D = 675; Zen 4 23.8 / 21.0 at D = 147, 36.9 / 27.2 at D = 243, 81 / 50 at D = 675)


@lru_cache(maxsize=1)
def bf16_hardware() -> bool:
    """Whether this CPU multiplies bf16 in hardware (AMX tiles or AVX-512 BF16 dot products) and torch can be
    told to use it for float32 products (asked once: neither changes while the process runs)."""
    asks = [getattr(torch.cpu, name, lambda: False) for name in ("_is_amx_tile_supported", "_is_avx512_bf16_supported")]
    precision = getattr(getattr(torch.backends.mkldnn, "matmul", None), "fp32_precision", None)
    return precision is not None and any(bool(ask()) for ask in asks)


def shortlist_serves(points: torch.Tensor, num_centroids: int, count: int) -> bool:
    """Whether :func:`nearest_by_shortlist` is the faster way to the ``count`` nearest of ``num_centroids``
    centroids for these points: float32 on a CPU with bf16 hardware (:func:`bf16_hardware`) and the compiled
    kernels, at least :data:`MIN_DIM` dimensions, more centroids than the shortlist, and not switched off by
    ``SIDLITE_BF16_PROBE=0``."""
    return (points.device.type == "cpu" and points.dtype == torch.float32 and points.shape[1] >= MIN_DIM
            and num_centroids > count + SHORTLIST_EXTRA and os.environ.get("SIDLITE_BF16_PROBE", "1") != "0"
            and bf16_hardware() and native.kernel("sidlite_score_candidates") is not None)


@contextmanager
def bf16_products():
    """float32 matrix products computed by oneDNN from bf16-rounded inputs with float32 sums, inside the block."""
    settings = torch.backends.mkldnn.matmul
    before = settings.fp32_precision
    settings.fp32_precision = "bf16"
    try:
        yield
    finally:
        settings.fp32_precision = before


def score_candidates(x: torch.Tensor, table: torch.Tensor, bias: torch.Tensor, candidates: torch.Tensor,
                     scale: float) -> torch.Tensor:
    """(M, R) float32 scores scale·x[q]·table[candidates[q, r]] + bias[candidates[q, r]], by the compiled kernel."""
    kernel = native.kernel("sidlite_score_candidates")
    check(kernel is not None, "the compiled kernels are not available; set SIDLITE_BF16_PROBE=0")
    x, table, bias = x.contiguous(), table.contiguous(), bias.contiguous()
    candidates = candidates.to(torch.int64).contiguous()
    out = x.new_empty(candidates.shape)
    kernel(x.data_ptr(), x.shape[0], x.shape[1], table.data_ptr(), bias.data_ptr(), candidates.data_ptr(),
           candidates.shape[1], scale, torch.get_num_threads(), out.data_ptr())
    return out


def nearest_by_shortlist(points: torch.Tensor, centroids: torch.Tensor, minus_sq_norms: torch.Tensor,
                         count: int) -> torch.Tensor:
    """Indices (M, count) of each point's nearest centroids, nearest first: the count + SHORTLIST_EXTRA best
    by 2x·c − ‖c‖² from bf16 products, then the count best of those by the same score in float32."""
    width = min(centroids.shape[0], count + SHORTLIST_EXTRA)
    with bf16_products():
        rough = torch.addmm(minus_sq_norms, points, centroids.T, alpha=2.0)
    shortlist = top_k_rows(rough, width)[1]
    exact = score_candidates(points, centroids, minus_sq_norms, shortlist, 2.0)
    return shortlist.gather(1, top_k_rows(exact, count)[1])
