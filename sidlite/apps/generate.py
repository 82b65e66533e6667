"""Unconditional generation: new images with the patch statistics of one image, in pixels or a latent.

The plainest application: the model's own coarse-to-fine sampler with no hooks. Settings start from the
'generate' preset of the working space (:mod:`sidlite.presets`): in pixels P = 15, η = 0, ρ = 0.2 and a
coarsest short side of 1.6·P; in a latent P = 7, η = 1, ρ = ∞ and 2·P.
"""
from __future__ import annotations

from typing import Sequence

import torch

from ..codecs import Codec
from ..config import SamplingConfig
from ..errors import check, is_whole
from ..model import SingleImageModel
from ._shared import space_model


def generation_model(image, size: Sequence[int] | None = None, *, latent=None, config: SamplingConfig | None = None,
                     keep_levels: bool = True, **settings) -> tuple[Codec, SingleImageModel]:
    """The codec and the model for unconditional generation, with nothing sampled yet.

    Building the model plans every level and builds nothing else, so ``generation_model(...)[1].plan``
    shows what a run will cost before it starts. ``settings`` are :class:`SamplingConfig` fields or
    backend options, on top of ``config`` (default: the space's 'generate' preset).
    """
    return space_model("generate", image, size, latent, config, settings, keep_levels)


def generate(image, num_samples: int = 1, *, size: Sequence[int] | None = None, latent=None,
             config: SamplingConfig | None = None, **settings) -> torch.Tensor:
    """Unconditional samples from one image, as a (num_samples, C, H, W) tensor in [-1, 1] (C: the input's
    channels, 3 for a colour image or file; a one-channel tensor gives one-channel samples).

    Sample i uses seed + i; with ``batch_size`` = B the samples run B at a time through each step (one
    index, larger products; the same images up to float rounding). ``size`` is in pixels (default: the input's); ``latent`` picks the space
    ('pca', 'vae:…', see :func:`sidlite.codecs.get_codec`). ``settings`` override ``config`` (default
    the space's preset): ``steps``, ``eta``, ``patch_size``, ``backend`` ('topk:nprobe=4'),
    ``memory_budget`` ('8GB': a size that cannot fit is refused before any work), … and backend options.
    """
    check(is_whole(num_samples) and num_samples >= 1,
          f"the number of samples must be a whole number >= 1, got {num_samples!r}")
    num_samples = int(num_samples)
    codec, model = generation_model(image, size, latent=latent, config=config, keep_levels=num_samples > 1, **settings)
    return torch.stack([codec.decode(image) for image in model.images(num_samples)])
