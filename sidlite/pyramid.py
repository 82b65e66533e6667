"""Gaussian pyramids: level shapes, antialiased cubic resizing with mirror boundaries, the Laplacian blend.

Level l of an H×W image is ⌈H/2^l⌉ × ⌈W/2^l⌉, finest first. The coarsest level is floored so its short
side is at least ``min_short_side`` (keeping the aspect ratio, never larger than the next finer level).
Resizing uses Keys' cubic kernel (a = -0.5), stretched by 1/scale when shrinking (antialiasing),
with weights normalized to sum to 1 and the boundary mirrored with period 2n (0…n-1, n-1…0).
"""
from __future__ import annotations

import math
from functools import lru_cache

import torch

from .errors import SidliteError, check


def auto_num_levels(short_side: int, min_short_side: int) -> int:
    """Smallest n with min_short_side·2^(n-1) >= short_side: the depth that lands the coarsest on m."""
    check(min_short_side <= short_side,
          f"min_short_side={min_short_side} is larger than the image's short side {short_side}; "
          f"lower it or use a larger image")
    return 1 + max(0, math.ceil(math.log2(short_side / min_short_side) - 1e-12))


def pyramid_shapes(size: tuple[int, int], num_levels: int, min_short_side: int | None = None,
                   ratio: float = 0.5) -> list[tuple[int, int]]:
    """Shapes (H, W) of every level, finest first."""
    height, width = size
    check(height >= 1 and width >= 1, f"sizes must be positive, got {height}x{width}")
    check(isinstance(num_levels, int) and num_levels >= 1, f"num_levels must be an integer >= 1, got {num_levels}")
    shapes = [(math.ceil(height * ratio ** l), math.ceil(width * ratio ** l)) for l in range(num_levels)]
    if min_short_side and num_levels > 1 and min(shapes[-1]) < min_short_side:
        if min(shapes[-2]) < min_short_side:
            limit = 2 + int(math.log2(min(height, width) / min_short_side))
            raise SidliteError(f"{num_levels} levels shrink the {height}x{width} image below min_short_side="
                               f"{min_short_side}; use num_levels <= {limit}")
        short = min(height, width)
        shapes[-1] = (min(math.ceil(height * min_short_side / short), shapes[-2][0]),
                      min(math.ceil(width * min_short_side / short), shapes[-2][1]))
    return shapes


#: Values the resampler gathers at once (taps × outputs × rows): 4 MB, weighted in place, so a resize holds
#: little beyond its output at any size. 2^24 (64 MB, and as much again for the weighted copy) put 128 MB
#: above the plan in every Laplacian blend, and was slower: 1024² down and up 166 against 122 ms, 4096² 3.1
#: against 2.2 s (the 2-core Intel Xeon, one sitting).
GATHER_BLOCK_VALUES = 2 ** 20
#: Axes with at most this many input × output samples are resized by one dense matrix product.
DENSE_RESIZE_ENTRIES = 2 ** 18


def _cubic(x: torch.Tensor, a: float = -0.5) -> torch.Tensor:
    x = x.abs()
    near = ((a + 2) * x - (a + 3)) * x * x + 1
    far = ((a * x - 5 * a) * x + 8 * a) * x - 4 * a
    return torch.where(x <= 1, near, torch.where(x < 2, far, torch.zeros_like(x)))


@lru_cache(maxsize=64)
def _resampling_taps(in_size: int, out_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The (out, taps) input indices (mirrored at the borders) and float64 weights of one axis's resize."""
    scale = out_size / in_size
    stretch = min(scale, 1.0)  # < 1 widens the kernel: antialiasing when shrinking
    centres = (torch.arange(out_size, dtype=torch.float64) + 0.5) / scale - 0.5
    half_width = 2.0 / stretch
    first = torch.floor(centres - half_width).long() + 1
    taps = first[:, None] + torch.arange(int(math.ceil(2 * half_width)) + 1)[None, :]
    weights = _cubic((centres[:, None] - taps) * stretch) * stretch
    weights = weights / weights.sum(1, keepdim=True)
    period = taps.remainder(2 * in_size)
    return torch.where(period >= in_size, 2 * in_size - 1 - period, period), weights


@lru_cache(maxsize=64)
def _resampling_matrix(in_size: int, out_size: int, dtype: torch.dtype, device: str) -> torch.Tensor:
    """The same resize as a dense (in, out) matrix, for axes short enough that a product beats a gather."""
    taps, weights = _resampling_taps(in_size, out_size)
    matrix = torch.zeros(out_size, in_size, dtype=torch.float64).scatter_add_(1, taps, weights)
    return matrix.T.to(dtype=dtype, device=device).contiguous()


def resize_axis(image: torch.Tensor, axis: int, out_size: int) -> torch.Tensor:
    """Resample one axis of ``image`` to ``out_size`` samples (pixel centres aligned).

    Axes with at most :data:`DENSE_RESIZE_ENTRIES` input × output samples use one matrix product (about
    4× faster than the gather on the 2-core CPU for the latent pyramid's 128-cell sides); longer ones
    gather their taps in blocks, whose memory does not grow with the side.
    """
    in_size = image.shape[axis]
    if in_size == out_size:
        return image
    moved = image.movedim(axis, -1)
    if in_size * out_size <= DENSE_RESIZE_ENTRIES:
        return (moved @ _resampling_matrix(in_size, out_size, image.dtype, str(image.device))).movedim(-1, axis)
    taps, weights = _resampling_taps(in_size, out_size)
    taps, weights = taps.to(image.device), weights.to(image.device, image.dtype)
    out = moved.new_empty((*moved.shape[:-1], out_size))
    # rows of the other axis in blocks, so the gathered (…, out, taps) array stays about 4 MB
    block = max(1, GATHER_BLOCK_VALUES // max(1, moved[..., :1, :1].numel() * out_size * taps.shape[1]))
    for start in range(0, moved.shape[-2], block):
        gathered = moved[..., start:start + block, :][..., taps]  # (…, block, out, taps)
        out[..., start:start + block, :] = gathered.mul_(weights).sum(-1)
    return out.movedim(-1, axis)


def resize(image: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Antialiased cubic resize of a (C, H, W) image to (h, w), the axis with the stronger shrink first."""
    for axis, out_size in resize_order(tuple(image.shape[-2:]), size):
        image = resize_axis(image, axis, out_size)
    return image


def resize_order(shape: tuple[int, int], size: tuple[int, int]) -> list[tuple[int, int]]:
    """The (axis, output length) passes :func:`resize` makes from ``shape`` to ``size``: the stronger shrink
    first (the height on a tie), so the second pass has the fewest samples to read."""
    check(size[0] >= 1 and size[1] >= 1, f"sizes must be positive, got {size}")
    order = sorted([(size[0] / shape[0], -2, size[0]), (size[1] / shape[1], -1, size[1])])
    return [(axis, out_size) for _, axis, out_size in order]


def build_pyramid(image: torch.Tensor, shapes: list[tuple[int, int]]) -> list[torch.Tensor]:
    """Levels of ``image`` at ``shapes`` (finest first), each resized from the level before it."""
    levels = [resize(image, shapes[0])]
    for shape in shapes[1:]:
        levels.append(resize(levels[-1], shape))
    return levels


def laplacian_blend(fine: torch.Tensor, coarse: torch.Tensor, upsampled: torch.Tensor | None = None) -> torch.Tensor:
    """Keep ``fine``'s own detail band and take its low band from ``coarse`` (the next coarser result).

    out = up(coarse) + fine - up(down(fine)), with down/up between fine's shape and coarse's shape.
    ``upsampled`` is up(coarse) when the caller already has it (the sampler computes it once per level).
    """
    fine_shape = tuple(fine.shape[-2:])
    low_shape = tuple(coarse.shape[-2:])
    detail = fine - resize(resize(fine, low_shape), fine_shape)
    return (resize(coarse, fine_shape) if upsampled is None else upsampled) + detail
