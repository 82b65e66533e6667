"""What the patch baselines share: their pyramid (GPNN and GPDM shrink by 3/4 per level) and its
noisy coarsest start."""
from __future__ import annotations

import math

import torch

from ..errors import check
from ..image_io import as_image
from ..pyramid import resize
from ..runtime import make_generator


def level_shapes(size: tuple[int, int], ratio: float, coarsest: int) -> list[tuple[int, int]]:
    """Shapes finest first, each ``ratio`` times the last, down to the last short side >= ``coarsest``."""
    check(0 < ratio < 1, f"the pyramid ratio must lie in (0, 1), got {ratio}")
    height, width = size
    check(min(height, width) >= coarsest, f"the {height}x{width} image is smaller than the coarsest level ({coarsest} px)")
    levels = max(1, 1 + int(math.floor(math.log(coarsest / min(height, width)) / math.log(ratio) + 1e-9)))
    return [(max(1, round(height * ratio ** l)), max(1, round(width * ratio ** l))) for l in range(levels)]


def output_shapes(shapes: list[tuple[int, int]], size: tuple[int, int] | None) -> list[tuple[int, int]]:
    """The output pyramid: the input's shapes scaled by size / input size per axis."""
    if size is None:
        return shapes
    fy, fx = size[0] / shapes[0][0], size[1] / shapes[0][1]
    return [(max(1, round(h * fy)), max(1, round(w * fx))) for h, w in shapes]


def noisy_pyramid_start(image, ratio: float, coarsest: int, patch_size: int, size: tuple[int, int] | None,
                        seed: int, noise: float):
    """The input as a float CPU image, its level shapes and levels (finest first), the output shapes, the
    seeded generator, and the start: the coarsest level (resized to the output's) plus noise of std 2·noise."""
    image = as_image(image).float().cpu()
    shapes = level_shapes(tuple(image.shape[1:]), ratio, max(coarsest, patch_size))
    outs = output_shapes(shapes, size)
    levels = [image if l == 0 else resize(image, shape) for l, shape in enumerate(shapes)]
    generator = make_generator(seed)
    x = resize(levels[-1], outs[-1]) if outs[-1] != shapes[-1] else levels[-1].clone()
    x = x + 2 * noise * torch.randn(x.shape, generator=generator)
    return image, shapes, levels, outs, generator, x
