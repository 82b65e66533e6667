"""Writing outputs too large to hold as one picture: a streaming PNG writer, a preview, a disk check.

A gigapixel RGB image is 3 GB as 8-bit values and 12 GB as float32, so the result is never decoded
whole. The sampler's result (pixels or a latent) is decoded in bands of rows (exactly, for codecs that
decode each cell on its own: pixels and the weight-free PCA latent), each band becomes 8-bit rows of
a PNG written through one zlib stream, and an area-averaged preview (long side 2048, as the paper's
gigapixel script) is accumulated from the same bands. PNG has no side limit below 2³¹ pixels, unlike
JPEG's 65,500.
"""
from __future__ import annotations

import math
import shutil
import struct
import zlib
from pathlib import Path
from typing import Iterator

import numpy as np
import torch
import torch.nn.functional as F

from .errors import SidliteError, check
from .image_io import save_image, to_uint8
from .runtime import format_bytes

PREVIEW_LONG_SIDE = 2048
#: Outputs above this many pixels are streamed (band by band) instead of saved through Pillow.
STREAM_ABOVE_PIXELS = 2 ** 26


def _chunk(handle, tag: bytes, data: bytes) -> None:
    handle.write(struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF))


def write_png_rows(path: Path, height: int, width: int, bands: Iterator[np.ndarray], level: int = 3) -> Path:
    """Write an 8-bit RGB PNG from (h, W, 3) uint8 bands that add up to ``height`` rows."""
    check(0 < height < 2 ** 31 and 0 < width < 2 ** 31, f"PNG sides lie in 1 … 2³¹ − 1, got {height}x{width}")
    compressor = zlib.compressobj(level)
    written = 0
    with open(path, "wb") as handle:
        handle.write(b"\x89PNG\r\n\x1a\n")
        _chunk(handle, b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
        for band in bands:
            check(band.ndim == 3 and band.shape[1:] == (width, 3) and band.dtype == np.uint8,
                  f"a PNG band must be (h, {width}, 3) uint8, got {band.shape} {band.dtype}")
            rows = np.zeros((band.shape[0], 1 + 3 * width), dtype=np.uint8)  # filter byte 0 (None) per row
            rows[:, 1:] = band.reshape(band.shape[0], -1)
            data = compressor.compress(rows.tobytes())
            if data:
                _chunk(handle, b"IDAT", data)
            written += band.shape[0]
        _chunk(handle, b"IDAT", compressor.flush())
        _chunk(handle, b"IEND", b"")
    check(written == height, f"the bands held {written} rows, not {height}")
    return path


def check_disk_space(path: Path, height: int, width: int, count: int = 1) -> None:
    """Refuse, before any sampling, an output that could not fit on its disk (raw 8-bit size as the bound)."""
    folder = Path(path).resolve().parent
    while not folder.exists():
        folder = folder.parent
    need = 3 * height * width * count
    free = shutil.disk_usage(folder).free
    if need > free:
        raise SidliteError(f"{count} output(s) of {height}x{width} may need {format_bytes(need)} on disk but "
                           f"{folder} has {format_bytes(free)} free; free space or choose another --output folder")


def decoded_bands(codec, latent: torch.Tensor, band_cells: int = 64) -> Iterator[torch.Tensor]:
    """The decoded image of ``latent`` as (3, h, W) pixel bands, top to bottom.

    Exact for blockwise codecs (each latent row decodes alone); other codecs decode once and are cut.
    """
    if not getattr(codec, "blockwise", False):
        image = codec.decode(latent)
        for top in range(0, image.shape[-2], band_cells * codec.cell_size):
            yield image[:, top:top + band_cells * codec.cell_size]
        return
    for top in range(0, latent.shape[-2], band_cells):
        yield codec.decode(latent[:, top:top + band_cells])


def save_result(codec, latent: torch.Tensor, path, overwrite: bool = False,
                preview_long_side: int = PREVIEW_LONG_SIDE) -> list[Path]:
    """Decode and save one sampler result; large ones stream to PNG with a ``*_preview.jpg`` beside them.

    Returns the files written (the image, then the preview when one was made).
    """
    path = Path(path)
    height, width = (s * codec.cell_size for s in latent.shape[-2:])
    if height * width <= STREAM_ABOVE_PIXELS:
        return [save_image(codec.decode(latent), path, overwrite=overwrite)]
    if path.exists() and not overwrite:
        raise SidliteError(f"{path} already exists; choose another output or pass --overwrite")
    if path.suffix.lower() != ".png":
        path = path.with_suffix(".png")  # streamed outputs are PNG: no side limit, lossless
    path.parent.mkdir(parents=True, exist_ok=True)
    shrink = max(1, math.ceil(max(height, width) / preview_long_side))
    band_cells = max(1, 2 ** 25 // max(1, width * 3 * 4 * codec.cell_size))  # about 32 MB of float pixels a band
    band_cells = max(shrink, band_cells // shrink * shrink)  # whole preview rows per band
    preview_rows: list[torch.Tensor] = []

    def bands():
        for band in decoded_bands(codec, latent, band_cells):
            preview_rows.append(F.avg_pool2d(band[None].float(), shrink, ceil_mode=True)[0])
            yield to_uint8(band)

    write_png_rows(path, height, width, bands())
    preview_path = path.with_name(f"{path.stem}_preview.jpg")
    preview = save_image(torch.cat(preview_rows, dim=1), preview_path, overwrite=True)
    return [path, preview]
