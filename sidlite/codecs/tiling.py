"""Overlapping-tile evaluation of a resolution-changing network (a VAE encoder or decoder).

Memory of a convolutional autoencoder grows with the image, so large images go through it in tiles.
The grid is laid out in latent cells: tiles of ``tile`` cells overlapping by ``overlap`` cells (the last
tile of a row or column is moved back to end at the border). Each tile's output is weighted by a
trapezoid that ramps up linearly across the overlap at interior edges (and stays 1 at image borders);
the weighted tiles are summed and divided by the summed weights, so seams cross-fade instead of cut.
"""
from __future__ import annotations

from typing import Callable

import torch


def tile_starts(cells: int, tile: int, overlap: int) -> list[int]:
    """Start cells of the tiles covering ``cells`` cells (one tile if it fits)."""
    if cells <= tile:
        return [0]
    starts = list(range(0, cells - tile, tile - overlap))
    return starts + [cells - tile]


def _ramp(length: int, fade: int, at_start: bool, at_end: bool) -> torch.Tensor:
    """1-D weights of one tile: 1 inside, a linear ramp of ``fade`` samples at interior edges."""
    weights = torch.ones(length, dtype=torch.float64)
    if fade > 0:
        rise = (torch.arange(min(fade, length), dtype=torch.float64) + 0.5) / fade
        if not at_start:
            weights[:rise.numel()] = torch.minimum(weights[:rise.numel()], rise)
        if not at_end:
            weights[length - rise.numel():] = torch.minimum(weights[length - rise.numel():], rise.flip(0))
    return weights


def tiled_map(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, cells: tuple[int, int],
              in_per_cell: int, out_per_cell: int, out_channels: int, tile: int, overlap: int) -> torch.Tensor:
    """Apply ``fn`` ((1, C, h, w) -> (1, C', h', w')) to ``x`` (1, C, H, W) tile by tile and blend.

    ``cells`` is the latent grid (h, w); one cell is ``in_per_cell`` input samples and ``out_per_cell``
    output samples per side (encode: cell_size and 1; decode: 1 and cell_size).
    """
    rows, cols = cells
    out = torch.zeros(1, out_channels, rows * out_per_cell, cols * out_per_cell, dtype=torch.float64, device=x.device)
    total = torch.zeros(1, 1, rows * out_per_cell, cols * out_per_cell, dtype=torch.float64, device=x.device)
    fade = overlap * out_per_cell
    for top in tile_starts(rows, tile, overlap):
        for left in tile_starts(cols, tile, overlap):
            bottom, right = min(top + tile, rows), min(left + tile, cols)
            piece = fn(x[..., top * in_per_cell:bottom * in_per_cell, left * in_per_cell:right * in_per_cell])
            wy = _ramp(piece.shape[-2], fade, top == 0, bottom == rows).to(x.device)
            wx = _ramp(piece.shape[-1], fade, left == 0, right == cols).to(x.device)
            weight = wy[:, None] * wx[None, :]
            window = (..., slice(top * out_per_cell, bottom * out_per_cell), slice(left * out_per_cell, right * out_per_cell))
            out[window] += piece.double() * weight
            total[window] += weight
    return (out / total).to(x.dtype)
