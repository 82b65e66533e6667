"""Clustered (inverted-list) backends: each query searches only the lists nearest to x/α.

Built once per dataset: k-means puts the N patches into about √N lists, lists above 1.5× the mean
size are bisected (so the lists a query probes are not mostly the crowded ones), and the patches are
stored contiguously list by list. Beyond 65,536 patches the lists stop growing (N / 256 lists of about
256): an index of lists smaller than √N (and more than :data:`FLAT_LISTS` of them) is built by two-level
k-means and probed through a small top-k index over its own centroids, so a query's work grows only as
√(N/256), in the probe.

A query x at (α, σ) probes the ``nprobe`` lists whose centroids are nearest to x/α; this is the same as
the lists nearest to x among the scaled patches αy, because ‖x − α·y‖² = α²·‖x/α − y‖² (α² is common to
every y, and k-means is scale-equivariant). So the search structure never changes with the noise level.

``ClusteredBackend`` computes the softmax over the *union* of the probed lists exactly: the (query,
list) pairs are sorted by list, each list's queries meet its patches in two dense matrix products
(logits, then weights times patches), and the per-list partial results (max logit m, sum of
exp(logit − m), weighted sum) are merged per query by log-sum-exp. With ``nprobe`` = number of lists it
is the exact denoiser. ``TopKBackend`` keeps only the k candidates of largest weight among the probed
lists (the paper's ANN, k = 5) and takes the softmax over those.
"""
from __future__ import annotations

import math
from functools import cached_property

import torch
import torch.nn.functional as F

from .. import native
from ..errors import check
from ..runtime import make_generator
from ..patchsets import as_patch_set
from .base import PatchBackend
from .kmeans import (CHUNK, INITS, cell_training_points, kmeans, nearest_centroids, split_large_lists,
                     two_level_kmeans)
from .selection import MAX_K, scan_lists_top_k, top_k_rows


SCANS = ("auto", "loop", "batched")
PCA_SAMPLE = 16384  # patches the ranking projection is fitted on
PCA_BLOCK = 2048  # of those, centred and multiplied at once (5.5 MB at D = 675; the whole sample was 88 MB)
MAX_PAIRS = 2 ** 17  # (query, list) pairs per batch: bounds the partial results (~350 MB at D = 675)
MAX_SELECTED_PAIRS = 2 ** 20  # top-k's pairs per batch when the kernel chooses: ~200 B of records each
LIST_SIZE = 256  # patches per list once √N lists would be larger (N > 65,536)
FLAT_LISTS = 256  # more lists than this and than √N: two-level k-means, and a coarse index over the centroids
COARSE_PROBE = 2  # lists of the coarse index a probe reads
PAIR_BYTES = 24  # a (query, list) pair's bookkeeping in top-k's scan, beyond 36 bytes per candidate
MAX_SCORES = 2 ** 25  # top-k's score table per batch without the kernel, pairs × longest list: 128 MB
#: The compiled scan's widest list chunk and query tile (kernels.c: CHUNK + 2·LANES, QUERY_TILE) with AVX-512;
#: builds without it use less (1040 and 6), so its planned scratch is an upper bound there.
SCAN_CHUNK, SCAN_TILE = 1056, 12
EMBED_BLOCK = 8192  # queries weighed by one embedding_bag call into a chunked call's output (22 MB at D = 675)
WEIGH_BLOCK = 512  # queries whose k winners are gathered and weighted at once (a few MB: they stay in cache)


def compiled_list_scan(device: torch.device | str, k: int = 5, scan: str = "auto") -> bool:
    """Whether top-k's list scan runs in the compiled kernel: on a CPU where the kernels are built, with
    k <= :data:`~sidlite.backends.selection.MAX_K` and the loop scan (the batched one is for GPUs)."""
    return torch.device(device).type == "cpu" and scan != "batched" and k <= MAX_K and \
        native.kernel("sidlite_scan_lists") is not None


def default_nlist(num_patches: int) -> int:
    """√N lists (at least 1), the choice that balances a flat centroid search against the list scan, up to
    N = 65,536; beyond, N / :data:`LIST_SIZE` lists, searched through a coarse index over their centroids:
    a query then ranks about 3√(N/256) centroids and scans a constant 2·256 patches, not 3√N in all."""
    return max(1, math.isqrt(num_patches), num_patches // LIST_SIZE)


def two_level(nlist: int, num_patches: int) -> bool:
    """Whether an index of ``nlist`` lists is built by two-level k-means and probed through a coarse index:
    when there are more than :data:`FLAT_LISTS` lists and more than √N (lists smaller than √N patches,
    whose flat probe would cost more than the scan)."""
    return nlist > max(FLAT_LISTS, math.isqrt(num_patches))


def training_points(nlist: int, num_patches: int, per_list: int = 64) -> int:
    """The most patches k-means holds at once: its training points (per_list per list for a flat k-means;
    one cell's, at most CELL_TRAINING mean cells' worth, for two-level k-means, whose cells are trained one
    at a time), or, once they are freed, the block of :data:`~sidlite.backends.kmeans.CHUNK` rows that every
    patch is assigned in."""
    train = cell_training_points(nlist, per_list) if two_level(nlist, num_patches) else per_list * nlist
    return min(num_patches, max(train, CHUNK))


def centroids_ranked(nlist: int, num_patches: int) -> int:
    """Centroids one probe ranks: all L, or through the coarse index (√L lists of about √L centroids) the
    √L coarse centroids and the :data:`COARSE_PROBE` lists it reads."""
    return (1 + COARSE_PROBE) * math.isqrt(nlist) if two_level(nlist, num_patches) else nlist


class ClusteredBackend(PatchBackend):
    """Softmax over the union of the ``nprobe`` nearest k-means lists, computed exactly.

    Options: ``nprobe`` (lists probed per query; more lists, smaller error, more time), ``nlist``
    (lists k-means makes, default √N), ``split_above`` (lists larger than this multiple of the mean
    size are bisected, which adds lists: :attr:`nlist` is the final count; None keeps k-means' lists),
    ``iters`` (Lloyd iterations), ``seed`` (the k-means generator's seed),
    ``init`` ('kmeans++' or 'random'), ``train_per_list`` (training points per list). Queries go in
    batches of at most :data:`MAX_PAIRS` (query, list) pairs, bounding the partial results' memory.
    """

    name = "clustered"
    exact = False

    def __init__(self, dataset, nprobe: int = 2, nlist: int | None = None, iters: int = 8,
                 seed: int = 0, init: str = "random", train_per_list: int = 64,
                 split_above: float | None = 1.5):
        super().__init__(dataset)
        n = self.num_patches
        nlist = default_nlist(n) if nlist is None else nlist
        check(isinstance(nlist, int) and 1 <= nlist <= n, f"nlist must be an integer in [1, N={n}], got {nlist}")
        check(isinstance(nprobe, int) and nprobe >= 1, f"nprobe must be an integer >= 1, got {nprobe}")
        check(isinstance(iters, int) and iters >= 0, f"iters must be an integer >= 0, got {iters}")
        check(init in INITS, f"unknown k-means init {init!r}; choose one of: {', '.join(INITS)}")
        check(split_above is None or split_above >= 1, f"split_above must be None or >= 1, got {split_above}")
        self.seed, self.iters, self.init = seed, iters, init
        self._options = {"nprobe": nprobe, "nlist": nlist}
        dataset = self.patches
        generator = make_generator(seed, dataset.device)
        cap = None if split_above is None else max(1, math.ceil(split_above * n / nlist))
        if two_level(nlist, n):
            centroids, labels = two_level_kmeans(dataset, nlist, cap=cap, iters=iters, generator=generator,
                                                 init=init, train_per_list=train_per_list)
        else:
            centroids, labels = kmeans(dataset, nlist, iters=iters, generator=generator, init=init,
                                       train_per_list=train_per_list)
            if cap is not None:
                centroids, labels = split_large_lists(dataset, centroids, cap, generator=generator, labels=labels)
        counts = torch.bincount(labels, minlength=centroids.shape[0])
        used = counts > 0  # a centroid that won no point after the final assignment is dropped
        remap = torch.cumsum(used.long(), 0) - 1
        self.labels = remap[labels]
        self.centroids = centroids[used].to(dataset.dtype)
        self.order = torch.argsort(self.labels, stable=True)  # sorted position -> dataset row
        self.sorted, self.sq_norms = self._list_table()
        self.offsets = [0] + torch.cumsum(counts[used], 0).tolist()
        self.nprobe = min(nprobe, self.nlist)
        self.coarse = self._coarse_index()

    def _coarse_index(self) -> TopKBackend | None:
        """For a two-level index (:func:`two_level`), a top-k index over the centroids (k = nprobe): a probe
        then ranks about (1 + COARSE_PROBE)·√L centroids instead of all L. None for a flat probe."""
        if not two_level(self._options["nlist"], self.num_patches):  # the lists asked for: splits add a few
            return None
        return TopKBackend(self.centroids, k=self.nprobe, nprobe=COARSE_PROBE, seed=self.seed)

    @classmethod
    def estimate(cls, num_patches, dim, num_queries, nprobe: int = 2, nlist: int | None = None, **_):
        nlist = nlist or default_nlist(num_patches)
        mean_list = num_patches / nlist
        ranked = centroids_ranked(nlist, num_patches)
        # the sorted copy, ids and norms, the centroids (twice with a coarse index), and while it is built
        # k-means' training points; per probed list: a partial result and a score row of the mean list size
        # (a list's gathered queries are one list's worth, not per query); work: centroid ranking, then the
        # probed lists (twice: logits, sums)
        training = 4 * dim * training_points(nlist, num_patches)
        centroid_copies = 2 if two_level(nlist, num_patches) else 1
        return {"index_bytes": num_patches * (4 * dim + 20) + 4 * centroid_copies * nlist * dim + training,
                "bytes_per_query": nprobe * 4 * (dim + 2 * mean_list + 4) + 4 * ranked,
                "flops": 2.0 * num_queries * dim * (ranked + 2 * nprobe * mean_list)}

    def _list_table(self) -> tuple[torch.Tensor, torch.Tensor]:
        """What the lists are scanned against, in list order, and the squared norm of each row: here the
        patches themselves (one contiguous copy)."""
        table = self.patches.gather(self.order)
        return table, (table * table).sum(1)

    @property
    def nlist(self) -> int:
        return self.centroids.shape[0]

    @cached_property
    def longest_list(self) -> int:
        """Patches in the largest list (at most ``split_above`` times the mean, when lists are split); the
        lists are fixed once built, so it is counted once, not on every call."""
        return max(b - a for a, b in zip(self.offsets, self.offsets[1:]))

    def _queries_per_chunk(self) -> int:
        """Queries denoised at once: at most :data:`MAX_PAIRS` (query, list) pairs."""
        return max(1, MAX_PAIRS // self.nprobe)

    def list_sizes(self) -> torch.Tensor:
        """Number of patches in each list."""
        return torch.tensor(self.offsets).diff()

    def probe(self, queries: torch.Tensor, alpha: float, nprobe: int | None = None) -> torch.Tensor:
        """The (M, nprobe) lists nearest to each x/α, nearest first: among all centroids, or among those the
        coarse index finds (the few queries whose coarse lists hold too few centroids get the flat search)."""
        count = min(nprobe or self.nprobe, self.nlist)
        if self.coarse is None or count > self.coarse.k:
            # ‖x/α − c‖² ranks like ‖x − α·c‖²: scale the L centroids, not the M queries.
            return nearest_centroids(queries, alpha * self.centroids, count, shortlist=True)
        lists = self.coarse.neighbours(queries, alpha)[:, :count]
        short = (lists < 0).any(1)
        if bool(short.any()):
            lists[short] = nearest_centroids(queries[short], alpha * self.centroids, count, shortlist=True)
        return lists

    def _segments(self, probed: torch.Tensor):
        """The plan for the (M, nprobe) probed lists: (the pairs in list order, each as its row
        query·nprobe + j of the flattened ``probed``, [(pair start, pair end, list start, list end)])."""
        nprobe = probed.shape[1]
        lists = probed.reshape(-1)
        perm = torch.argsort(lists.to(torch.int32), stable=True)  # 32-bit keys: twice as fast on a CPU
        counts = torch.bincount(lists, minlength=self.nlist).tolist()
        segments, pos = [], 0
        for index, count in enumerate(counts):
            if count:
                segments.append((pos, pos + count, self.offsets[index], self.offsets[index + 1]))
                pos += count
        return perm, segments

    @torch.no_grad()
    def _denoise(self, queries, alpha, sigma):
        chunk = self._queries_per_chunk()
        if queries.shape[0] <= chunk:
            return self._denoise_chunk(queries, alpha, sigma)
        out = torch.empty_like(queries)
        for start in range(0, queries.shape[0], chunk):
            self._denoise_chunk(queries[start:start + chunk], alpha, sigma, out=out[start:start + chunk])
        return out

    def _denoise_chunk(self, x, alpha, sigma, out=None):
        """The estimates of the queries ``x``, written into ``out`` (a view of the same shape) when given: a
        call of many chunks then allocates and copies no chunk-sized results, which past 256 MB each would
        be freshly mapped and page-faulted (1.96 → 1.85 s a step over a million patches, d = 147)."""
        probed = self.probe(x, alpha)
        rows, segments = self._segments(probed)
        query_of = rows // probed.shape[1]
        pairs, dim = query_of.shape[0], self.dim
        scale = alpha / sigma ** 2
        bias = self.sq_norms * (-(alpha ** 2) / (2 * sigma ** 2))
        maxes = x.new_empty(pairs)
        sums = x.new_empty(pairs)
        partial = x.new_empty(pairs, dim)
        for p0, p1, a, b in segments:  # each list's queries gathered just before use, while in cache
            values = self.sorted[a:b]
            logits = torch.addmm(bias[a:b], x.index_select(0, query_of[p0:p1]), values.T, alpha=scale)
            top = logits.amax(1, keepdim=True)
            weights = logits.sub_(top).exp_()
            maxes[p0:p1] = top[:, 0]
            sums[p0:p1] = weights.sum(1)
            torch.mm(weights, values, out=partial[p0:p1])
        if self.nprobe == 1:  # one list per query: its partial result is the answer
            return (torch.empty_like(x) if out is None else out).index_copy_(0, query_of, partial.div_(sums[:, None]))
        # Log-sum-exp merge of each query's nprobe partial results.
        best = x.new_full((x.shape[0],), -math.inf).scatter_reduce_(0, query_of, maxes, "amax")
        factor = torch.exp(maxes - best[query_of])
        numer = torch.zeros_like(x).index_add_(0, query_of, partial.mul_(factor[:, None]))
        denom = x.new_zeros(x.shape[0]).index_add_(0, query_of, sums * factor)
        return torch.div(numer, denom[:, None], out=out)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(N={self.num_patches}, d={self.dim}, nlist={self.nlist}, nprobe={self.nprobe})"


class TopKBackend(ClusteredBackend):
    """The paper's ANN denoiser: softmax over the ``k`` nearest patches among the probed lists (k = 5).

    The weights are exact given the candidates; the search only ranks (by ‖x − α·y‖², which does not
    depend on σ). When the probed lists hold fewer than k patches in all, the softmax is over those.

    ``scan`` is how the probed lists are scanned: 'loop' (one matrix product per list, best on a CPU),
    'batched' (lists bucketed by how many queries probe them, one batched product per bucket: a few
    kernels per chunk instead of one per list, for GPUs) or 'auto' (batched on CUDA). Both give the
    same candidates.

    ``rank_dim`` r ranks in a PCA projection instead of the full dimension: with μ the mean patch and U
    the top r principal directions, ‖x − α·y‖² = ‖(x − αμ) − α(y − μ)‖², whose cross term is taken in
    the projection, (x − αμ)ᵀU · Uᵀ(y − μ), while ‖y − μ‖² is kept exact. The index then stores r
    numbers per patch instead of D (no (N, D) copy of the patch set), probing and the list scan cost
    r/D as much, and the k winners are gathered from the patch set and weighted exactly in full D.
    """

    name = "topk"

    def __init__(self, dataset, k: int = 5, nprobe: int = 2, rank_dim: int | None = None, scan: str = "auto",
                 **options):
        check(isinstance(k, int) and k >= 1, f"k must be an integer >= 1, got {k}")
        check(rank_dim is None or (isinstance(rank_dim, int) and rank_dim >= 1),
              f"rank_dim must be None (full dimension) or a whole number >= 1, got {rank_dim!r}")
        check(scan in SCANS, f"scan must be one of {', '.join(SCANS)}, got {scan!r}")
        self.rank_dim = rank_dim
        self.batched = scan == "batched" or (scan == "auto" and as_patch_set(dataset).device.type == "cuda")
        self._padded: tuple[torch.Tensor, torch.Tensor] | None = None
        super().__init__(dataset, nprobe=nprobe, **options)
        self._options["rank_dim"] = rank_dim
        self.k = min(k, self.num_patches)

    @classmethod
    def estimate(cls, num_patches, dim, num_queries, nprobe: int = 2, nlist: int | None = None,
                 rank_dim: int | None = None, k: int = 5, compiled_scan: bool = False, **_):
        """The cost as for :class:`ClusteredBackend`, with top-k's own working memory; ``compiled_scan``
        says the compiled list scan will run (CPU, kernels built), whose scratch is a few of its chunks
        per thread instead of a table of every probed pair's scores."""
        cost = super().estimate(num_patches, dim, num_queries, nprobe, nlist)
        nlist = nlist or default_nlist(num_patches)
        ranked = centroids_ranked(nlist, num_patches)
        longest = math.ceil(1.5 * num_patches / nlist)
        # Per query: each probed pair's bookkeeping and k candidates (value, column, position: 20 bytes, and
        # again once sorted back into query order), then the merged k and their weights. A call's scratch
        # does not grow with its queries past a bound, so it is counted with the index: the probe's scores,
        # and the list scan's: the compiled scan's per-thread chunks of a list (transposed) and their
        # scores, or else the score table (at most MAX_SCORES entries).
        pairs = min(num_queries * nprobe, MAX_SELECTED_PAIRS)
        scanned_dim = min(dim, rank_dim or dim)
        scan_scratch = 4 * torch.get_num_threads() * SCAN_CHUNK * (scanned_dim + SCAN_TILE + 1) if compiled_scan \
            else 4 * min(MAX_SCORES, pairs * longest)
        scratch = scan_scratch + 4 * min(num_queries, CHUNK) * ranked
        cost["index_bytes"] += scratch
        cost["bytes_per_query"] = nprobe * (PAIR_BYTES + 36 * k) + 24 * k
        if rank_dim is not None:
            rank = min(rank_dim, dim)
            # k-means' training points, then (once they are freed) a block of the projection's sample, its
            # centred copy and the float64 scatter matrix
            training = max(4 * dim * training_points(nlist, num_patches),
                           8 * dim * min(num_patches, PCA_BLOCK) + 16 * dim * dim)
            cost["index_bytes"] = num_patches * (4 * rank + 20) + 4 * nlist * (2 * dim + rank) + 4 * dim * rank \
                + training + scratch
            cost["bytes_per_query"] += 4 * k * dim
            cost["flops"] = 2.0 * num_queries * (rank * (ranked + nprobe * num_patches / nlist + dim) + 2 * k * dim)
        return cost

    @cached_property
    def compiled_scan(self) -> bool:
        """Whether :meth:`_scan_loop` runs in the compiled kernel: :func:`compiled_list_scan`, the plan's
        rule, for this backend's table (the kernel takes float32)."""
        scan = "batched" if self.batched else "loop"
        return self.sorted.dtype == torch.float32 and compiled_list_scan(self.sorted.device, self.k, scan)

    def _estimate(self) -> dict[str, float]:
        return self.estimate(self.num_patches, self.dim, 1, compiled_scan=self.compiled_scan, **self._options)

    def _queries_per_chunk(self) -> int:
        """Queries denoised at once: at most :data:`MAX_SELECTED_PAIRS` pairs where the kernel chooses each
        list's winners as its scores are made (a pair then keeps only its k winners); without the kernel,
        :data:`MAX_PAIRS` pairs and at most :data:`MAX_SCORES` entries in the score table."""
        pairs = MAX_SELECTED_PAIRS if self.compiled_scan else min(MAX_PAIRS, MAX_SCORES // self.longest_list)
        return max(1, pairs // self.nprobe)

    def _list_table(self):
        if self.rank_dim is None:
            return super()._list_table()
        rank = min(self.rank_dim, self.dim)
        generator = make_generator(self.seed + 1, self.patches.device)
        picks = torch.randperm(self.num_patches, generator=generator, device=self.patches.device)[:PCA_SAMPLE]
        scatter = torch.zeros(self.dim, self.dim, dtype=torch.float64, device=self.patches.device)
        for start in range(0, picks.numel(), PCA_BLOCK):  # the sample's scatter matrix, a few MB at a time
            centred = self.patches.gather(picks[start:start + PCA_BLOCK]) - self.mean
            scatter += (centred.T @ centred).double()
        _, vectors = torch.linalg.eigh(scatter)
        self.rank_mean = self.mean.double()
        del centred
        self.rank_basis = vectors[:, -rank:].flip(1).float().contiguous()  # (D, r), leading directions first
        # filled block by block in place: a list of blocks joined by a cat held every code twice at the end
        codes = self.rank_basis.new_empty(self.num_patches, rank)
        norms = self.rank_basis.new_empty(self.num_patches)
        block = max(1, 2 ** 19 // self.dim)  # rows of 4 MB in float64 (and their float32 and squared copies)
        for start in range(0, self.num_patches, block):
            rows = self.patches.gather(self.order[start:start + block]).double() - self.rank_mean
            torch.mm(rows.float(), self.rank_basis, out=codes[start:start + block])
            norms[start:start + block] = (rows ** 2).sum(1)
        self.rank_mean = self.rank_mean.float()
        self.full_sq_norms = self.patches.sq_norms()
        centred_centroids = self.centroids.float() - self.rank_mean
        self.centroid_codes = centred_centroids @ self.rank_basis
        self.centroid_norms = (centred_centroids ** 2).sum(1)
        return codes, norms

    def _ranked(self, x: torch.Tensor, alpha: float) -> torch.Tensor:
        """The queries as the list scan sees them: x itself, or (x − αμ)ᵀU in the projection."""
        if self.rank_dim is None:
            return x
        # xᵀU − α·μᵀU: no centred (M, D) copy of the queries
        return torch.addmm(self.rank_mean[None, :] @ self.rank_basis, x, self.rank_basis, beta=-alpha)

    def probe(self, queries, alpha, nprobe=None):
        return self._probe_ranked(queries, self._ranked(queries, alpha), alpha, nprobe)

    def _probe_ranked(self, queries, ranked, alpha, nprobe=None):
        """:meth:`probe` for queries whose projection ``ranked`` is already computed."""
        if self.rank_dim is None or self.coarse is not None:  # the coarse index ranks in full dimension
            return super().probe(queries, alpha, nprobe)
        count = min(nprobe or self.nprobe, self.nlist)
        # rank ‖x − α·c‖² by α²‖c − μ‖² − 2α (x − αμ)ᵀU · Uᵀ(c − μ), the projected cross term
        scores = torch.addmm(-alpha ** 2 * self.centroid_norms, ranked, self.centroid_codes.T, alpha=2.0 * alpha)
        return top_k_rows(scores, count)[1]  # the largest of minus the distance

    def _candidates(self, x, alpha, sigma):
        """The k largest (ranking) logits among each query's probed lists, (M, k), and their sorted positions."""
        scale = alpha / sigma ** 2
        bias = self.sq_norms * (-(alpha ** 2) / (2 * sigma ** 2))
        ranked = self._ranked(x, alpha)  # projected once, for the probe and the scan
        probed = self._probe_ranked(x, ranked, alpha)
        scan = self._scan_batched if self.batched else self._scan_loop
        logits, index = scan(ranked, probed, scale, bias)
        # each query's nprobe·k candidates (pairs are in query order now): keep the best k
        logits, index = logits.view(x.shape[0], -1), index.view(x.shape[0], -1)
        values, columns = top_k_rows(logits, self.k)
        return values, index.gather(1, columns)

    def _scan_loop(self, ranked, probed, scale, bias):
        """Per (query, list) pair, in query order: the list's k best logits and their sorted positions.

        Where the compiled scan runs (:attr:`compiled_scan`), one call scores
        and chooses for every list and writes each pair's winners in query order
        (:func:`~sidlite.backends.selection.scan_lists_top_k`): no torch call per list, whose fixed cost grew
        with the number of lists, and no sort back. Otherwise :meth:`_select_in_table`.
        """
        rows, segments = self._segments(probed)
        if self.compiled_scan:
            return scan_lists_top_k(ranked, rows, probed.shape[1], self.sorted, bias, segments, scale, self.k)
        return self._select_in_table(ranked, rows, probed.shape[1], segments, scale, bias)

    def _select_in_table(self, ranked, rows, nprobe, segments, scale, bias):
        """:meth:`_scan_loop` without the kernel: one matrix product per list fills a (pairs, longest list)
        table, one top-k runs over it, and the winners go back into query order."""
        scores = ranked.new_empty(rows.shape[0], self.longest_list)
        query_of = rows // nprobe
        for p0, p1, a, b in segments:  # each list's logits, its queries gathered just before use
            torch.addmm(bias[a:b], ranked.index_select(0, query_of[p0:p1]), self.sorted[a:b].T, alpha=scale,
                        out=scores[p0:p1, :b - a])
        device = ranked.device
        sizes = torch.tensor([b - a for _, _, a, b in segments], device=device)
        pairs_per_list = torch.tensor([p1 - p0 for p0, p1, _, _ in segments], device=device)
        values, columns = top_k_rows(scores, self.k, torch.repeat_interleave(sizes, pairs_per_list))
        first = torch.tensor([a for _, _, a, _ in segments], device=device)
        index = torch.repeat_interleave(first, pairs_per_list)[:, None] + columns
        index = torch.where(torch.isfinite(values), index, 0)  # a short list's padding is never a candidate
        in_query_order = torch.empty_like(values).index_copy_(0, rows, values)
        return in_query_order, torch.empty_like(index).index_copy_(0, rows, index)

    def _padded_lists(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(nlist, S) sorted positions of every list padded to the longest S, and which are real."""
        if self._padded is None:
            offsets = torch.tensor(self.offsets, device=self.sorted.device)
            sizes = offsets.diff()
            slots = torch.arange(int(sizes.max()), device=sizes.device)
            real = slots[None, :] < sizes[:, None]
            self._padded = (torch.where(real, offsets[:-1, None] + slots[None, :], offsets[:-1, None]), real)
        return self._padded

    def _scan_batched(self, ranked, probed, scale, bias):
        """The same as :meth:`_scan_loop` with lists bucketed by their query count (powers of two): one
        batched product per bucket, queries and lists zero- or −∞-padded to the bucket's shape."""
        lists, nprobe = probed.reshape(-1), probed.shape[1]
        k, pairs = self.k, lists.numel()
        table, real = self._padded_lists()
        perm = torch.argsort(lists, stable=True)  # pairs in list order
        counts = torch.bincount(lists, minlength=self.nlist)
        starts = torch.cumsum(counts, 0) - counts
        buckets = torch.where(counts > 0, torch.ceil(torch.log2(counts.clamp_min(1).double())).long(), -1)
        logits = ranked.new_full((pairs, k), -math.inf)
        index = torch.zeros(pairs, k, dtype=torch.long, device=ranked.device)
        masked_bias = bias[table].masked_fill(~real, -math.inf)  # (nlist, S)
        for bucket in torch.unique(buckets[buckets >= 0]).tolist():
            members = (buckets == bucket).nonzero()[:, 0]
            slots = torch.arange(2 ** bucket, device=ranked.device)
            filled = slots[None, :] < counts[members, None]  # (L, G)
            pair = perm[(starts[members, None] + slots[None, :]).clamp(max=pairs - 1)]
            queries = ranked[pair // nprobe] * filled[..., None]
            scores = torch.baddbmm(masked_bias[members, None, :], queries,
                                   self.sorted[table[members]].transpose(1, 2), alpha=scale)  # (L, G, S)
            top = scores.topk(min(k, scores.shape[2]), dim=2)
            positions = table[members].gather(1, top.indices.flatten(1)).view(top.indices.shape)
            logits[pair[filled], :top.values.shape[2]] = top.values[filled]
            index[pair[filled], :top.values.shape[2]] = positions[filled]
        return logits, index

    def _denoise_chunk(self, x, alpha, sigma, out=None):
        logits, index = self._candidates(x, alpha, sigma)
        if self.rank_dim is None:
            # the softmax, with the row maximum in column 0 (the candidates come largest first): three
            # element-wise passes, where torch.softmax over rows of 5 costs 7× as much on a CPU
            weights = (logits - logits[:, :1]).exp_()
            weights.div_(weights.sum(1, keepdim=True))
            # Σ_j w_j·y_j straight from the patch table, without gathering an (M, k, D) copy of the candidates
            if out is None:
                return F.embedding_bag(index, self.sorted, per_sample_weights=weights, mode="sum")
            for start in range(0, x.shape[0], EMBED_BLOCK):  # results small enough to be reused memory
                end = start + EMBED_BLOCK
                out[start:end] = F.embedding_bag(index[start:end], self.sorted, mode="sum",
                                                 per_sample_weights=weights[start:end])
            return out
        rows = self.order[index]  # (M, k) dataset rows of the winners, weighted exactly in full dimension
        out = torch.empty_like(x) if out is None else out
        for start in range(0, x.shape[0], WEIGH_BLOCK):  # blocks whose gathered winners stay in cache
            block = rows[start:start + WEIGH_BLOCK]
            y = self.patches.gather(block.reshape(-1)).view(*block.shape, self.dim)
            # the k dot products as one element-wise product and sum: a batch of (k, D)·(D, 1) products is
            # five times slower on a CPU
            exact = (alpha / sigma ** 2) * (y * x[start:start + WEIGH_BLOCK, None, :]).sum(2) \
                - (alpha ** 2 / (2 * sigma ** 2)) * self.full_sq_norms[block]
            found = torch.isfinite(logits[start:start + WEIGH_BLOCK])
            weights = torch.softmax(exact.masked_fill(~found, -math.inf), dim=1)
            torch.bmm(weights[:, None, :], y, out=out[start:start + WEIGH_BLOCK, None, :])
        return out

    @torch.no_grad()
    def neighbours(self, queries: torch.Tensor, alpha: float = 1.0) -> torch.Tensor:
        """Dataset rows (M, k) of the k probed patches nearest to each x/α, nearest first (for checks).

        Candidates that do not exist (fewer than k in the probed lists) are -1, as in FAISS. With
        ``rank_dim`` the order is the projection's.
        """
        logits, index = self._candidates(queries, alpha, 1.0)
        return torch.where(torch.isfinite(logits), self.order[index], -1)
