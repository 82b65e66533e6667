"""Pyramid shapes shared by the patch baselines (GPNN and GPDM shrink by 3/4 per level)."""
from __future__ import annotations

import math

from ..errors import check


def level_shapes(size: tuple[int, int], factor: float, coarsest: int) -> list[tuple[int, int]]:
    """Shapes finest first, each ``factor`` times the last, down to the last short side >= ``coarsest``."""
    check(0 < factor < 1, f"the pyramid factor must lie in (0, 1), got {factor}")
    height, width = size
    check(min(height, width) >= coarsest, f"the {height}x{width} image is smaller than the coarsest level ({coarsest} px)")
    levels = max(1, 1 + int(math.floor(math.log(coarsest / min(height, width)) / math.log(factor) + 1e-9)))
    return [(max(1, round(height * factor ** l)), max(1, round(width * factor ** l))) for l in range(levels)]


def output_shapes(shapes: list[tuple[int, int]], size: tuple[int, int] | None) -> list[tuple[int, int]]:
    """The output pyramid: the input's shapes scaled by size / input size per axis."""
    if size is None:
        return shapes
    fy, fx = size[0] / shapes[0][0], size[1] / shapes[0][1]
    return [(max(1, round(h * fy)), max(1, round(w * fx))) for h, w in shapes]
