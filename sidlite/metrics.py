"""Quality and diversity measures that need no downloaded weights.

All take [-1, 1] (C, H, W) tensors. Patch distances are mean squared differences per value (the squared
Euclidean distance divided by D), so they do not grow with the patch size.
"""
from __future__ import annotations

import torch

from .errors import check
from .patches import extract_patches, fold_patches, patch_grid
from .pyramid import resize
from .runtime import make_generator


#: Rows the float32 ranking of the dense scan passes on to be compared in float64: the float32 form
#: ‖y‖² − 2x·y cancels, so rows within its rounding of the nearest may be ranked in either order.
DENSE_SHORTLIST = 4


def _dense_nearest(queries: torch.Tensor, dataset: torch.Tensor, chunk: int = 4096) -> tuple[torch.Tensor, torch.Tensor]:
    """The dense scan: float32 ranking by ‖y‖² − 2x·y keeps :data:`DENSE_SHORTLIST` rows per query, whose
    distances (squared Euclidean, not divided by d) are then computed and compared in float64. Query
    chunks hold at most 2²⁵ scores (128 MB), whatever N."""
    queries, dataset = queries.float(), dataset.float().contiguous()
    dataset64 = dataset.double()
    chunk = max(1, min(chunk, 2 ** 25 // dataset.shape[0]))
    sq_norms = (dataset64 ** 2).sum(1).float()
    shortlist = min(DENSE_SHORTLIST, dataset.shape[0])
    best, index = [], []
    for start in range(0, queries.shape[0], chunk):
        x = queries[start:start + chunk]
        where = torch.addmm(sq_norms, x, dataset.T, alpha=-2.0).topk(shortlist, dim=1, largest=False).indices
        owner = torch.arange(x.shape[0]).repeat_interleave(shortlist)
        exact = _exact_sq(x.double(), dataset64, owner, where.reshape(-1)).view(-1, shortlist)
        low, at = exact.min(1)
        best.append(low)
        index.append(where.gather(1, at[:, None])[:, 0])
    return torch.cat(best), torch.cat(index)


def _principal_directions(dataset: torch.Tensor, rank: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The dataset's mean and its ``rank`` leading principal directions (D, rank), orthonormal, float64."""
    mean = dataset.double().mean(0)
    sample = dataset[:: max(1, dataset.shape[0] // 8192)].double() - mean
    _, vectors = torch.linalg.eigh(sample.T @ sample)
    return mean, vectors[:, -min(rank, dataset.shape[1]):].flip(1).contiguous()


def _exact_sq(queries: torch.Tensor, rows: torch.Tensor, owner: torch.Tensor, pos: torch.Tensor,
              block: int = 8192) -> torch.Tensor:
    """Exact float64 squared distances of the pairs (queries[owner], rows[pos]); both given in float64."""
    out = torch.empty(owner.shape[0], dtype=torch.float64)
    for p0 in range(0, owner.shape[0], block):
        o, p = owner[p0:p0 + block], pos[p0:p0 + block]
        out[p0:p0 + block] = (queries[o] - rows[p]).pow_(2).sum(1)
    return out


def _best_per_query(owner: torch.Tensor, pos: torch.Tensor, dist: torch.Tensor, count: int, fill: int):
    """Per query: the smallest distance among its pairs (inf if none) and the smallest row index at it."""
    low = torch.full((count,), float("inf"), dtype=torch.float64).scatter_reduce(0, owner, dist, "amin")
    tied = dist == low[owner]
    index = torch.full((count,), fill, dtype=torch.long).scatter_reduce(0, owner[tied], pos[tied], "amin")
    return low, index


def nearest_patches(queries: torch.Tensor, dataset: torch.Tensor, chunk: int = 4096,
                    exact: bool = True, rank: int = 8, candidates: int = 8,
                    within: float | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """For each query row, the mean squared difference to its nearest dataset row, and that row's index.

    Distances are exact float64 values of the row returned. Small problems are scanned densely (float32
    ranking keeps a shortlist of 4 rows, compared in float64, so float32 cancellation does not pick a
    slightly farther row). Large ones are searched in two stages: a k-d tree over the
    ``rank`` leading principal-direction coordinates proposes ``candidates`` rows per query, whose exact
    distances are computed; a query is *certified* when its last candidate's projected distance (a
    lower bound on the distance of every row not proposed) is no smaller than its best exact distance.
    With ``exact`` (default) the uncertified queries are then scanned densely, so the nearest distances
    equal the dense scan's; ``exact=False`` keeps the best proposed row, an upper bound (on a Table-1
    sample the mean came out 25 % above the exact one: use it for a quick look, not for a table).
    With ``within`` (a mean squared difference), only queries that may have a row that close are made
    exact: for the others (first projected distance already farther) the distance returned is an upper
    bound, and it is above ``within`` like the true one.
    """
    queries, dataset = queries.float().cpu(), dataset.float().cpu().contiguous()
    dim, n, m = dataset.shape[1], dataset.shape[0], queries.shape[0]
    if m * n <= 2 ** 24 or n <= 4 * candidates:
        best, index = _dense_nearest(queries, dataset, chunk)
        return (best / dim).float(), index
    from scipy.spatial import cKDTree  # scipy comes with scikit-image

    mean, directions = _principal_directions(dataset, rank)
    dataset64 = dataset.double()  # converted once: the exact distances read it for every proposal
    tree = cKDTree(((dataset64 - mean) @ directions).numpy())
    best = torch.empty(m, dtype=torch.float64)
    index = torch.empty(m, dtype=torch.long)
    certified = torch.empty(m, dtype=torch.bool)
    for start in range(0, m, 8192):
        q = queries[start:start + 8192].double()
        projected, proposed = tree.query(((q - mean) @ directions).numpy(), k=candidates, workers=-1)
        proposed = torch.from_numpy(proposed).long()
        owner = torch.arange(q.shape[0]).repeat_interleave(candidates)
        dist = _exact_sq(q, dataset64, owner, proposed.reshape(-1)).view(-1, candidates)
        low, at = dist.min(1)
        best[start:start + 8192], index[start:start + 8192] = low, proposed.gather(1, at[:, None])[:, 0]
        bound = torch.from_numpy(projected[:, -1]).double() ** 2
        certified[start:start + 8192] = bound * (1 + 1e-9) >= low
        if within is not None:  # nothing within reach: the nearest cannot be within ``within``
            nearest_projected = torch.from_numpy(projected[:, 0]).double() ** 2
            certified[start:start + 8192] |= nearest_projected > within * dim * (1 + 1e-9) + 1e-12
    if exact and not bool(certified.all()):
        rest = (~certified).nonzero()[:, 0]
        d, i = _dense_nearest(queries[rest], dataset, chunk)
        better = d < best[rest]
        best[rest[better]], index[rest[better]] = d[better], i[better]
    return (best / dim).float(), index


def _sliced_wasserstein(a: torch.Tensor, b: torch.Tensor, directions: torch.Tensor) -> float:
    """Mean over directions of W1 between the 1-D projections, matched at common quantiles."""
    pa, _ = (a @ directions).sort(0)
    pb, _ = (b @ directions).sort(0)
    n = min(pa.shape[0], pb.shape[0])
    q = (torch.arange(n, dtype=torch.float64) + 0.5) / n

    def at_quantiles(sorted_proj):
        pos = q * sorted_proj.shape[0] - 0.5
        lo = pos.floor().clamp(0, sorted_proj.shape[0] - 1).long()
        hi = (lo + 1).clamp(max=sorted_proj.shape[0] - 1)
        frac = (pos - lo).clamp(0, 1)[:, None]
        return sorted_proj[lo] * (1 - frac) + sorted_proj[hi] * frac

    return float((at_quantiles(pa) - at_quantiles(pb)).abs().mean())


def patch_swd(sample: torch.Tensor, reference: torch.Tensor, patch_size: int = 7, num_levels: int = 3,
              num_projections: int = 128, max_patches: int = 16384, seed: int = 0) -> float:
    """Multi-scale patch sliced-Wasserstein distance between a sample and its reference.

    SWD = (1/S) Σ_s (1/K) Σ_k W1(⟨θ_k, patches_s(sample)⟩, ⟨θ_k, patches_s(reference)⟩) over K random unit
    directions θ_k and S pyramid levels (each half the size of the last; a level stops the pyramid when
    it gets smaller than the patch). 0 means identical patch distributions.
    """
    generator = make_generator(seed)
    sample, reference = sample.double().cpu(), reference.double().cpu()
    check(sample.shape[0] == reference.shape[0], "sample and reference need the same number of channels")
    dim = sample.shape[0] * patch_size ** 2
    directions = torch.randn(dim, num_projections, generator=generator, dtype=torch.float64)
    directions /= directions.norm(dim=0, keepdim=True)
    distances = []
    for level in range(num_levels):
        if level:
            sample = resize(sample, ((sample.shape[1] + 1) // 2, (sample.shape[2] + 1) // 2))
            reference = resize(reference, ((reference.shape[1] + 1) // 2, (reference.shape[2] + 1) // 2))
        if min(*sample.shape[1:], *reference.shape[1:]) < patch_size:
            break
        patches = []
        for image in (sample, reference):
            p = extract_patches(image, patch_size)
            if p.shape[0] > max_patches:
                p = p[torch.randperm(p.shape[0], generator=generator)[:max_patches]]
            patches.append(p)
        distances.append(_sliced_wasserstein(*patches, directions))
    check(bool(distances), f"images are smaller than the {patch_size}x{patch_size} patch")
    return sum(distances) / len(distances)


def pixel_diversity(samples: torch.Tensor, reference: torch.Tensor) -> float:
    """SinGAN's diversity, per channel: the standard deviation of each pixel value across samples
    (population std), averaged over pixels and channels, divided by the standard deviation of the
    reference image's values. Scale-free; 0 means identical samples.

        div = mean_{c,h,w} std_s(x_s[c,h,w]) / std_{c,h,w}(y[c,h,w])
    """
    check(samples.dim() == 4 and samples.shape[0] >= 2, "pixel diversity needs a (S >= 2, C, H, W) batch of samples")
    return float(samples.double().std(0, unbiased=False).mean() / reference.double().std(unbiased=False))


def pixel_diversity_gray(samples: torch.Tensor, reference: torch.Tensor, unbiased: bool = True) -> float:
    """SinGAN's diversity as its public evaluation code (and GPDM's) computes it: on the grey image
    (mean of the channels), the per-pixel standard deviation across samples (``unbiased``: divided by
    S − 1, torch's default there), averaged over pixels, over the grey reference's standard deviation.

        div_gray = mean_{h,w} std_s(ḡ_s[h,w]) / std_{h,w}(ḡ_y[h,w]),   ḡ = mean over channels
    """
    check(samples.dim() == 4 and samples.shape[0] >= 2, "pixel diversity needs a (S >= 2, C, H, W) batch of samples")
    grey, ref = samples.double().mean(1), reference.double().mean(0)
    return float(grey.std(0, unbiased=unbiased).mean() / ref.std(unbiased=unbiased))


def pixel_spread(samples: torch.Tensor) -> float:
    """The per-pixel standard deviation across samples (population std) in [0, 1] pixel units, averaged
    over pixels and channels, *not* normalised by the reference: mean_{c,h,w} std_s(x_s/2 + 1/2).
    Of the two, its magnitude, not SinGAN's ratio, is the nearer to the pixel diversity the efficient-SID
    paper's Table 1 reports (0.15; chapter 12 prints both beside it); the paper does not state its formula,
    so this is our reading, not a quote."""
    check(samples.dim() == 4 and samples.shape[0] >= 2, "pixel spread needs a (S >= 2, C, H, W) batch of samples")
    return float((samples.double() / 2).std(0, unbiased=False).mean())


def layout_distance(sample: torch.Tensor, reference: torch.Tensor, max_shift: float = 0.125,
                    short_side: int = 64) -> float:
    """How far the sample's layout is from the input's: 0 for a (shifted) copy, about √2 for an
    unrelated arrangement of the same content.

    Both images are reduced by the same factor (the reference's short side to ``short_side`` pixels,
    antialiased, so small local changes do not count); then, over every shift (dy, dx) up to
    ``max_shift`` of each side, the RMS difference over the overlap, divided by the reduced reference's
    standard deviation, and the smallest value is returned:

        L = min_{|dy| ≤ s·H, |dx| ≤ s·W} RMS_overlap(x[i, j] − y[i + dy, j + dx]) / std(y)

    Two independent images with the reference's statistics give RMS ≈ √2·std, hence ≈ 1.41.
    """
    check(sample.shape[0] == reference.shape[0], "sample and reference need the same number of channels")
    sample, reference = sample.double().cpu(), reference.double().cpu()
    factor = min(1.0, short_side / min(reference.shape[1:]))
    if factor < 1:
        reference = resize(reference, (max(1, round(reference.shape[1] * factor)), max(1, round(reference.shape[2] * factor))))
        sample = resize(sample, (max(1, round(sample.shape[1] * factor)), max(1, round(sample.shape[2] * factor))))
    height, width = min(sample.shape[1], reference.shape[1]), min(sample.shape[2], reference.shape[2])
    sample, reference = sample[:, :height, :width], reference[:, :height, :width]
    scale = float(reference.std(unbiased=False))
    check(scale > 0, "the reference image is constant: its layout distance is undefined")
    sy, sx = int(max_shift * height), int(max_shift * width)
    best = float("inf")
    for dy in range(-sy, sy + 1):
        for dx in range(-sx, sx + 1):
            a = sample[:, max(0, -dy):height - max(0, dy), max(0, -dx):width - max(0, dx)]
            b = reference[:, max(0, dy):height - max(0, -dy), max(0, dx):width - max(0, -dx)]
            best = min(best, float(((a - b) ** 2).mean()))
    return best ** 0.5 / scale


def coherence(sample: torch.Tensor, reference: torch.Tensor, patch_size: int = 7, exact: bool = True) -> float:
    """Mean over the sample's patches of the distance to the nearest reference patch (0: every sample
    patch occurs in the reference). ``exact=False`` uses the proposed neighbours of
    :func:`nearest_patches` without the dense check (an upper bound, usually equal)."""
    queries, dataset = extract_patches(sample, patch_size), extract_patches(reference, patch_size)
    return float(nearest_patches(queries, dataset, exact=exact)[0].double().mean())


def completeness(sample: torch.Tensor, reference: torch.Tensor, patch_size: int = 7, exact: bool = True) -> float:
    """Mean over the reference's patches of the distance to the nearest sample patch (0: every reference
    patch is represented in the sample)."""
    return coherence(reference, sample, patch_size, exact)


def copy_fraction(sample: torch.Tensor, reference: torch.Tensor, patch_size: int = 7,
                  tolerance: float = 2 / 255, candidates: int = 8) -> float:
    """The largest share of the sample's pixels that is one verbatim crop of the reference.

    Each sample patch whose nearest reference patch matches within ``tolerance`` (RMS, in [-1, 1] units)
    votes for its translation (reference position − sample position). For the most voted translations,
    the pixels covered by matching patches of that translation are counted; the best share is returned.
    1 means the sample is a crop of the reference; 0 means no patch is copied.
    """
    channels, height, width = sample.shape
    rows, cols = patch_grid(height, width, patch_size)
    ref_cols = patch_grid(reference.shape[1], reference.shape[2], patch_size)[1]
    # exact for every patch that may match: those farther than the tolerance need no exact nearest row
    dist, index = nearest_patches(extract_patches(sample, patch_size), extract_patches(reference, patch_size),
                                  within=tolerance ** 2)
    matched = dist <= tolerance ** 2
    if not bool(matched.any()):
        return 0.0
    positions = torch.arange(rows * cols, device=index.device)
    offset = (index // ref_cols - positions // cols) * (width + reference.shape[2]) + (index % ref_cols - positions % cols)
    votes = torch.unique(offset[matched], return_counts=True)
    best = 0.0
    for value in votes[0][votes[1].argsort(descending=True)[:candidates]]:
        footprint = (matched & (offset == value)).double()[:, None].expand(-1, patch_size ** 2)
        covered = fold_patches(footprint, (1, height, width), patch_size, rho=float("inf")) > 0
        best = max(best, float(covered.double().mean()))
    return best


def seam_error(image: torch.Tensor, direction: str = "both") -> float:
    """How visible the wrap-around seam of a tiled image is, in 8-bit grey levels (0: no seam).

    Along each tiled axis: the mean |difference| between the last and the first column (or row), minus
    the median over the image's interior neighbouring column pairs of their mean |difference|, clamped
    at 0 and scaled by 255/2 from [-1, 1]; the larger of the two axes for 'both'. A seam no stronger than
    a typical step between neighbouring columns inside the image scores 0.
    """
    check(direction in ("both", "horizontal", "vertical"), f"direction must be both, horizontal or vertical, got {direction!r}")
    image = image.double()
    dims = {"horizontal": [-1], "vertical": [-2], "both": [-1, -2]}[direction]
    errors = []
    for dim in dims:
        check(image.shape[dim] >= 3, "a seam error needs at least 3 columns and rows")
        seam = (image.narrow(dim, 0, 1) - image.narrow(dim, -1, 1)).abs().mean()
        steps = image.diff(dim=dim).abs().movedim(dim, 0).flatten(1).mean(1)
        errors.append(float((seam - steps.median()).clamp_min(0)) * 127.5)
    return max(errors)


def _local_std(image: torch.Tensor, window: int) -> torch.Tensor:
    """The standard deviation of the grey image inside each non-overlapping window × window square."""
    grey = image.mean(0, dtype=torch.float64)[None, None]  # no float64 copy of every channel (gigapixel outputs)
    mean = torch.nn.functional.avg_pool2d(grey, window, window)
    return (torch.nn.functional.avg_pool2d(grey * grey, window, window) - mean * mean).clamp_min(0).sqrt()[0, 0]


def flat_squares(sample: torch.Tensor, reference: torch.Tensor, window: int = 32, level: float = 0.5) -> torch.Tensor:
    """Which of the sample's non-overlapping window × window squares are washed out, (H // window, W // window):
    those whose grey standard deviation is below ``level`` times the reference's median one."""
    check(level > 0 and window >= 2, f"window must be >= 2 and level positive, got {window} and {level}")
    check(min(sample.shape[-2:]) >= window and min(reference.shape[-2:]) >= window,
          f"flat squares need images of at least {window} x {window} pixels; lower window")
    return _local_std(sample, window) < level * _local_std(reference, window).median()


def flat_fraction(sample: torch.Tensor, reference: torch.Tensor, window: int = 32, level: float = 0.5) -> float:
    """The share of the sample washed out: the fraction of its :func:`flat_squares`.

    A sample that collapsed into smooth, texture-less regions (an averaging sampler's failure, which a
    patch distance on one crop can miss) scores high; the reference itself scores near 0 unless it is
    smooth in places.
    """
    return float(flat_squares(sample, reference, window, level).double().mean())


def symmetry_error(image: torch.Tensor, axis: str = "horizontal") -> float:
    """Mean |image − its mirror image| in 8-bit grey levels (0: exactly symmetric); 'horizontal' flips
    left↔right, 'vertical' top↔bottom."""
    check(axis in ("horizontal", "vertical"), f"axis must be 'horizontal' or 'vertical', got {axis!r}")
    image = image.double()
    return float((image - image.flip(-1 if axis == "horizontal" else -2)).abs().mean()) * 127.5
