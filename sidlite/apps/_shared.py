"""Plumbing the applications share: argument checks, the working space (pixels or a latent), masks.

Nothing here samples; each application module owns its hooks and its public function.
"""
from __future__ import annotations

import inspect
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..codecs import Codec, get_codec
from ..errors import check
from ..image_io import as_image, load_image
from ..pyramid import resize


def space_of(codec: Codec) -> str:
    """The preset space of a codec: 'latent' for any codec that shrinks the image, else 'pixels'."""
    return "latent" if codec.cell_size > 1 else "pixels"


def check_size(size, what: str = "an output size") -> tuple[int, int]:
    """(H, W) as two positive integers."""
    check(size is not None and len(size) == 2 and all(isinstance(v, (int, np.integer)) and v > 0 for v in size),
          f"{what} is two positive integers (height, width), got {size}")
    return int(size[0]), int(size[1])


def encode(image, latent) -> tuple[Codec, torch.Tensor]:
    """The codec for ``latent`` fitted to ``image`` and the image in that space (pixels when None)."""
    image = as_image(image)
    codec = get_codec(latent, image)
    return codec, codec.encode(image)


def space_size(size: tuple[int, int] | None, codec: Codec) -> tuple[int, int] | None:
    """An output size in pixels as a size in the codec's cells (the codec's own cropping rule)."""
    if size is None:
        return None
    cells = codec.latent_shape(check_size(size))
    check(min(cells) >= 1, f"the output size {size} is smaller than one {codec.cell_size}x{codec.cell_size} latent cell")
    return cells


def decode(codec: Codec, latent: torch.Tensor, periodic: bool = False) -> torch.Tensor:
    """Decode; ``periodic`` asks for a circular decode where the codec offers one (a VAE's padding
    otherwise breaks the wrap-around; pixel and blockwise codecs are periodic already)."""
    if periodic and "periodic" in inspect.signature(codec.decode).parameters:
        return codec.decode(latent, periodic=True)
    return codec.decode(latent)


def as_mask(mask, shape: tuple[int, int], what: str = "mask") -> torch.Tensor:
    """A boolean (H, W) mask from a tensor, an array or an image file (pixels lighter than mid-grey are True).

    A file of another size but the same aspect ratio (say, drawn on the full-size photo before
    ``--max-side`` shrank it) is resized to ``shape``.
    """
    if isinstance(mask, (str, Path)):
        grey = load_image(mask).mean(0, keepdim=True)
        height, width = grey.shape[-2:]
        check(abs(height / width - shape[0] / shape[1]) < 0.02 * shape[0] / shape[1],
              f"the {what} file is {height}x{width}, not the shape of the {shape[0]}x{shape[1]} image; "
              f"draw it on the same image")
        mask = resize(grey, tuple(shape))[0] > 0.0  # [-1, 1]: lighter than mid-grey
    if isinstance(mask, np.ndarray):
        mask = torch.from_numpy(mask)
    check(isinstance(mask, torch.Tensor), f"a {what} is an (H, W) array, tensor or image file, got {type(mask).__name__}")
    if mask.dim() == 3:
        mask = mask.float().mean(0)
    check(mask.dim() == 2, f"a {what} is (H, W), got shape {tuple(mask.shape)}")
    check(tuple(mask.shape) == tuple(shape),
          f"the {what} is {mask.shape[0]}x{mask.shape[1]} but the image is {shape[0]}x{shape[1]}; use the same size")
    return mask.bool() if mask.dtype == torch.bool else mask > 0.5


def rectangle_mask(shape: tuple[int, int], top: int, left: int, height: int, width: int) -> torch.Tensor:
    """A boolean (H, W) mask that is True inside the rectangle (clipped to the image)."""
    check(height > 0 and width > 0, f"a rectangle needs a positive height and width, got {height}x{width}")
    mask = torch.zeros(shape, dtype=torch.bool)
    mask[max(0, top):max(0, top + height), max(0, left):max(0, left + width)] = True
    check(bool(mask.any()), f"the rectangle at ({top}, {left}) of size {height}x{width} lies outside the "
                            f"{shape[0]}x{shape[1]} image")
    return mask


def region_pyramid(region: torch.Tensor, shapes: list[tuple[int, int]]) -> list[torch.Tensor]:
    """A boolean (H, W) region at every level, finest first: a coarse pixel belongs to it when more than
    half of its resampled footprint does (the finest level is ``region`` itself when shapes agree)."""
    fraction = region[None].float()
    levels = []
    for shape in shapes:
        levels.append(region if tuple(shape) == tuple(region.shape) else resize(fraction, tuple(shape))[0] > 0.5)
    return levels


def smooth_fill(image: torch.Tensor, region: torch.Tensor, iterations: int | None = None) -> torch.Tensor:
    """``image`` with ``region`` replaced by a smooth membrane over its border values (Jacobi iterations
    of Laplace's equation from the mean colour), so whatever the region held cannot reach the coarser
    levels of a pyramid built from the result."""
    region = region.to(image.device)
    outside = ~region
    x = torch.where(region, image[:, outside].mean(1)[:, None, None], image)
    for _ in range(iterations or max(region.shape)):
        average = F.avg_pool2d(x[None], 3, stride=1, padding=1, count_include_pad=False)[0]
        x = torch.where(region, average, x)
    return x


def feather(region: torch.Tensor, width: float) -> torch.Tensor:
    """A soft (H, W) weight: 1 on ``region``, falling smoothly to 0 over about ``width`` pixels outside it."""
    weight = region.float()
    if width <= 0:
        return weight
    reach = max(1, round(width))
    grown = F.max_pool2d(weight[None, None], 2 * reach + 1, stride=1, padding=reach)
    box = F.avg_pool2d(grown, 2 * reach + 1, stride=1, padding=reach, count_include_pad=False)
    return torch.maximum(weight, box[0, 0].clamp(0, 1))


def demo_image(max_side: int = 96, name: str = "chelsea") -> torch.Tensor:
    """The small bundled input every application demo starts from."""
    from ..examples import example_image

    return example_image(name, max_side)
