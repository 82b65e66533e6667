"""Codecs map an image to the space the sampler works in and back: pixels, a weight-free latent, a VAE.

Every codec has ``encode(image (3, H, W) in [-1, 1]) -> (C', H', W')``, ``decode(latent, periodic=False)
-> image``, ``cell_size`` (pixels per latent cell along a side), ``crop(image)`` (what ``encode`` codes) and
``psnr(image)`` (round-trip quality). :func:`get_codec` builds one from a short spec:

* None or 'pixels': the identity;
* 'pca' or 'pca:K': the weight-free per-image PCA code of 8×8 blocks (K channels, default 16);
* 'vae:SOURCE': a diffusers VAE from a local folder, a cached Hugging Face id, or a short name
  ('flux', 'sd', 'taesd', 'taef1'); offline only (build :class:`VAECodec` with ``allow_download=True``
  to fetch a model).
"""
from __future__ import annotations

import torch

from ..errors import SidliteError
from .base import Codec, center_crop, psnr
from .pca import BlockPCACodec
from .vae import KNOWN_VAES, VAECodec, load_vae


def _parse(spec: str) -> Codec:
    kind, _, argument = spec.partition(":")
    if kind == "pca":
        if not argument:
            return BlockPCACodec()
        if not argument.isdigit():
            raise SidliteError(f"'pca:K' needs a whole number of channels K, got {spec!r}")
        return BlockPCACodec(channels=int(argument))
    if kind == "vae":
        if not argument:
            raise SidliteError("'vae:' needs a model: vae:<local folder>, vae:<owner/name> or vae:flux|sd|taesd|taef1")
        return VAECodec(argument)
    raise SidliteError(f"unknown latent space {spec!r}; use 'pixels', 'pca' or 'vae:<model id or folder>'")


def get_codec(spec, image: torch.Tensor | None = None) -> Codec:
    """A codec from ``spec`` (None, 'pixels', 'pca', 'pca:K', 'vae:SOURCE' or a :class:`Codec`), fitted
    to ``image`` when given."""
    if isinstance(spec, Codec):
        codec = spec
    elif spec in (None, "none", "pixels"):
        codec = Codec()
    elif isinstance(spec, str):
        codec = _parse(spec.strip())
    else:
        raise SidliteError(f"a latent space is a name such as 'pca' or a Codec, got a {type(spec).__name__}")
    return codec.fit(image) if image is not None else codec


__all__ = ["Codec", "BlockPCACodec", "VAECodec", "KNOWN_VAES", "center_crop", "get_codec", "load_vae", "psnr"]
