"""The k largest entries of each row: a compiled kernel on the CPU, ``torch.topk`` elsewhere.

The top-k backends choose twice per call: the nearest lists of each query, then the best patches of
each (query, list) pair. On a CPU, torch.topk was their largest cost after the matrix products: about
1.4 ns per entry on rows a few hundred wide with k = 5. The kernel (:mod:`sidlite.native`) takes about a
third of that: it looks only at the few column groups that can hold a winner (``kernels.c`` says why
that is exact). Both return the same values; among equal entries the chosen columns may differ.
"""
from __future__ import annotations

import torch

from .. import native
from ..errors import check

MAX_K = 64  # the kernel's limit on k (kernels.c)


def kernel_serves(scores: torch.Tensor) -> bool:
    """Whether :func:`top_k_rows` takes ``scores``' dtype and device to the compiled kernel (CPU, float32,
    where the kernels could be built): then a top-k per small block costs no more than one over a table."""
    return scores.device.type == "cpu" and scores.dtype == torch.float32 and \
        native.kernel("sidlite_top_k_rows") is not None


def scan_lists_top_k(queries: torch.Tensor, rows: torch.Tensor, nprobe: int, table: torch.Tensor,
                     bias: torch.Tensor, segments: list[tuple[int, int, int, int]], scale: float,
                     k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(values, table rows), each (pairs, k) in query order (each query's ``nprobe`` pairs together): for
    every segment (p0, p1, a, b) and pair p in [p0, p1), result row r = rows[p] holds the k largest of
    scale · queries[r // nprobe] · table[a + c] + bias[a + c] over the list's rows c, in one call to the
    compiled list scan (``kernels.c``); missing candidates are −inf at row 0. Serves where
    :func:`kernel_serves` does and k <= :data:`MAX_K`."""
    values = queries.new_empty(rows.shape[0], k)
    index = torch.empty(rows.shape[0], k, dtype=torch.int64, device=queries.device)
    plan = torch.tensor(segments, dtype=torch.int64).reshape(-1, 4)
    queries, rows, bias = queries.contiguous(), rows.contiguous(), bias.contiguous()
    failed = native.kernel("sidlite_scan_lists")(
        queries.data_ptr(), queries.shape[1], rows.data_ptr(), nprobe, table.data_ptr(), bias.data_ptr(),
        plan.data_ptr(), plan.shape[0], scale, k, torch.get_num_threads(), values.data_ptr(), index.data_ptr())
    check(not failed, "the compiled list scan could not allocate its scratch; set SIDLITE_NATIVE=0")
    return values, index


def scan_top_k(queries: torch.Tensor, table: torch.Tensor, bias: torch.Tensor, scale: float,
               k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(values, rows), each (M, k): the k largest of scale · queries[q] · table[r] + bias[r] over every row r
    of ``table``, largest first, by the compiled list scan with the whole table as one list. No (M, rows)
    score table is made, and the products run at the scan's rate: ranking 92 centroids for a million
    queries (d = 147) took 0.13 s against 0.24 s for matrix products and :func:`top_k_rows` (AMD EPYC).
    Serves where :func:`scan_serves` does."""
    check(table.dim() == 2 and table.shape[1] == queries.shape[1] and table.dtype == queries.dtype == bias.dtype
          and table.device == queries.device == bias.device and bias.shape == table.shape[:1],
          f"scan_top_k needs queries (M, d), table (R, d) and bias (R,) of one dtype and device, got "
          f"{tuple(queries.shape)}, {tuple(table.shape)}, {tuple(bias.shape)}")
    everyone = torch.arange(queries.shape[0], device=queries.device)
    return scan_lists_top_k(queries, everyone, 1, table.contiguous(), bias, [(0, queries.shape[0], 0, table.shape[0])],
                            scale, k)


def scan_serves(queries: torch.Tensor, k: int) -> bool:
    """Whether :func:`scan_top_k` can serve these queries: float32 on a CPU with the compiled list scan, k <= MAX_K."""
    return kernel_serves(queries) and k <= MAX_K and native.kernel("sidlite_scan_lists") is not None


def top_k_rows(scores: torch.Tensor, k: int, lengths: torch.Tensor | None = None,
               out: tuple[torch.Tensor, torch.Tensor] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(values, columns), each (R, k): the k largest entries of each row of the (R, W) ``scores``, largest first.

    With ``lengths`` (R,), row r counts only its first lengths[r] entries; the entries past them are
    scratch (the torch path overwrites them with −inf). A row with fewer than k entries is padded with
    −inf values at column 0. The kernel serves float32 CPU matrices whose rows are contiguous; ``out``,
    two contiguous (R, k) tensors (float32, int64), receives the result there.
    """
    rows, width = scores.shape
    use_kernel = kernel_serves(scores) and scores.stride(1) == 1 and k <= MAX_K and \
        (out is None or (out[0].is_contiguous() and out[1].is_contiguous()))
    if not use_kernel:
        if lengths is not None:
            scores.masked_fill_(torch.arange(width, device=scores.device)[None, :] >= lengths[:, None], -torch.inf)
        if width < k:
            scores = torch.cat([scores, scores.new_full((rows, k - width), -torch.inf)], 1)
        top = scores.topk(k, dim=1)
        values, columns = top.values, torch.where(torch.isfinite(top.values), top.indices, 0)
        if out is None:
            return values, columns
        out[0].copy_(values)
        out[1].copy_(columns)
        return out
    values, columns = out if out is not None else (scores.new_empty(rows, k), torch.empty(rows, k, dtype=torch.int64))
    lengths = None if lengths is None else lengths.to(torch.int64).contiguous()
    native.kernel("sidlite_top_k_rows")(
        scores.data_ptr(), rows, width, scores.stride(0), None if lengths is None else lengths.data_ptr(), k,
        torch.get_num_threads(), values.data_ptr(), columns.data_ptr())
    return values, columns
