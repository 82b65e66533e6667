"""Seeded k-means in torch (CPU or CUDA): the inverted lists of the clustered backend.

Every distance is ‖x‖² − 2·x·c + ‖c‖² with the cross term as one matrix product, so a Lloyd iteration
is a GEMM plus a scatter-add. Centroids are trained on a random subset of ``train_per_list`` points
per list (as FAISS does with 256), then every point is assigned to its nearest centroid.
All randomness goes through the given ``torch.Generator``: the same seed gives the same lists.

k-means on image patches makes lists of very uneven size (on a 248×186 photo the largest list held
4.6× the mean), and a query's cost is the size of the lists it probes, which are more often the big
ones. :func:`split_large_lists` bisects every list above a cap, which cuts the mean probed list size by
a third for a few more centroids.

For thousands of lists, :func:`two_level_kmeans` first makes √L cells and then each cell's share of the
lists, so a pass costs N·2√L distances instead of N·L.
"""
from __future__ import annotations

import math

import torch

from ..errors import check
from ..patchsets import PatchSet, SubsetPatchSet, as_patch_set
from .selection import scan_serves, scan_top_k, top_k_rows
from .shortlist import nearest_by_shortlist, shortlist_serves

INITS = ("kmeans++", "random")
CHUNK = 16384  # points whose centroid scores are made at once
#: The list scan ranks centroids from this many scores and centroids on: it pads the centroids to whole vectors
#: of 16, so a few centroids (2-means bisections, 4-15 cells) cost a product and top-k less, as do small calls.
SCAN_MIN_SCORES, SCAN_MIN_CENTROIDS = 2 ** 16, 16
CELL_TRAINING = 4  # two-level k-means: a cell trains on at most this many times a mean cell's points


def nearest_centroids(points: torch.Tensor, centroids: torch.Tensor, count: int = 1,
                      chunk: int = CHUNK, shortlist: bool = False) -> torch.Tensor:
    """Indices (M, count) of the ``count`` nearest centroids of each point, nearest first. With ``shortlist``,
    where :func:`~sidlite.backends.shortlist.shortlist_serves`, ranked from bf16 products and re-ranked
    exactly (the probe's choice up to near-ties; k-means keeps the float32 ranking). Otherwise, on a CPU
    with the compiled kernels and enough work (:data:`SCAN_MIN_SCORES`), in one call of the list scan (:func:`~sidlite.backends.selection.scan_top_k`);
    else ``chunk`` points at a time, by a matrix product and a top-k. The two break exact ties differently
    (the scan by vector lane, the product by lowest index), so k-means' lists can differ by a near-tie
    between machines with and without the kernels."""
    centroids = centroids.float()
    minus_sq_norms = -(centroids ** 2).sum(1)
    large = centroids.shape[0] >= SCAN_MIN_CENTROIDS and points.shape[0] * centroids.shape[0] >= SCAN_MIN_SCORES
    if large and scan_serves(points, count) and not (shortlist and shortlist_serves(points, centroids.shape[0], count)):
        # 2x·c − ‖c‖² is largest for the nearest c (‖x‖² is the same for every centroid, so it is left out).
        return scan_top_k(points, centroids, minus_sq_norms, 2.0, count)[1]
    out = []
    for start in range(0, points.shape[0], chunk):
        block = points[start:start + chunk].float()
        if shortlist and shortlist_serves(block, centroids.shape[0], count):
            out.append(nearest_by_shortlist(block, centroids, minus_sq_norms, count))
            continue
        # 2x·c − ‖c‖² is largest for the nearest c (‖x‖² is the same for every centroid, so it is left out).
        scores = torch.addmm(minus_sq_norms, block, centroids.T, alpha=2.0)
        out.append(top_k_rows(scores, count)[1] if count > 1 else scores.argmax(1, keepdim=True))
    return torch.cat(out)


def assign(data: PatchSet, centroids: torch.Tensor, chunk: int = CHUNK) -> torch.Tensor:
    """The nearest centroid of every patch of ``data`` (N,), reading the set block by block."""
    labels = []
    for _, block in data.chunks(chunk):
        labels.append(nearest_centroids(block, centroids, chunk=chunk)[:, 0])
        del block  # before the next block is cut from the set: one block held at a time, not two
    return torch.cat(labels)


def _kmeans_pp(points: torch.Tensor, k: int, generator: torch.Generator) -> torch.Tensor:
    """k-means++ seeding: each new centre is drawn with probability proportional to D(x)²."""
    sq_norms = (points ** 2).sum(1)
    first = torch.randint(points.shape[0], (1,), generator=generator, device=points.device)
    centres = [points[first[0]]]
    dist = (sq_norms - 2 * points @ centres[0] + sq_norms[first[0]]).clamp_min(0)
    for _ in range(1, k):
        total = dist.sum()
        if total <= 0:  # fewer distinct points than lists: repeat one, Lloyd's reseeding handles it
            pick = torch.randint(points.shape[0], (1,), generator=generator, device=points.device)
        else:
            pick = torch.multinomial(dist / total, 1, generator=generator)
        c = points[pick[0]]
        centres.append(c)
        dist = torch.minimum(dist, (sq_norms - 2 * points @ c + sq_norms[pick[0]]).clamp_min(0))
    return torch.stack(centres)


def kmeans(data: PatchSet | torch.Tensor, num_lists: int, *, iters: int = 8, generator: torch.Generator,
           init: str = "random", train_per_list: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    """Centroids (L, D) and the list of every row of ``data`` (N,), after ``iters`` Lloyd iterations.

    Lists that empty during training are re-seeded with a random training point, so all L centroids
    stay in use on the training set.
    """
    check(init in INITS, f"unknown k-means init {init!r}; choose one of: {', '.join(INITS)}")
    data = as_patch_set(data)
    n = data.size
    check(1 <= num_lists <= n, f"the number of lists must lie in [1, N={n}], got {num_lists}")
    check(iters >= 0 and train_per_list >= 1, "k-means needs iters >= 0 and train_per_list >= 1")
    train_size = min(n, num_lists * train_per_list)
    if train_size < n:
        points = data.gather(torch.randperm(n, generator=generator, device=data.device)[:train_size]).float()
    else:
        points = data.dense().float()
    centroids = _lloyd(points, num_lists, iters, generator, init)
    del points  # the training copy goes before every row is assigned
    return centroids, assign(data, centroids)


def _lloyd(points: torch.Tensor, num_lists: int, iters: int, generator: torch.Generator, init: str) -> torch.Tensor:
    """The (L, D) centroids of ``iters`` Lloyd iterations on the training points, seeded by ``init``."""
    train_size = points.shape[0]
    if init == "kmeans++":
        # The seeding is sequential in L; on a subset it costs little and still spreads the centres.
        centroids = _kmeans_pp(points[:min(train_size, 16 * num_lists)], num_lists, generator)
    else:
        centroids = points[torch.randperm(train_size, generator=generator, device=points.device)[:num_lists]].clone()
    for _ in range(iters):
        labels = nearest_centroids(points, centroids)[:, 0]
        counts = torch.bincount(labels, minlength=num_lists)
        sums = torch.zeros_like(centroids).index_add_(0, labels, points)
        filled = counts > 0
        centroids[filled] = sums[filled] / counts[filled, None].to(sums.dtype)
        empty = int((~filled).sum())
        if empty:
            centroids[~filled] = points[torch.randint(train_size, (empty,), generator=generator, device=points.device)]
    return centroids


def split_large_lists(data: PatchSet | torch.Tensor, centroids: torch.Tensor, cap: int, *, generator: torch.Generator,
                      iters: int = 8, labels: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Bisect (2-means) the largest list until none holds more than ``cap`` points, then reassign
    every point to its nearest centroid. ``labels``: every row's nearest centroid, when the caller has
    it (k-means returns it), else found here. Returns the new centroids and every row's list."""
    check(cap >= 1, f"the list size cap must be >= 1, got {cap}")
    data = as_patch_set(data)
    centroids = centroids.float().clone()
    labels = assign(data, centroids) if labels is None else labels.clone()
    unsplittable = []
    while True:
        sizes = torch.bincount(labels, minlength=centroids.shape[0])
        sizes[unsplittable] = 0
        largest = int(sizes.argmax())
        if int(sizes[largest]) <= cap:
            break
        members = (labels == largest).nonzero()[:, 0]
        halves, side = kmeans(data.gather(members), 2, iters=iters, generator=generator, train_per_list=members.shape[0])
        if not bool(side.any()) or bool(side.all()):  # identical points: this list cannot be split
            unsplittable.append(largest)
            continue
        centroids[largest] = halves[0]
        centroids = torch.cat([centroids, halves[1:]])
        labels[members[side == 1]] = centroids.shape[0] - 1
    return centroids, assign(data, centroids)


def cell_training_points(num_lists: int, train_per_list: int = 64) -> int:
    """The most training points one cell of :func:`two_level_kmeans` holds: CELL_TRAINING mean cells' worth."""
    return CELL_TRAINING * train_per_list * math.ceil(num_lists / math.isqrt(num_lists))


def two_level_kmeans(data: PatchSet | torch.Tensor, num_lists: int, *, cap: int | None, iters: int = 8,
                     generator: torch.Generator, init: str = "random",
                     train_per_list: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    """About ``num_lists`` lists for a large set: k-means into √L cells, then each cell's rows into its
    share of the L lists (in proportion to its size), lists above ``cap`` bisected within their cell.

    A row joins the nearest list of its own cell, which is its nearest list overall unless it lies near
    a cell's border. Every pass costs N·2√L distances instead of the N·L of one flat k-means, which at a
    million patches and 4,000 lists is the difference between seconds and minutes. Cells are trained one
    after another, each on at most :data:`CELL_TRAINING` times a mean cell's training points, so the
    training copy stays near train_per_list·√L·CELL_TRAINING rows however uneven the cells. Returns the
    centroids (L', D) and every row's list (N,), as :func:`kmeans` and :func:`split_large_lists` do.
    """
    data = as_patch_set(data)
    n = data.size
    check(1 <= num_lists <= n, f"the number of lists must lie in [1, N={n}], got {num_lists}")
    cells = math.isqrt(num_lists)
    _, cell_of = kmeans(data, cells, iters=iters, generator=generator, init=init, train_per_list=train_per_list)
    most_training = cell_training_points(num_lists, train_per_list)
    order = torch.argsort(cell_of, stable=True)
    counts = torch.bincount(cell_of).tolist()
    labels = torch.empty(n, dtype=torch.long, device=data.device)
    centroids, start, offset = [], 0, 0
    for count in counts:
        if not count:
            continue
        members = order[start:start + count]
        start += count
        cell = SubsetPatchSet(data, members)  # read through the set: no copy of the cell's patches
        share = max(1, min(count, round(num_lists * count / n)))
        found, inside = kmeans(cell, share, iters=iters, generator=generator, init=init,
                               train_per_list=max(1, min(train_per_list, most_training // share)))
        if cap is not None:
            found, inside = split_large_lists(cell, found, cap, generator=generator, labels=inside)
        labels[members] = inside + offset
        offset += found.shape[0]
        centroids.append(found)
    return torch.cat(centroids), labels
