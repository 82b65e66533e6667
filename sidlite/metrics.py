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


def nearest_patches(queries: torch.Tensor, dataset: torch.Tensor, chunk: int = 4096) -> tuple[torch.Tensor, torch.Tensor]:
    """For each query row, the mean squared difference to its nearest dataset row, and that row's index.

    The search ranks by ‖y‖² − 2x·y in float32 (one matrix product per chunk, several times faster than
    float64 on a CPU); the distance to the row it picks is then recomputed exactly in float64, so a
    tolerance test on it is exact. Rows tied to within float32 rounding may be swapped, which no
    distance shows.
    """
    queries, dataset = queries.float(), dataset.float().contiguous()
    sq_norms = (dataset.double() ** 2).sum(1).float()
    best, index = [], []
    for start in range(0, queries.shape[0], chunk):
        x = queries[start:start + chunk]
        where = torch.addmm(sq_norms, x, dataset.T, alpha=-2.0).argmin(1)
        value = ((x.double() - dataset[where].double()) ** 2).sum(1)
        best.append(value / dataset.shape[1])
        index.append(where)
    return torch.cat(best).float(), torch.cat(index)


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


def patch_swd(sample: torch.Tensor, reference: torch.Tensor, patch_size: int = 7, num_scales: int = 3,
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
    for level in range(num_scales):
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
    """SinGAN's diversity: the per-pixel standard deviation across samples, averaged over pixels and
    channels, divided by the standard deviation of the reference image's values. 0 means identical samples."""
    check(samples.dim() == 4 and samples.shape[0] >= 2, "pixel diversity needs a (S >= 2, C, H, W) batch of samples")
    return float(samples.double().std(0, unbiased=False).mean() / reference.double().std(unbiased=False))


def coherence(sample: torch.Tensor, reference: torch.Tensor, patch_size: int = 7) -> float:
    """Mean over the sample's patches of the distance to the nearest reference patch (0: every sample
    patch occurs in the reference)."""
    return float(nearest_patches(extract_patches(sample, patch_size), extract_patches(reference, patch_size))[0].mean())


def completeness(sample: torch.Tensor, reference: torch.Tensor, patch_size: int = 7) -> float:
    """Mean over the reference's patches of the distance to the nearest sample patch (0: every reference
    patch is represented in the sample)."""
    return coherence(reference, sample, patch_size)


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
    dist, index = nearest_patches(extract_patches(sample, patch_size), extract_patches(reference, patch_size))
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


def symmetry_error(image: torch.Tensor, axis: str = "horizontal") -> float:
    """Mean |image − its mirror image| in 8-bit grey levels (0: exactly symmetric); 'horizontal' flips
    left↔right, 'vertical' top↔bottom."""
    check(axis in ("horizontal", "vertical"), f"axis must be 'horizontal' or 'vertical', got {axis!r}")
    image = image.double()
    return float((image - image.flip(-1 if axis == "horizontal" else -2)).abs().mean()) * 127.5
