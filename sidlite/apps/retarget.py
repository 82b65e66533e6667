"""Retargeting (spec §8.1): the image at any output size, its content kept at its own proportions.

The coarsest level of the output is not sampled: it is the input plainly resized to the target size
and then shrunk to that level, which pins the layout (where sky, cat and floor go) to the new aspect
ratio. Every finer level is sampled from noise with the denoisers of the *original* image's pyramid, so
the detail is made of unstretched patches of the input; the Laplacian blend pulls each level's low band
towards the level below it, i.e. towards the stretched layout.
"""
from __future__ import annotations

from typing import Sequence

import torch

from ..config import SamplingConfig, configure
from ..errors import check
from ..image_io import as_image
from ..model import SingleImageModel
from ..pyramid import build_pyramid, resize
from ..sampler import Hooks
from ._shared import check_size


class FixedLayout(Hooks):
    """The coarsest level is a given image (the stretched layout); every other level is sampled."""

    def __init__(self, coarsest: int, layout: torch.Tensor):
        self.coarsest = coarsest
        self.layout = layout

    def fixed_result(self, level: int) -> torch.Tensor | None:
        return self.layout if level == self.coarsest else None


def retarget(image, size: Sequence[int], *, config: SamplingConfig | None = None, **settings) -> torch.Tensor:
    """The image at ``size`` = (H, W) pixels, as a (3, H, W) tensor in [-1, 1].

    ``settings`` override ``config`` (default: the 'retarget' preset, :mod:`sidlite.presets`: the
    paper's η = 1, seed 0, coarsest short side = P, except T = 10 instead of 25, which the preset notes
    looks near-identical and is 2.5× faster).
    """
    config = configure("retarget", "pixels", config, settings)
    size = check_size(size)
    image = as_image(image)
    # one sample: each level's index is dropped when the level ends, and the plan counts one at a time
    model = SingleImageModel.from_config(image, config, size, keep_levels=False)
    check(model.num_levels >= 2, "retargeting needs at least 2 levels (the coarsest is the fixed layout); "
                                 "use a larger image or a smaller patch size")
    layout = build_pyramid(resize(image.to(model.device), size), model.sample_shapes)[-1]
    return model.sample(hooks=FixedLayout(model.num_levels - 1, layout)).image


def demo(folder, quick: bool = False) -> tuple[str, str, list[str]]:
    """This application's entry of ``sidlite demo``: the cat 1.6x wider, beside a plain stretch.

    The gallery's inputs and settings live in one place, :mod:`sidlite.commands.demo`; this returns its
    (title, note, file names) after writing the files into ``folder``.
    """
    from pathlib import Path

    from ..commands.demo import retargeting

    entry = retargeting(Path(folder), quick)
    return entry.title, entry.note, [name for name, _ in entry.files]
