"""Tileable generation (spec §8.3): images that repeat seamlessly, left to right and top to bottom.

Patches never wrap around the border, so a plain sample has a seam where its right edge meets its left
edge. Here every denoiser call is replaced by a blend of calls on circularly rolled copies of x_t: rolled
by half the width, the wrap-around seam sits in the middle of the image, where ordinary patches straddle
it and make it consistent. Each rolled estimate is rolled back and used only where its own (moved) seam
is far away; spatial masks on the quarter lines pick which estimate each pixel takes:

* ``num_shifts=4`` (the official code's default): centre block from the unshifted call, left/right
  middle strips from the half-width roll, top/bottom middle strips from the half-height roll, the four
  corners from the diagonal roll: 4 denoiser calls per step, a hard partition.
* ``num_shifts=3`` (the paper's setting): the half-width roll outside the central columns, the
  half-height roll outside the central rows, the unshifted call in the centre; the corners average the
  two rolls. 3 calls per step.
* ``direction='horizontal'`` or ``'vertical'``: one roll plus the unshifted call, tiling along one axis.

The last step skips the Laplacian blend (whose resampler mirrors at the border), so the result is tileable.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from PIL import Image

from ..denoiser import ImageDenoiser
from ..config import SamplingConfig
from ..errors import check
from ..large_output import PREVIEW_LONG_SIDE, check_whole_decoding, preview_shrink
from ..sampler import Hooks
from ._shared import decode, space_model

DIRECTIONS = ("both", "horizontal", "vertical")


def shift_masks(height: int, width: int, direction: str = "both",
                num_shifts: int = 4) -> list[tuple[tuple[int, int], torch.Tensor]]:
    """The (row shift, column shift) of every denoiser call and the (H, W) weight of its estimate."""
    check(direction in DIRECTIONS, f"direction must be one of {', '.join(DIRECTIONS)}, got {direction!r}")
    check(num_shifts in (3, 4), f"num_shifts must be 3 (the paper) or 4 (the official default), got {num_shifts}")
    rows = torch.zeros(height, dtype=torch.bool)
    rows[height // 4:3 * height // 4] = True
    cols = torch.zeros(width, dtype=torch.bool)
    cols[width // 4:3 * width // 4] = True
    inner_r, inner_c = rows[:, None].expand(height, width), cols[None, :].expand(height, width)
    half_h, half_w = height // 2, width // 2
    if direction == "horizontal":
        layout = [((0, 0), inner_c), ((0, half_w), ~inner_c)]
    elif direction == "vertical":
        layout = [((0, 0), inner_r), ((half_h, 0), ~inner_r)]
    elif num_shifts == 4:
        layout = [((0, 0), inner_r & inner_c), ((0, half_w), inner_r & ~inner_c),
                  ((half_h, 0), ~inner_r & inner_c), ((half_h, half_w), ~inner_r & ~inner_c)]
    else:
        layout = [((0, 0), inner_r & inner_c), ((0, half_w), ~inner_c), ((half_h, 0), ~inner_r)]
    return [(shift, mask.float()) for shift, mask in layout]


def _crop(denoiser, mask: torch.Tensor) -> tuple[slice, slice] | None:
    """The (rows, cols) an :class:`ImageDenoiser` needs to give its exact values on ``mask``: the mask's
    bounding box and the P − 1 pixels around it that patches covering it span, the top-left corner on the
    query stride's grid (so the crop's patches are the whole image's). None: denoise the whole image (any
    other denoiser callable, or a crop smaller than a patch)."""
    if not isinstance(denoiser, ImageDenoiser):
        return None
    reach, stride = denoiser.patch_size - 1, denoiser.query_stride
    rows, cols = mask.any(1).nonzero()[:, 0], mask.any(0).nonzero()[:, 0]
    top, left = max(0, int(rows[0]) - reach) // stride * stride, max(0, int(cols[0]) - reach) // stride * stride
    bottom, right = min(mask.shape[0], int(rows[-1]) + 1 + reach), min(mask.shape[1], int(cols[-1]) + 1 + reach)
    if min(bottom - top, right - left) < denoiser.patch_size:
        return None
    return slice(top, bottom), slice(left, right)


def shifted_estimate(denoiser: ImageDenoiser, x_t: torch.Tensor, alpha: float, sigma: float,
                     layout: list[tuple[tuple[int, int], torch.Tensor]]) -> torch.Tensor:
    """x̂ = Σ_k m_k ⊙ roll_k⁻¹(D(roll_k(x_t))) / Σ_k m_k.

    Each rolled call of an :class:`ImageDenoiser` denoises only the crop its mask needs (see
    :func:`_crop`): a pixel's estimate depends only on the patches covering it, so the crop gives
    the whole image's values there, and the four calls of the default layout cost about one call on the
    whole image instead of four. Any other callable ``denoiser(x, α, σ)`` gets whole images.
    """
    height, width = x_t.shape[-2:]
    total = torch.zeros_like(x_t)
    weight = torch.zeros((height, width), dtype=x_t.dtype, device=x_t.device)
    for (dy, dx), mask in layout:
        mask = mask.to(x_t.device, x_t.dtype)
        crop = _crop(denoiser, torch.roll(mask, (dy, dx), (0, 1)) > 0) or (slice(None), slice(None))
        # the rolled image's crop taken straight from x_t, and its estimate added back where those pixels
        # came from: no whole rolled copy of x_t, of its estimate or of the estimate rolled back
        rows = (torch.arange(height, device=x_t.device)[crop[0]] - dy) % height
        cols = (torch.arange(width, device=x_t.device)[crop[1]] - dx) % width
        rows, cols = rows[:, None], cols[None, :]
        estimate = denoiser(x_t[..., rows, cols], alpha, sigma)
        total[..., rows, cols] += estimate * mask[rows, cols]
        weight += mask
    return total.div_(weight)


class ShiftBlend(Hooks):
    """Replace each denoiser call with the blend of rolled calls."""

    def __init__(self, direction: str, num_shifts: int):
        shift_masks(4, 4, direction, num_shifts)  # validate before any sampling
        self.direction, self.num_shifts = direction, num_shifts
        self.layouts: dict[tuple[int, int], list] = {}

    def estimate(self, level, denoiser, x_t, alpha, sigma):
        shape = tuple(x_t.shape[-2:])
        if shape not in self.layouts:
            self.layouts[shape] = shift_masks(*shape, self.direction, self.num_shifts)
        return shifted_estimate(denoiser, x_t, alpha, sigma, self.layouts[shape])


def tile_preview(image: torch.Tensor, rows: int = 2, cols: int = 2) -> torch.Tensor:
    """The image repeated ``rows`` × ``cols`` times, to see whether it tiles."""
    check(rows >= 1 and cols >= 1, f"a preview needs at least 1x1 tiles, got {rows}x{cols}")
    return image.repeat(1, rows, cols)


def tile_preview_pixels(pixels: np.ndarray, rows: int, cols: int, long_side: int = PREVIEW_LONG_SIDE) -> np.ndarray:
    """An 8-bit (H, W[, C]) image repeated ``rows`` × ``cols`` times, shrunk first (area average) where the
    preview's long side would pass ``long_side``: a preview of a large output costs a few MB, not nine
    float copies of it (the command line's previews)."""
    check(rows >= 1 and cols >= 1, f"a preview needs at least 1x1 tiles, got {rows}x{cols}")
    height, width = pixels.shape[:2]
    shrink = preview_shrink(rows * height, cols * width, long_side)
    if shrink > 1:
        size = (max(1, width // shrink), max(1, height // shrink))
        pixels = np.asarray(Image.fromarray(pixels).resize(size, Image.Resampling.BOX))
    return np.tile(pixels, (rows, cols) + (1,) * (pixels.ndim - 2))


def preview_grids(direction: str) -> list[tuple[int, int]]:
    """The tiled previews worth saving for a direction: 2×2 and 3×3, or 1×2 and 1×3 along one axis."""
    return {"both": [(2, 2), (3, 3)], "horizontal": [(1, 2), (1, 3)], "vertical": [(2, 1), (3, 1)]}[direction]


def tileable(image, size: Sequence[int] | None = None, *, direction: str = "both", num_shifts: int = 4,
             latent=None, config: SamplingConfig | None = None, **settings) -> torch.Tensor:
    """A new image with the patches of ``image`` that tiles seamlessly, (3, H, W) in [-1, 1].

    ``size`` (pixels) defaults to the input's. ``latent`` picks the working space as in
    :func:`sidlite.generate`; the result is decoded with ``periodic=True`` when the codec's ``decode``
    accepts it (a VAE's zero padding would otherwise mark the border); blockwise codecs need no such
    option. ``settings`` override ``config`` (default: the 'tileable' preset of the space: coarsest
    short side 2·P, η = 1, seed 0, as the paper's, except T = 10 instead of 25 or 50).
    """
    hooks = ShiftBlend(direction, num_shifts)
    # one sample: each level's index is dropped when the level ends, and the plan counts one at a time
    codec, model = space_model("tileable", image, size, latent, config, settings, keep_levels=False)
    check_whole_decoding(model.plan, codec, model.sample_shapes[0], periodic=True)
    result = model.sample(hooks=hooks).image
    return decode(codec, result, periodic=True)


def demo(folder, quick: bool = False) -> tuple[str, str, list[str]]:
    """This application's entry of ``sidlite demo``: a tileable brick wall and its 2x2 tiling.

    The gallery's inputs and settings live in one place, :mod:`sidlite.commands.demo`; this returns its
    (title, note, file names) after writing the files into ``folder``.
    """
    from pathlib import Path

    from ..commands.demo import tiling

    entry = tiling(Path(folder), quick)
    return entry.title, entry.note, [name for name, _ in entry.files]
