"""Plumbing the applications share: argument checks, the working space (pixels or a latent), masks.

Nothing here samples; each application module owns its hooks and its public function.
"""
from __future__ import annotations

import inspect
import warnings
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from ..codecs import Codec, get_codec
from ..denoiser import ImageDenoiser, known_patch_grid
from ..config import configure
from ..errors import SidliteError, check, is_whole
from ..image_io import as_image, load_image
from ..model import LevelDenoisers, SingleImageModel, check_size
from ..plan import Plan, plan_levels
from ..pyramid import resize
from ..runtime import resolve_device


def space_of(codec: Codec) -> str:
    """The preset space of a codec: 'latent' for any codec that shrinks the image, else 'pixels'."""
    return "latent" if codec.cell_size > 1 else "pixels"


def encode(image, latent) -> tuple[Codec, torch.Tensor]:
    """The codec for ``latent`` fitted to ``image`` and the image in that space (pixels when None); an
    input that whole latent blocks crop is noted."""
    image = as_image(image)
    codec = get_codec(latent, image)
    height, width = image.shape[-2:]
    kept = _whole_blocks(codec, (height, width))
    if kept != (height, width):
        warnings.warn(f"the {codec.name} latent works in whole {codec.multiple}-pixel blocks: the input is cropped "
                      f"to {kept[0]}x{kept[1]} pixels", stacklevel=2)
    return codec, codec.encode(image)


def _whole_blocks(codec: Codec, size: tuple[int, int]) -> tuple[int, int]:
    """The pixels of ``size`` the codec keeps: its latent's cells times their size."""
    cells = codec.latent_shape(size)
    return cells[0] * codec.cell_size, cells[1] * codec.cell_size


def space_size(size: tuple[int, int] | None, codec: Codec) -> tuple[int, int] | None:
    """An output size in pixels as a size in the codec's cells (the codec's own cropping rule), noted where
    whole latent blocks make it smaller."""
    if size is None:
        return None
    size = check_size(size)
    cells = codec.latent_shape(size)
    check(min(cells) >= 1, f"the output size {size} is smaller than one {codec.multiple}x{codec.multiple} latent block")
    made = _whole_blocks(codec, size)
    if made != size:
        warnings.warn(f"the {codec.name} latent works in whole {codec.multiple}-pixel blocks: the output is "
                      f"{made[0]}x{made[1]} pixels, not {size[0]}x{size[1]}", stacklevel=2)
    return cells


def check_patch_fits(shape: tuple[int, int], patch_size: int, codec: Codec, what: str) -> None:
    """Refuse, in one line and in the units the user gave, an ``what`` ('input' or 'output') smaller than the
    patch: pixels, or a latent's cells with the pixels they stand for."""
    if min(shape) >= patch_size:
        return
    if codec.cell_size == 1:
        raise SidliteError(f"the {what} ({shape[0]}x{shape[1]} pixels) is smaller than the {patch_size}x{patch_size} "
                           f"patch; use a {'larger `size`' if what == 'output' else 'larger image'} or a smaller `patch_size`")
    c = codec.cell_size
    raise SidliteError(f"the {what} is {shape[0]}x{shape[1]} cells of the {codec.name} latent ({shape[0] * c}x"
                       f"{shape[1] * c} pixels), smaller than the {patch_size}x{patch_size}-cell patch; use a larger "
                       f"{'`size`' if what == 'output' else 'image (`max_side`)'} or a smaller `patch_size`")


def space_model(application: str, image, size, latent, config, settings: dict,
                keep_levels: bool = False) -> tuple[Codec, SingleImageModel]:
    """The codec for ``latent`` fitted to ``image``, and the model of ``application``'s preset (``config`` and
    ``settings`` on top) in that space, sampling ``size`` pixels (default: the input's) as whole cells."""
    codec, space = encode(image, latent)
    config = configure(application, space_of(codec), config, settings)
    cells = space_size(size, codec)
    for what, shape in (("input", tuple(space.shape[-2:])), ("output", cells or tuple(space.shape[-2:]))):
        check_patch_fits(shape, config.patch_size, codec, what)
    return codec, SingleImageModel.from_config(space, config, cells, keep_levels)


def decode(codec: Codec, latent: torch.Tensor, periodic: bool = False) -> torch.Tensor:
    """Decode; ``periodic`` asks for a circular decode where the codec offers one (a VAE's padding
    otherwise breaks the wrap-around; pixel and blockwise codecs are periodic already)."""
    if periodic and "periodic" in inspect.signature(codec.decode).parameters:
        return codec.decode(latent, periodic=True)
    return codec.decode(latent)


def as_mask(mask, shape: tuple[int, int], what: str = "mask") -> torch.Tensor:
    """A boolean (H, W) mask from a boolean or [0, 1] tensor or array (True above 0.5; a (C, H, W) tensor or
    an (H, W, C) array averaged over its channels), a PIL image or an image file (pixels lighter than
    mid-grey are True).

    A file or PIL image of another size but the same aspect ratio (say, drawn on the full-size photo before
    ``--max-side`` shrank it) is resized to ``shape``.
    """
    if isinstance(mask, (str, Path, Image.Image)):
        grey = (load_image(mask) if not isinstance(mask, Image.Image) else as_image(mask)).mean(0, keepdim=True)
        height, width = grey.shape[-2:]
        check(abs(height / width - shape[0] / shape[1]) < 0.02 * shape[0] / shape[1],
              f"the {what} image is {height}x{width}, not the aspect ratio of the {shape[0]}x{shape[1]} image; "
              f"draw it on the input (any size with the input's aspect ratio works)")
        mask = resize(grey, tuple(shape))[0] > 0.0  # [-1, 1]: lighter than mid-grey
    if isinstance(mask, np.ndarray):
        if mask.ndim == 3 and mask.shape[2] in (1, 3, 4) and mask.shape[0] not in (1, 3, 4):
            mask = mask.astype(np.float64).mean(2) / (255.0 if mask.dtype == np.uint8 else 1.0)  # (H, W, C), as drawn
        mask = torch.from_numpy(np.ascontiguousarray(mask))
    check(isinstance(mask, torch.Tensor), f"a {what} is an (H, W) array, tensor or image file, got {type(mask).__name__}")
    if mask.dim() == 3:
        mask = mask.float().mean(0)
    check(mask.dim() == 2, f"a {what} is (H, W), got shape {tuple(mask.shape)}")
    check(tuple(mask.shape) == tuple(shape),
          f"the {what} is {mask.shape[0]}x{mask.shape[1]} but the image is {shape[0]}x{shape[1]}; use the same size")
    return mask.bool() if mask.dtype == torch.bool else mask > 0.5


def rectangle_mask(shape: tuple[int, int], top: int, left: int, height: int, width: int) -> torch.Tensor:
    """A boolean (H, W) mask that is True inside the rectangle (clipped to the image)."""
    for name, value in (("top", top), ("left", left), ("height", height), ("width", width)):
        check(is_whole(value), f"a rectangle's {name} is a whole number of pixels, got {value!r}")
    top, left, height, width = int(top), int(left), int(height), int(width)
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


def app_plan(dataset_shapes: list[tuple[int, int]], output_shapes: list[tuple[int, int]], channels: int, config,
             known: list[torch.Tensor] | None = None) -> Plan:
    """The per-level plan of an application (:func:`sidlite.plan.plan_levels` under ``config``'s memory budget
    and query stride), checked: a size that cannot fit is refused in one line, before any work. Level i's
    dataset is the patches of a ``dataset_shapes[i]`` image (those wholly in ``known[i]``, when given); one
    level's index is held at a time (:func:`planned_denoisers` builds each as its level starts, or one serves
    every level)."""
    counts = None if known is None else [int(known_patch_grid(k, config.patch_size).sum()) for k in known]
    return plan_levels([tuple(s) for s in dataset_shapes], [tuple(s) for s in output_shapes], channels,
                       config.patch_size, config.backend, device=resolve_device(config.device),
                       memory_budget=config.memory_budget, query_stride=config.query_stride,
                       dataset_patches=counts).check()


def planned_denoisers(datasets: list[torch.Tensor], output_shapes: list[tuple[int, int]], config,
                      known: list[torch.Tensor] | None = None, shared_index: bool = False,
                      plan: Plan | None = None) -> Sequence[ImageDenoiser]:
    """One denoiser per output level as :func:`app_plan` decides (backend and options, stride, band height),
    over ``datasets[i]``, level i's dataset image; ``plan``, when the caller made it already. Each is built
    when its level is first asked for and dropped when another level is (:class:`~sidlite.model.LevelDenoisers`),
    as the plan counts them. With ``shared_index`` (``datasets`` then repeats one image) one index serves every
    level, planned for the finest."""
    plan = plan or app_plan([d.shape[-2:] for d in datasets], output_shapes, datasets[0].shape[0], config, known)
    if shared_index:
        return [ImageDenoiser.from_plan(plan.levels[0], datasets[0], config.patch_size, config.rho)] * len(datasets)

    def build(level: int) -> ImageDenoiser:
        return ImageDenoiser.from_plan(plan.levels[level], datasets[level], config.patch_size, config.rho,
                                       known=None if known is None else known[level])
    return LevelDenoisers(build, len(datasets), datasets[0].shape[0], keep=False)


def smooth_fill(image: torch.Tensor, region: torch.Tensor, iterations: int | None = None) -> torch.Tensor:
    """``image`` with ``region`` replaced by a smooth membrane over its border values (Laplace's equation),
    so whatever the region held cannot reach the coarser levels of a pyramid built from the result.

    With ``iterations``: that many Jacobi sweeps (each hole pixel becomes the mean of its 3×3 neighbours)
    from the mean known colour, over the whole image, as chapter 10 writes them out. By default, a
    coarse-to-fine solve on the hole's bounding box: the membrane of a half-size copy (each 2×2 block with a known
    pixel known, as their mean) is the start, then :data:`FINE_SWEEPS` sweeps: about the work of
    70 sweeps of the box (with a margin as wide as the hole) instead of one per pixel of the image's long
    side, and nearer the converged membrane (a 1024² image with a 300² hole: 0.62 s against 12.5 s; a 512² one
    with a 150² hole: at most 0.045 from the converged membrane against 0.38). Either way only pixels
    outside the region enter."""
    region = region.to(image.device)
    if iterations is not None:
        return _jacobi(torch.where(region, image[:, ~region].mean(1)[:, None, None], image), region, iterations)
    rows, cols = region.any(1).nonzero()[:, 0], region.any(0).nonzero()[:, 0]
    if rows.numel() == 0:
        return image
    # the box with a margin as wide as it: the coarser copies keep a ring of known pixels around the hole
    margin = max(int(rows[-1] - rows[0]), int(cols[-1] - cols[0])) + 2
    box = (slice(None), slice(max(0, int(rows[0]) - margin), int(rows[-1]) + 1 + margin),
           slice(max(0, int(cols[0]) - margin), int(cols[-1]) + 1 + margin))
    filled = image.clone()
    filled[box] = _membrane(image[box], region[box[1:]])
    return filled


#: Jacobi sweeps at each scale of :func:`smooth_fill`'s coarse-to-fine solve, and the side up to which a box
#: is solved directly instead: side² sweeps from the mean colour, enough to converge there.
FINE_SWEEPS, DIRECT_SIDE = 50, 16


def _jacobi(x: torch.Tensor, region: torch.Tensor, sweeps: int) -> torch.Tensor:
    """``sweeps`` Jacobi sweeps of Laplace's equation on ``region`` (the 3×3 mean of the pixels inside the image)."""
    for _ in range(sweeps):
        average = F.avg_pool2d(x[None], 3, stride=1, padding=1, count_include_pad=False)[0]
        x = torch.where(region, average, x)
    return x


def _membrane(image: torch.Tensor, region: torch.Tensor) -> torch.Tensor:
    """The coarse-to-fine membrane of :func:`smooth_fill` on one box."""
    known = ~region
    if max(region.shape) <= DIRECT_SIDE:  # (a box with a known pixel keeps one at every size)
        start = image[:, known].mean(1)[:, None, None]
        return _jacobi(torch.where(region, start, image), region, max(region.shape) ** 2)  # converged
    height, width = region.shape
    pad = (0, width % 2, 0, height % 2)  # even sides; the padding counts as unknown
    share = F.avg_pool2d(F.pad(known[None].to(image.dtype), pad), 2)[0]  # the known share of each 2x2 block
    sums = F.avg_pool2d(F.pad(torch.where(known, image, 0.0)[None], pad), 2)[0]
    # a block with any known pixel is known, as their mean: a thin box keeps its border at every size
    coarse = sums / share.clamp_min(0.25)
    start = F.interpolate(_membrane(coarse, share == 0)[None], scale_factor=2, mode="bilinear", align_corners=False)[0]
    return _jacobi(torch.where(region, start[:, :height, :width], image), region, FINE_SWEEPS)


def feather(region: torch.Tensor, width: float) -> torch.Tensor:
    """A soft (H, W) weight: 1 on ``region``, falling smoothly to 0 over about ``width`` pixels outside it."""
    weight = region.float()
    if width <= 0:
        return weight
    reach = max(1, round(width))
    grown = F.max_pool2d(weight[None, None], 2 * reach + 1, stride=1, padding=reach)
    box = F.avg_pool2d(grown, 2 * reach + 1, stride=1, padding=reach, count_include_pad=False)
    return torch.maximum(weight, box[0, 0].clamp(0, 1))
