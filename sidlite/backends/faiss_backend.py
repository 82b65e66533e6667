"""The paper's ANN denoiser on FAISS: an IVF-Flat index searched with x/α, softmax over the k found.

FAISS is optional (``pip install faiss-cpu``; a GPU build is used for CUDA datasets when present). The
index is built once over the raw patches with √N lists; the weights are computed exactly in torch from
the retrieved patches, so FAISS only ranks. It is the cross-check of :class:`TopKBackend`: given the
same centroids (``centroids=``) both search the same lists and find the same neighbours up to ties.
"""
from __future__ import annotations

import math

import numpy as np
import torch

from ..errors import SidliteError, check
from .base import PatchBackend


def _faiss():
    try:
        import faiss
    except ImportError as error:  # a missing package, or a build against another CUDA
        raise SidliteError("the 'faiss' backend needs the faiss package (pip install faiss-cpu); "
                           "use `backend='topk'` for the same method without it") from error
    return faiss


#: Queries per FAISS search call (bounds its (M, k) results and the gathered winners).
QUERY_CHUNK = 16384

class FaissBackend(PatchBackend):
    """IVF-Flat ANN backend: ``k`` nearest of x/α among the ``nprobe`` lists nearest to it, softmax over them.

    ``nlist`` defaults to √N; ``seed`` seeds FAISS's k-means; ``centroids`` (L, D) skips training and
    uses the given coarse quantizer instead. When the probed lists hold fewer than k patches, the softmax
    is over those found (FAISS marks the rest -1).
    """

    name = "faiss"
    exact = False

    def __init__(self, dataset, k: int = 5, nprobe: int = 2, nlist: int | None = None,
                 seed: int = 0, centroids: torch.Tensor | None = None):
        super().__init__(dataset)
        faiss = _faiss()
        check(isinstance(k, int) and k >= 1, f"k must be an integer >= 1, got {k}")
        check(isinstance(nprobe, int) and nprobe >= 1, f"nprobe must be an integer >= 1, got {nprobe}")
        n = self.num_patches
        if centroids is not None:
            nlist = centroids.shape[0]
        nlist = max(1, math.isqrt(n)) if nlist is None else nlist  # FAISS probes its centroids flat
        check(isinstance(nlist, int) and 1 <= nlist <= n, f"nlist must be an integer in [1, N={n}], got {nlist}")
        self._options = {"k": k, "nprobe": nprobe, "nlist": nlist}
        self.k, self.nprobe, self.nlist = min(k, n), min(nprobe, nlist), nlist
        self.table = self.patches.dense()  # FAISS stores its own copy; the weights read this one
        data = np.ascontiguousarray(self.table.detach().float().cpu().numpy())
        quantizer = faiss.IndexFlatL2(self.dim)
        index = faiss.IndexIVFFlat(quantizer, self.dim, nlist, faiss.METRIC_L2)
        if centroids is None:
            index.cp.seed = seed
            index.cp.min_points_per_centroid = 1  # √N lists of √N patches each are by design: no warning per small set
            index.train(data)
        else:
            check(tuple(centroids.shape) == (nlist, self.dim), f"centroids must be (nlist, {self.dim})")
            quantizer.add(np.ascontiguousarray(centroids.detach().float().cpu().numpy()))
            index.is_trained = True
        index.add(data)
        index.nprobe = self.nprobe
        self._quantizer = quantizer  # the IVF index refers to it: keep it alive
        self._resources = None
        if self.table.is_cuda and hasattr(faiss, "StandardGpuResources"):
            self._resources = faiss.StandardGpuResources()
            index = faiss.index_cpu_to_gpu(self._resources, self.table.device.index or 0, index)
        self.index = index
        self.sq_norms = self.patches.sq_norms()

    @classmethod
    def estimate(cls, num_patches, dim, num_queries, k: int = 5, nprobe: int = 2, nlist: int | None = None, **_):
        nlist = nlist or max(1, math.isqrt(num_patches))  # as built: √N lists, probed flat
        return {"index_bytes": 8 * num_patches * dim + 4 * nlist * dim,
                "bytes_per_query": 4 * (k * dim + nlist + k),
                "flops": 2.0 * num_queries * dim * (nlist + nprobe * num_patches / nlist)}

    def neighbours(self, queries: torch.Tensor, alpha: float = 1.0) -> torch.Tensor:
        """Dataset rows (M, k) of the k nearest probed patches of x/α, nearest first; -1 where none."""
        found = self.index.search(np.ascontiguousarray((queries / alpha).float().cpu().numpy()), self.k)[1]
        return torch.from_numpy(found).to(queries.device)

    @torch.no_grad()
    def _denoise(self, queries, alpha, sigma):
        out = torch.empty_like(queries)
        for start in range(0, queries.shape[0], QUERY_CHUNK):
            x = queries[start:start + QUERY_CHUNK]
            index = self.neighbours(x, alpha)
            missing = index < 0
            check(not bool(missing.all(1).any()), "FAISS found no candidate for some query; raise nprobe")
            index = index.clamp_min(0)
            y = self.table[index]  # (M, k, D)
            logits = (alpha / sigma ** 2) * torch.bmm(y, x[:, :, None])[:, :, 0] \
                - (alpha ** 2 / (2 * sigma ** 2)) * self.sq_norms[index]
            weights = torch.softmax(logits.masked_fill(missing, -torch.inf), dim=1)
            out[start:start + QUERY_CHUNK] = torch.bmm(weights[:, None, :], y)[:, 0]
        return out
