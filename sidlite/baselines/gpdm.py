"""GPDM (Elnekave and Weiss, ECCV 2022): generation by matching the input's patch distribution.

Coarse to fine over a pyramid shrinking by 3/4 per level; at each level the output's pixels are moved by
Adam to lower the patch sliced-Wasserstein distance to the input level, with fresh random directions
every step:

    L(x) = (1/K) Σ_k (1/N) Σ_n ( sort_n⟨θ_k, p_n(x)⟩ − sort_n⟨θ_k, p_n(y)⟩ )²

over the N patches p_n of the output x and of the input y (sorted projections match quantiles; with
different patch counts the input's are interpolated at the output's quantiles). The loss is zero
exactly when the projected patch distributions agree, whatever the arrangement: no nearest-neighbour
search. Our code, after the paper's description; steps and directions are set for a CPU.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ..errors import check
from ..pyramid import resize
from ._common import noisy_pyramid_start


def _patches(image: torch.Tensor, patch_size: int) -> torch.Tensor:
    """(N, C·P²) patches through unfold, differentiable."""
    return F.unfold(image[None], patch_size)[0].T


def _quantiles(sorted_values: torch.Tensor, count: int) -> torch.Tensor:
    """Rows sorted along the last axis (K, N), resampled at ``count`` evenly spaced quantiles (linear)."""
    n = sorted_values.shape[-1]
    if n == count:
        return sorted_values
    pos = (torch.arange(count, dtype=sorted_values.dtype) + 0.5) * n / count - 0.5
    lo = pos.floor().clamp(0, n - 1).long()
    hi = (lo + 1).clamp(max=n - 1)
    frac = (pos - lo).clamp(0, 1)
    return sorted_values[:, lo] * (1 - frac) + sorted_values[:, hi] * frac


def patch_swd_loss(sample: torch.Tensor, target_patches: torch.Tensor, directions: torch.Tensor,
                   patch_size: int) -> torch.Tensor:
    """GPDM's loss: mean over directions and quantiles of the squared difference of sorted projections."""
    # (K, N) layout: each direction's projections are contiguous, so the sorts run along rows
    projected = (directions.T @ F.unfold(sample[None], patch_size)[0]).sort(-1).values
    target = _quantiles((directions.T @ target_patches.T).sort(-1).values, projected.shape[-1])
    return ((projected - target) ** 2).mean()


def gpdm(image, *, size: tuple[int, int] | None = None, seed: int = 0, patch_size: int = 7,
         ratio: float = 0.75, coarsest: int = 21, noise: float = 0.75, steps: int = 100,
         num_projections: int = 64, lr: float = 0.05) -> torch.Tensor:
    """One GPDM sample (3, H, W) in [-1, 1] from one image.

    The coarsest level starts from the shrunken input plus Gaussian noise (``noise`` in [0, 1] pixel
    units); every level runs ``steps`` Adam steps (learning rate ``lr`` in [-1, 1] units) on the patch
    SWD with ``num_projections`` random unit directions drawn afresh each step.
    """
    check(isinstance(steps, int) and steps >= 1, f"steps must be an integer >= 1, got {steps}")
    image, shapes, levels, outs, generator, x = noisy_pyramid_start(image, ratio, coarsest, patch_size, size, seed, noise)
    dim = image.shape[0] * patch_size ** 2
    for l in range(len(shapes) - 1, -1, -1):
        if l < len(shapes) - 1:
            x = resize(x.detach(), outs[l])
        target = _patches(levels[l], patch_size).detach()
        x = x.detach().clone().requires_grad_(True)
        optimizer = torch.optim.Adam([x], lr=lr)
        for _ in range(steps):
            directions = torch.randn(dim, num_projections, generator=generator)
            directions /= directions.norm(dim=0, keepdim=True)
            optimizer.zero_grad()
            patch_swd_loss(x, target, directions, patch_size).backward()
            optimizer.step()
    return x.detach().clamp(-1, 1)
