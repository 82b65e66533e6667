"""Codecs map an image to the space the sampler works in and back: pixels, a weight-free latent, a VAE.

Every codec has ``encode(image (3, H, W) in [-1, 1]) -> (C', H', W')`` and ``decode(latent) -> image``.
:func:`get_codec` builds one from a short spec: None or 'pixels', 'pca', or 'vae:<model id or folder>'.
"""
from __future__ import annotations

import torch

from ..errors import SidliteError


class Codec:
    """Identity: the sampler works on pixels."""

    name = "pixels"
    factor = 1  # pixels per latent cell along each side

    def fit(self, image: torch.Tensor) -> "Codec":
        """Prepare for ``image`` (a per-image codec learns its basis here); returns self."""
        return self

    def encode(self, image: torch.Tensor) -> torch.Tensor:
        return image

    def decode(self, latent: torch.Tensor) -> torch.Tensor:
        return latent


def get_codec(spec, image: torch.Tensor | None = None) -> Codec:
    """A codec from ``spec`` (None, 'pixels', a :class:`Codec`, …), fitted to ``image`` when given."""
    if isinstance(spec, Codec):
        codec = spec
    elif spec in (None, "none", "pixels"):
        codec = Codec()
    else:
        raise SidliteError(f"unknown latent space {spec!r}; use 'pixels'")
    return codec.fit(image) if image is not None else codec
