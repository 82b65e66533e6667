"""A weight-free latent space: a per-image PCA code of 8×8 pixel blocks, fitted in closed form.

Cut the image into non-overlapping b×b blocks (b = 8) of 3·b² = 192 values, subtract the mean block,
and keep the top K = 16 principal components of the image's own blocks (an eigendecomposition of their
192×192 covariance). A block becomes K numbers, one latent cell: 8× fewer cells per side, 16 channels,
the shape of the FLUX.1 VAE's latent, with no weights to download and a fit that takes milliseconds.

* ``encode`` projects the mean-subtracted blocks on the basis; ``decode`` rebuilds every block from its
  own cell (and clamps to [-1, 1]). The code is **blockwise**: each cell decodes alone, so shifting the
  latent by one cell shifts the image by b pixels, and a latent that tiles decodes to an image that tiles.
* **Scale.** The basis is orthonormal, so latent distances are the pixel distances of the projected
  blocks. One global factor s = √(K / 3b²) (= 1/√12) then gives a latent value the same mean square as
  one pixel of its block: a block's squared norm, spread over 192 pixel values, is spread over K = 16
  latent values, 12× denser. With that factor the sampler's noise levels (tuned for [-1, 1] pixels,
  flow-linear, σ up to 1) mean the same per value in both spaces, and distances stay proportional
  (‖Δz‖ = s·‖Δblocks‖), unlike whitening, which would weight faint components as much as strong ones.
* **Geometry.** The image is centre-cropped so both sides are multiples of 16 (2 cells), as for the VAE:
  latent sides stay even, so a half-image shift (tileable) is a whole number of cells.
"""
from __future__ import annotations

import math

import numpy as np
import torch

from ..errors import SidliteError, check
from .base import Codec


def image_to_blocks(image: torch.Tensor, block: int) -> torch.Tensor:
    """(C, H, W) with sides divisible by ``block`` -> (H/b · W/b, C·b²) rows, raster order."""
    channels, height, width = image.shape
    h, w = height // block, width // block
    return image.reshape(channels, h, block, w, block).permute(1, 3, 0, 2, 4).reshape(h * w, channels * block * block)


def blocks_to_image(rows: torch.Tensor, shape: tuple[int, int, int], block: int) -> torch.Tensor:
    """The inverse of :func:`image_to_blocks` for an image of ``shape`` (C, H, W)."""
    channels, height, width = shape
    h, w = height // block, width // block
    return rows.reshape(h, w, channels, block, block).permute(2, 0, 3, 1, 4).reshape(channels, height, width)


class BlockPCACodec(Codec):
    """Per-image PCA of b×b blocks, ``channels`` components, scaled to pixel-like values (see module doc).

    ``fit(image)`` learns the mean block and the basis; call it (or :func:`~sidlite.codecs.get_codec`
    with an image) before ``encode``/``decode``.
    """

    name = "pca"

    def __init__(self, channels: int = 16, block: int = 8, multiple: int = 16, scale: float | None = None):
        check(isinstance(block, int) and block >= 1, f"the block side must be a positive integer, got {block}")
        check(isinstance(channels, int) and 1 <= channels <= 3 * block * block,
              f"the PCA latent keeps between 1 and {3 * block * block} channels for {block}x{block} blocks, got {channels}")
        check(isinstance(multiple, int) and multiple % block == 0,
              f"the crop multiple must be a multiple of the block side {block}, got {multiple}")
        self.channels = channels
        self.cell_size = block
        self.multiple = multiple
        self.scale = scale if scale is not None else math.sqrt(channels / (3 * block * block))
        check(self.scale > 0, f"the latent scale must be positive, got {self.scale}")
        self.mean: torch.Tensor | None = None
        self.basis: torch.Tensor | None = None  # (3·b², K), orthonormal columns
        self.variances: torch.Tensor | None = None  # every component's variance, descending

    def _bands(self, image: torch.Tensor) -> list[torch.Tensor]:
        """The cropped image in bands of whole block rows (about 2²² values each): bounded temporaries."""
        cropped = self.crop(image)
        rows = max(1, 2 ** 22 // (cropped.shape[0] * cropped.shape[2] * self.cell_size)) * self.cell_size
        return [cropped[:, top:top + rows] for top in range(0, cropped.shape[1], rows)]

    def fit(self, image: torch.Tensor) -> "BlockPCACodec":
        """Learn the mean block and the top ``channels`` principal directions of ``image``'s blocks.

        The mean and covariance are accumulated band by band in float64 (two passes: the mean, then the
        centred second moments), so an input of hundreds of megapixels never makes a float64 block copy.
        """
        check(image.dim() == 3 and image.shape[0] == 3, f"the PCA latent codes RGB (3, H, W) images, got {tuple(image.shape)}")
        bands = self._bands(image)
        count = sum(band.shape[1] * band.shape[2] for band in bands) // self.cell_size ** 2
        mean = sum(image_to_blocks(band.double(), self.cell_size).sum(0) for band in bands) / count
        covariance = torch.zeros(mean.shape[0], mean.shape[0], dtype=torch.float64, device=mean.device)
        for band in bands:
            centred = image_to_blocks(band.double(), self.cell_size) - mean
            covariance.addmm_(centred.T, centred)
        covariance /= count
        # NumPy's LAPACK call: milliseconds for 192 x 192, where torch's CPU eigh can take seconds to start
        variances, vectors = (torch.from_numpy(a.copy()) for a in np.linalg.eigh(covariance.cpu().numpy()))
        variances, vectors = variances.flip(0).clamp_min(0).to(mean.device), vectors.flip(1).to(mean.device)
        signs = torch.sign(vectors.gather(0, vectors.abs().argmax(0, keepdim=True)))  # largest entry positive
        self.basis = (vectors[:, :self.channels] * signs[:, :self.channels]).float()
        self.mean, self.variances = mean.float(), variances.float()
        return self

    def _require_fit(self) -> None:
        if self.basis is None:
            raise SidliteError("the PCA latent is not fitted; call codec.fit(image) or get_codec('pca', image) first")

    def explained_variance(self) -> float:
        """The share of the blocks' variance the kept components carry (1.0 = lossless)."""
        self._require_fit()
        total = float(self.variances.sum())
        return 1.0 if total == 0 else float(self.variances[:self.channels].sum()) / total

    def encode(self, image: torch.Tensor) -> torch.Tensor:
        """(3, H, W) in [-1, 1] -> (K, H'/b, W'/b), H' and W' the cropped sides; coded band by band."""
        self._require_fit()
        check(image.dim() == 3 and image.shape[0] == 3, f"the PCA latent codes RGB (3, H, W) images, got {tuple(image.shape)}")
        mean, basis = self.mean.to(image), self.basis.to(image)
        out = []
        for band in self._bands(image):
            codes = (image_to_blocks(band, self.cell_size) - mean) @ basis * self.scale
            out.append(codes.T.reshape(self.channels, band.shape[1] // self.cell_size, band.shape[2] // self.cell_size))
        return torch.cat(out, dim=1).contiguous()

    def decode(self, latent: torch.Tensor, periodic: bool = False) -> torch.Tensor:
        """(K, h, w) -> (3, h·b, w·b) in [-1, 1]; blockwise, so periodic or not is the same decode."""
        self._require_fit()
        check(latent.dim() == 3 and latent.shape[0] == self.channels,
              f"expected a ({self.channels}, h, w) PCA latent, got {tuple(latent.shape)}")
        _, h, w = latent.shape
        codes = latent.reshape(self.channels, h * w).T / self.scale
        rows = codes @ self.basis.to(codes).T + self.mean.to(codes)
        return blocks_to_image(rows, (3, h * self.cell_size, w * self.cell_size), self.cell_size).clamp(-1, 1)

    def __repr__(self) -> str:
        state = "fitted" if self.basis is not None else "not fitted"
        return f"BlockPCACodec(channels={self.channels}, block={self.cell_size}, scale={self.scale:.4f}, {state})"
