"""Editing and harmonization: paste or paint into the image, re-noise, and denoise with its own patches.

As in SinGAN's editing and harmonization, the edited image enters the coarse-to-fine sampler part way:
the levels coarser than ``start_level`` are the edited image's own pyramid levels, fixed; from
``start_level`` down to the finest level, each level starts from the edited image at that level
re-noised to ``noise_level`` (x_t = α_t·y' + σ_t·z at the step whose noise level is nearest) and is
denoised by the *original* image's patch denoisers. What was pasted or painted is thereby redrawn with
the image's own patches (its texture, colours and lighting), while its layout survives from the levels
that were not re-noised. Everything outside the edit is close to the input already (its patches are in
the dataset); with ``keep_outside`` the result is additionally composited back onto the input through
a feathered mask of the edit, which keeps the rest of the image exact beyond the feather.
"""
from __future__ import annotations

import warnings

import torch

from ..config import SamplingConfig, configure
from ..errors import check, is_real, user_stacklevel
from ..image_io import as_image
from ..model import SingleImageModel
from ..pyramid import build_pyramid
from ..sampler import Hooks
from ._shared import as_mask, feather, rectangle_mask


def paste(image, piece, top: int, left: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``piece`` pasted into ``image`` with its top-left corner at (top, left), clipped to the image;
    returns the edited image and the boolean mask of the pasted pixels."""
    image, piece = as_image(image), as_image(piece)
    check(piece.shape[0] == image.shape[0], f"the piece has {piece.shape[0]} channels and the image "
                                            f"{image.shape[0]}; give both in colour or both in grey")
    height, width = image.shape[-2:]
    mask = rectangle_mask((height, width), top, left, piece.shape[1], piece.shape[2])  # checks the corner
    top, left = int(top), int(left)
    rows = slice(max(0, -top), min(piece.shape[1], height - top))
    cols = slice(max(0, -left), min(piece.shape[2], width - left))
    edited = image.clone()
    edited[:, mask] = piece[:, rows, cols].to(image.dtype).reshape(image.shape[0], -1)
    return edited, mask


#: An edit whose result differs from the input, inside the edited region, by less than this share of what the
#: edit changed there was redrawn away by the image's own patches (a small foreign object at start_level 1).
ERASED_SHARE = 0.25


class Renoise(Hooks):
    """Levels coarser than ``start_level`` fixed to the edited pyramid; the others start from it re-noised."""

    def __init__(self, edited_levels: list[torch.Tensor], start_level: int, noise_level: float):
        self.levels, self.start_level, self.noise_level = edited_levels, start_level, noise_level

    def fixed_result(self, level):
        return self.levels[level] if level > self.start_level else None

    def start(self, level, schedule, noise):
        t = schedule.index_for_noise_level(self.noise_level)
        return schedule.alphas[t] * self.levels[level] + schedule.sigmas[t] * noise, t


def edit(image, edited, mask=None, *, start_level: int = 1, noise_level: float = 0.5, keep_outside: bool = True,
         feather_width: float | None = None, config: SamplingConfig | None = None, **settings) -> torch.Tensor:
    """Harmonize an edited copy of ``image`` with the original's patches; (3, H, W) in [-1, 1].

    ``edited`` is ``image`` with something pasted or painted in (same size). ``mask`` (True = edited)
    defaults to the pixels where the two differ. ``start_level`` counts levels from the finest (0) and
    is clamped to the coarsest; a coarser start and a higher ``noise_level`` change more. With
    ``keep_outside`` the result is blended into the input with the mask feathered over
    ``feather_width`` pixels (default P). ``settings`` override ``config`` (default: the 'edit' preset).
    """
    config = configure("edit", "pixels", config, settings)
    check(is_real(noise_level) and 0 < noise_level <= 1, f"noise_level must lie in (0, 1], got {noise_level!r}")
    check(isinstance(keep_outside, bool), f"keep_outside is True or False, got {keep_outside!r}")
    check(feather_width is None or (is_real(feather_width) and feather_width >= 0),
          f"feather_width must be a number of pixels >= 0 (or None for the patch size), got {feather_width!r}")
    check(isinstance(start_level, int) and start_level >= 0, f"start_level must be a whole number >= 0, got {start_level}")
    image, edited = as_image(image), as_image(edited)
    check(edited.shape == image.shape, f"the edited image is {tuple(edited.shape)} but the input is "
                                       f"{tuple(image.shape)}; edit a copy of the same size")
    region = (edited - image).abs().amax(0) > 1e-6 if mask is None else as_mask(mask, tuple(image.shape[-2:]))
    check(bool(region.any()), "the edited image equals the input; paste or paint something first")
    # one sample: each level's index is dropped when the level ends, and the plan counts one at a time
    model = SingleImageModel.from_config(image, config, keep_levels=False)
    if start_level > model.num_levels - 1:
        warnings.warn(f"start_level {start_level} is past the coarsest level ({model.num_levels - 1}); re-noising "
                      f"from the coarsest", stacklevel=user_stacklevel())
        start_level = model.num_levels - 1
    hooks = Renoise(build_pyramid(edited.to(model.device), model.sample_shapes), start_level, noise_level)
    result = model.sample(hooks=hooks).image  # the levels Renoise fixes are never built
    inside = region.to(result.device)
    kept = float((result - image.to(result.device))[:, inside].abs().mean())
    if kept < ERASED_SHARE * float((edited - image)[:, region].abs().mean()):
        warnings.warn(f"the edit was redrawn away: inside it the result moved from the input by under "
                      f"{ERASED_SHARE:.0%} of what the edit changed; keep more of it with "
                      f"start_level={max(0, start_level - 1)} or a lower noise_level", stacklevel=user_stacklevel())
    if not keep_outside:
        return result
    weight = feather(region, config.patch_size if feather_width is None else feather_width).to(result.device)
    return weight * result + (1 - weight) * image.to(result.device)


def harmonize(image, piece, top: int, left: int, **options) -> torch.Tensor:
    """Paste ``piece`` at (top, left) and make it look like it belongs (``options`` go to :func:`edit`)."""
    edited, mask = paste(image, piece, top, left)
    return edit(image, edited, mask, **options)


def demo(folder, quick: bool = False) -> tuple[str, str, list[str]]:
    """This application's entry of ``sidlite demo``: a pasted crop harmonized with the image's own patches.

    The gallery's inputs and settings live in one place, :mod:`sidlite.commands.demo`; this returns its
    (title, note, file names) after writing the files into ``folder``.
    """
    from pathlib import Path

    from ..commands.demo import editing

    entry = editing(Path(folder), quick)
    return entry.title, entry.note, [name for name, _ in entry.files]
