"""Inpainting and outpainting: fill a hole (or a border) with the image's own patches.

Two changes to plain generation, both exact and both per pyramid level:

* **The dataset leaves the hole out.** Only patches lying wholly in the known region enter the
  denoiser, so what fills the hole is made of the image's intact patches, never of what the hole held.
* **A data term on x̂.** After every denoiser call the known pixels of x̂ are replaced by the input's:
  x̂ ← m ⊙ y + (1 − m) ⊙ x̂. This is the x-step of EPLL's half-quadratic splitting with A = the mask and
  an infinite data weight (classical connections §6.4), and Efros–Leung's "match only the known
  neighbours" in soft form (§6.2): the queries that overlap the hole see the known context through x_t.
  We chose to constrain x̂ rather than x_t (the re-noised known image) because the last step returns x̂
  itself, so the known pixels of the result are the input's bit for bit.

Before the pyramid is built, the hole is filled with a smooth membrane over its border (Laplace's
equation), so what the hole held cannot leak into the coarser levels; at each level a pixel is in the
hole when more than half of its footprint is. (A conservative hole, grown by the resampler's reach at
every level, leaves the coarse levels too few intact patches: the fill then copies whatever survives
near the border, typically background, and no longer matches its surroundings.)
"""
from __future__ import annotations

import torch

from ..config import SamplingConfig, configure
from ..denoiser import known_patch_grid
from ..errors import SidliteError, check
from ..image_io import as_image
from ..model import default_min_short_side
from ..pyramid import auto_num_levels, build_pyramid, pyramid_shapes
from ..runtime import make_generator, resolve_device
from ..sampler import Hooks, sample_pyramid
from ..schedule import Schedule
from ._shared import app_plan, as_mask, planned_denoisers, rectangle_mask, region_pyramid, smooth_fill


class KnownPixels(Hooks):
    """The data term: the known pixels of every estimate x̂ are the input's."""

    def __init__(self, levels: list[torch.Tensor], known: list[torch.Tensor]):
        self.levels, self.known = levels, known

    def constrain(self, level: int, t: int, x_hat: torch.Tensor) -> torch.Tensor:
        return torch.where(self.known[level], self.levels[level], x_hat)


def _levels_with_patches(shape, hole, patch_size, num_levels, min_short_side):
    """Pyramid shapes and per-level known masks, with every level keeping at least one intact patch.

    With num_levels='auto' the pyramid is made shallower until that holds (a big hole swallows the
    small coarse levels); an explicit depth that cannot hold raises.
    """
    m = default_min_short_side(patch_size) if min_short_side is None else min_short_side
    short = min(shape)
    check(short >= patch_size, f"the image ({shape[0]}x{shape[1]}) is smaller than the {patch_size}x{patch_size} "
                               f"patch; use a smaller `patch_size`")
    depth = auto_num_levels(short, min(m, short)) if num_levels == "auto" else num_levels
    check(isinstance(depth, int) and depth >= 1, f"num_levels must be 'auto' or an integer >= 1, got {num_levels!r}")
    while depth >= 1:
        shapes = pyramid_shapes(shape, depth, m)
        holes = region_pyramid(hole, shapes)
        fits = all(min(s) >= patch_size for s in shapes)
        if fits and all(bool(known_patch_grid(~h, patch_size).any()) for h in holes):
            return shapes, [~h for h in holes]
        if num_levels != "auto":
            break
        depth -= 1
    raise SidliteError(f"the hole leaves no intact {patch_size}x{patch_size} patch at some pyramid level; "
                       f"use a smaller hole, a smaller patch size or fewer levels")


def inpaint(image, mask, *, config: SamplingConfig | None = None, **settings) -> torch.Tensor:
    """Fill the pixels where ``mask`` is True with patches of the rest of ``image``; (3, H, W) in [-1, 1].

    ``mask`` is an (H, W) boolean array or tensor, or an image file whose light pixels mark the hole.
    Pixels outside the mask are returned unchanged (exactly). ``settings`` override ``config``
    (default: the 'inpaint' preset).
    """
    config = configure("inpaint", "pixels", config, settings)
    patch_size = config.patch_size
    device = resolve_device(config.device)
    image = as_image(image).to(device)
    hole = as_mask(mask, tuple(image.shape[-2:]), "mask").cpu()
    check(bool(hole.any()), "the mask marks no pixel to fill; light (white) pixels mark the hole")
    check(not bool(hole.all()), "the mask covers the whole image; leave some known pixels to fill from")
    shapes, known = _levels_with_patches(tuple(image.shape[-2:]), hole, patch_size, config.num_levels,
                                         config.min_side())
    known = [k.to(device) for k in known]
    plan = app_plan(shapes, shapes, image.shape[0], config, known)  # before the fill: a size too large stops here
    levels = build_pyramid(smooth_fill(image, hole), shapes)
    denoisers = planned_denoisers(levels, shapes, config, known, plan=plan)
    schedules = [Schedule.flow_linear(s, config.sigma_min) for s in config.steps_per_level(len(shapes))]
    result = sample_pyramid(denoisers, shapes, schedules, eta=config.eta, generator=make_generator(config.seed, device),
                            hooks=KnownPixels(levels, known), progress=config.progress, device=device, dtype=image.dtype)
    return result.image


def outpaint(image, top: int = 0, bottom: int = 0, left: int = 0, right: int = 0, **options) -> torch.Tensor:
    """Extend ``image`` by the given margins (pixels) with content made of its own patches.

    The image is placed on a larger canvas whose new border is the hole of :func:`inpaint`; ``options``
    go to :func:`inpaint`.
    """
    margins = (top, bottom, left, right)
    check(all(isinstance(v, int) and v >= 0 for v in margins) and any(margins),
          f"outpainting needs non-negative whole margins, at least one positive; got {margins}")
    image = as_image(image)
    channels, height, width = image.shape
    canvas = torch.zeros(channels, height + top + bottom, width + left + right, dtype=image.dtype)
    canvas[:, top:top + height, left:left + width] = image
    hole = torch.ones(canvas.shape[-2:], dtype=torch.bool)
    hole[top:top + height, left:left + width] = False
    return inpaint(canvas, hole, **options)


def demo(folder, quick: bool = False) -> tuple[str, str, list[str]]:
    """This application's entry of ``sidlite demo``: the rocket removed from its launch pad (outpainting has its own section).

    The gallery's inputs and settings live in one place, :mod:`sidlite.commands.demo`; this returns its
    (title, note, file names) after writing the files into ``folder``.
    """
    from pathlib import Path

    from ..commands.demo import inpainting

    entry = inpainting(Path(folder), quick)
    return entry.title, entry.note, [name for name, _ in entry.files]
