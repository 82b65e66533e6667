"""The codec interface every space shares (pixels, the weight-free latent, a VAE) and its identity member.

A codec maps an image (3, H, W) in [-1, 1] to the array the sampler works on, ``encode``, and back,
``decode``. ``cell_size`` is how many pixels one latent cell spans along each side. Codecs that need sides
of a given multiple centre-crop the image first (:meth:`Codec.crop`), so ``decode(encode(x))`` has the
shape of ``crop(x)``, and :meth:`Codec.psnr` measures the round trip against that crop.
"""
from __future__ import annotations

import math

import torch

from ..errors import check


def center_crop(image: torch.Tensor, multiple: int) -> torch.Tensor:
    """The centred window of ``image`` (…, H, W) whose sides are the largest multiples of ``multiple``.

    Cropping (rather than padding) keeps every coded value a real image value; at most
    ``multiple - 1`` pixels go per side pair, split as evenly as possible (the extra one at the bottom/right).
    """
    height, width = image.shape[-2:]
    new_h, new_w = height // multiple * multiple, width // multiple * multiple
    check(new_h > 0 and new_w > 0, f"the image ({height}x{width}) is smaller than one {multiple}x{multiple} "
                                   f"block of this latent space; use a larger image or work in pixels")
    top, left = (height - new_h) // 2, (width - new_w) // 2
    return image[..., top:top + new_h, left:left + new_w]


def psnr(estimate: torch.Tensor, target: torch.Tensor) -> float:
    """Peak signal-to-noise ratio in dB of two [-1, 1] images (peak-to-peak 2, so the same as in [0, 1])."""
    check(estimate.shape == target.shape, f"PSNR needs equal shapes, got {tuple(estimate.shape)} and {tuple(target.shape)}")
    mse = float(((estimate.double() - target.double()) ** 2).mean())
    return math.inf if mse == 0 else 10.0 * math.log10(4.0 / mse)


class Codec:
    """Identity: the sampler works on pixels. Subclasses override ``encode``/``decode`` (and ``fit``)."""

    name = "pixels"
    cell_size = 1  # pixels per latent cell along each side
    multiple = 1  # encode centre-crops the image so both sides are multiples of this
    blockwise = True  # each latent cell decodes on its own, so a latent can be decoded in bands

    def fit(self, image: torch.Tensor) -> "Codec":
        """Prepare for ``image`` (a per-image codec learns its basis here); returns self."""
        return self

    def crop(self, image: torch.Tensor) -> torch.Tensor:
        """The part of ``image`` that :meth:`encode` codes (a centred crop to multiples of ``multiple``)."""
        return center_crop(image, self.multiple) if self.multiple > 1 else image

    def encode(self, image: torch.Tensor) -> torch.Tensor:
        return image

    def decode(self, latent: torch.Tensor, periodic: bool = False) -> torch.Tensor:
        """The image of ``latent``. ``periodic`` asks for a decode that treats the latent as wrapping
        around (for tileable outputs); pixels and blockwise codes are periodic already."""
        return latent

    def network_bytes(self, cells: tuple[int, int], periodic: bool = False) -> int:
        """Working memory of decoding a latent of ``cells`` beyond its output: none for a codec without a network."""
        return 0

    def latent_shape(self, size: tuple[int, int]) -> tuple[int, int]:
        """The latent (h, w) of an (H, W) pixel image: crop to multiples, then divide by ``cell_size``."""
        return (size[0] // self.multiple * self.multiple // self.cell_size,
                size[1] // self.multiple * self.multiple // self.cell_size)

    def psnr(self, image: torch.Tensor) -> float:
        """Reconstruction PSNR (dB) of ``decode(encode(image))`` against the cropped image, both clamped to [-1, 1]."""
        return psnr(self.decode(self.encode(image)).clamp(-1, 1), self.crop(image).clamp(-1, 1))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, cell_size={self.cell_size})"
