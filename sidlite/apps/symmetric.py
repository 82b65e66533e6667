"""Symmetric generation (spec §8.2): new images with an exact mirror symmetry.

After every denoiser call, at every level and step, the estimate x̂ is mirrored: one half is kept and
its flip written over the other half (for an odd size the centre row or column is kept as it is). ε̂ is
computed from the mirrored x̂, so the whole trajectory stays symmetric, and the last step returns the
mirrored x̂ itself, so the pixel-space result is symmetric *exactly* (bit for bit). In a latent space
the decoder is not mirror-equivariant, so the decoded image is mirrored once more.
"""
from __future__ import annotations

from typing import Sequence

import torch

from ..config import SamplingConfig
from ..errors import check
from ..large_output import check_whole_decoding
from ..sampler import Hooks
from ._shared import decode, space_model

SOURCES = {"horizontal": ("left", "right"), "vertical": ("top", "bottom")}


def mirror(image: torch.Tensor, axis: str = "horizontal", source: str | None = None) -> torch.Tensor:
    """Copy the ``source`` half of a (..., H, W) image onto the other half, flipped.

    ``axis`` 'horizontal' mirrors left↔right (``source`` 'left' or 'right'), 'vertical' top↔bottom
    ('top' or 'bottom'); the default source is the first of each pair.
    """
    check(axis in SOURCES, f"axis must be 'horizontal' or 'vertical', got {axis!r}")
    first, second = SOURCES[axis]
    source = source or first
    check(source in SOURCES[axis], f"a {axis} mirror copies from {first!r} or {second!r}, got {source!r}")
    dim = -1 if axis == "horizontal" else -2
    size = image.shape[dim]
    half = size // 2
    out = image.clone()
    if source == first:
        out.narrow(dim, size - half, half).copy_(image.narrow(dim, 0, half).flip(dim))
    else:
        out.narrow(dim, 0, half).copy_(image.narrow(dim, size - half, half).flip(dim))
    return out


class Mirror(Hooks):
    """Mirror every estimate x̂ before ε̂ is computed."""

    def __init__(self, axis: str, source: str | None):
        mirror(torch.zeros(1, 2, 2), axis, source)  # validate once, before any sampling
        self.axis, self.source = axis, source

    def constrain(self, level: int, t: int, x_hat: torch.Tensor) -> torch.Tensor:
        return mirror(x_hat, self.axis, self.source)


def symmetric(image, size: Sequence[int] | None = None, *, axis: str = "horizontal", source: str | None = None,
              latent=None, config: SamplingConfig | None = None, **settings) -> torch.Tensor:
    """A new image with the patches of ``image`` and an exact mirror symmetry, (3, H, W) in [-1, 1].

    ``size`` (pixels) defaults to the input's. ``latent`` picks the working space as in
    :func:`sidlite.generate`; the decoded image is mirrored again. ``settings`` override ``config``
    (default: the 'symmetric' preset of the space, the paper's η = 1, seed 0, except T = 10 instead of
    25 or 50, which the preset notes all work).
    """
    hooks = Mirror(axis, source)
    # one sample: each level's index is dropped when the level ends, and the plan counts one at a time
    codec, model = space_model("symmetric", image, size, latent, config, settings, keep_levels=False)
    check_whole_decoding(model.plan, codec, model.sample_shapes[0])
    result = model.sample(hooks=hooks).image
    return mirror(decode(codec, result), axis, source)  # idempotent on pixels, needed after a decoder


def demo(folder, quick: bool = False) -> tuple[str, str, list[str]]:
    """This application's entry of ``sidlite demo``: a left-right symmetric cat.

    The gallery's inputs and settings live in one place, :mod:`sidlite.commands.demo`; this returns its
    (title, note, file names) after writing the files into ``folder``.
    """
    from pathlib import Path

    from ..commands.demo import symmetry

    entry = symmetry(Path(folder), quick)
    return entry.title, entry.note, [name for name, _ in entry.files]
