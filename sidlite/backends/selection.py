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

MAX_K = 64  # the kernel's limit on k (kernels.c)


def top_k_rows(scores: torch.Tensor, k: int, lengths: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(values, columns), each (R, k): the k largest entries of each row of the (R, W) ``scores``, largest first.

    With ``lengths`` (R,), row r counts only its first lengths[r] entries; the entries past them are
    scratch (the torch path overwrites them with −inf). A row with fewer than k entries is padded with
    −inf values at column 0. The kernel serves float32 CPU matrices whose rows are contiguous.
    """
    rows, width = scores.shape
    kernel = native.kernel("sidlite_top_k_rows") if (scores.device.type == "cpu" and scores.dtype == torch.float32
                                                     and scores.stride(1) == 1 and k <= MAX_K) else None
    if kernel is None:
        if lengths is not None:
            scores.masked_fill_(torch.arange(width, device=scores.device)[None, :] >= lengths[:, None], -torch.inf)
        if width < k:
            scores = torch.cat([scores, scores.new_full((rows, k - width), -torch.inf)], 1)
        top = scores.topk(k, dim=1)
        return top.values, torch.where(torch.isfinite(top.values), top.indices, 0)
    values = scores.new_empty(rows, k)
    columns = torch.empty(rows, k, dtype=torch.int64)
    lengths = None if lengths is None else lengths.to(torch.int64).contiguous()
    kernel(scores.data_ptr(), rows, width, scores.stride(0), None if lengths is None else lengths.data_ptr(),
           k, torch.get_num_threads(), values.data_ptr(), columns.data_ptr())
    return values, columns
