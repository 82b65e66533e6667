"""NIQE, the no-reference quality score of the paper's Table 1 (Mittal, Soundararajan and Bovik, IEEE SPL 2013).

NIQE asks how far an image's local statistics are from those of undistorted natural photographs,
without a reference image and without a trained network:

1. Luma Y of BT.601 YCbCr in [16, 235], rounded to integers (as the usual implementations do).
2. MSCN coefficients (I − μ)/(σ + 1), with μ and σ the local mean and standard deviation under a 7×7
   Gaussian window (std 7/6, borders replicated).
3. The image is cut into 96×96 blocks (the remainder dropped). Per block, asymmetric generalised
   Gaussian (AGGD) fits: the shape and mean scale of the MSCN values, and the shape, mean and left/right
   scales of the products of neighbouring coefficients in four directions (circular within the block):
   18 numbers. Again on the image halved (antialiased cubic): 36 per block.
4. A Gaussian (μ₁, Σ₁) fitted to the blocks' features is compared with the pristine model (μ₀, Σ₀):
   NIQE = √((μ₀ − μ₁)ᵀ ((Σ₀ + Σ₁)/2)⁺ (μ₀ − μ₁)). Lower is more natural.

The pristine model is a file, like a network's weights: the original release's ``modelparameters.mat``
(fitted on 125 photographs) or the same numbers as BasicSR's ``niqe_pris_params.npz``. Nothing is
downloaded; :func:`NIQEModel.fit` fits one on your own sharp images instead.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import SidliteError, check
from ..pyramid import resize
from .networks import find_weights

BLOCK = 96  # block side at full scale (the original's recommended and only tested value)
NUM_FEATURES = 36
SHAPES = torch.arange(200, 10001, dtype=torch.float64) / 1000  # the shape grid searched by the moment fit


def luma(image: torch.Tensor) -> torch.Tensor:
    """(H, W) float64 luma in [16, 235], rounded, of a (3, H, W) RGB image in [-1, 1] (a 1-channel image
    is taken as gray in [0, 255])."""
    check(image.dim() == 3 and image.shape[0] in (1, 3),
          f"NIQE needs a (3, H, W) or (1, H, W) image, got {tuple(image.shape)}")
    rgb = (image.double().clamp(-1, 1) + 1) / 2
    if rgb.shape[0] == 1:
        return (rgb[0] * 255).round()
    weights = torch.tensor([65.481, 128.553, 24.966], dtype=torch.float64)
    return (16 + torch.einsum("c,chw->hw", weights, rgb)).round()


@lru_cache(maxsize=1)
def _window() -> torch.Tensor:
    x = torch.arange(-3, 4, dtype=torch.float64)
    g = torch.exp(-x ** 2 / (2 * (7 / 6) ** 2))
    w = g[:, None] * g[None, :]
    return (w / w.sum())[None, None]


def mscn(gray: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean-subtracted contrast-normalised coefficients of an (H, W) image, and the local std σ."""
    def smooth(x):
        return F.conv2d(F.pad(x[None, None], (3, 3, 3, 3), mode="replicate"), _window())[0, 0]

    mu = smooth(gray)
    sigma = (smooth(gray * gray) - mu * mu).abs().sqrt()
    return (gray - mu) / (sigma + 1), sigma


def _fit_shape(ratio: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
    """The grid shape whose moment ratio is nearest to each ``ratio`` (the moment-matching estimator)."""
    return SHAPES[(table[None, :] - ratio[:, None]).abs().argmin(1)]


@lru_cache(maxsize=1)
def _ratio_table() -> torch.Tensor:
    """Γ(2/a)² / (Γ(1/a)·Γ(3/a)) over the shape grid: (E|x|)² / E[x²] of a generalised Gaussian of shape a."""
    a = SHAPES
    return torch.exp(2 * torch.lgamma(2 / a) - torch.lgamma(1 / a) - torch.lgamma(3 / a))


def aggd_fit(values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Asymmetric generalised Gaussian fit of each row of ``values`` (B, n): shape α and the left and right
    scales β_l, β_r (Lasmar, Stitou and Berthoumieu 2009, as NIQE uses it)."""
    neg, pos = values < 0, values > 0
    left = ((values ** 2 * neg).sum(1) / neg.sum(1)).sqrt()
    right = ((values ** 2 * pos).sum(1) / pos.sum(1)).sqrt()
    gamma_hat = left / right
    r_hat = values.abs().mean(1) ** 2 / (values ** 2).mean(1)
    r_norm = r_hat * (gamma_hat ** 3 + 1) * (gamma_hat + 1) / (gamma_hat ** 2 + 1) ** 2
    alpha = _fit_shape(r_norm, _ratio_table())
    to_scale = torch.exp(0.5 * (torch.lgamma(1 / alpha) - torch.lgamma(3 / alpha)))
    return alpha, left * to_scale, right * to_scale


def _block_features(coefficients: torch.Tensor, side: int) -> torch.Tensor:
    """The 18 features of every side×side block of an MSCN map whose sides are multiples of ``side``."""
    rows, cols = coefficients.shape[0] // side, coefficients.shape[1] // side
    blocks = coefficients.reshape(rows, side, cols, side).permute(2, 0, 1, 3).reshape(-1, side, side)
    alpha, left, right = aggd_fit(blocks.flatten(1))
    features = [alpha, (left + right) / 2]
    for shift in ((0, 1), (1, 0), (1, 1), (1, -1)):
        products = blocks * torch.roll(blocks, shifts=shift, dims=(1, 2))
        alpha, left, right = aggd_fit(products.flatten(1))
        mean = (right - left) * torch.exp(torch.lgamma(2 / alpha) - torch.lgamma(1 / alpha))
        features += [alpha, mean, left, right]
    return torch.stack(features, 1)


def niqe_applies(image: torch.Tensor) -> bool:
    """Whether a (C, H, W) image holds the two whole blocks NIQE needs."""
    return (image.shape[-2] // BLOCK) * (image.shape[-1] // BLOCK) >= 2


def block_features(image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(blocks, 36) NIQE features of a (C, H, W) image in [-1, 1], and each block's sharpness (mean σ)."""
    gray = luma(image)
    height, width = (s // BLOCK * BLOCK for s in gray.shape)
    check(height > 0 and width > 0,
          f"NIQE needs at least {BLOCK}x{BLOCK} pixels, got {gray.shape[0]}x{gray.shape[1]}")
    gray = gray[:height, :width]
    coefficients, sigma = mscn(gray)
    fine = _block_features(coefficients, BLOCK)
    sharpness = sigma.reshape(height // BLOCK, BLOCK, width // BLOCK, BLOCK).mean((1, 3)).T.reshape(-1)
    half = resize(gray[None] / 255, (height // 2, width // 2))[0] * 255
    coarse = _block_features(mscn(half)[0], BLOCK // 2)
    return torch.cat([fine, coarse], 1), sharpness


def _gaussian(features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-feature mean ignoring NaNs, and the (n − 1)-normalised covariance of the rows without one (a
    block with no negative value, say, has no left scale)."""
    kept = features[~features.isnan().any(1)]
    check(kept.shape[0] >= 2, f"NIQE needs at least 2 blocks of {BLOCK}x{BLOCK} pixels with finite features, "
                              f"got {kept.shape[0]}; use a larger image")
    return features.nanmean(0), torch.cov(kept.T)


@dataclass(frozen=True)
class NIQEModel:
    """The multivariate Gaussian (mean (36,), covariance (36, 36)) of pristine images' block features."""

    mean: torch.Tensor
    cov: torch.Tensor

    @classmethod
    def fit(cls, images, sharpness_threshold: float = 0.75) -> "NIQEModel":
        """Fit a pristine model on your own sharp, undistorted images ((C, H, W) in [-1, 1]): the blocks
        whose mean σ is above ``sharpness_threshold`` × the image's sharpest block, as in the original."""
        kept = []
        for image in images:
            features, sharpness = block_features(image)
            kept.append(features[sharpness > sharpness_threshold * sharpness.max()])
        return cls(*_gaussian(torch.cat(kept)))

    @classmethod
    def pretrained(cls, path: str | Path | None = None) -> "NIQEModel":
        """The original pristine model from a local file (``niqe_pris_params.npz`` or ``modelparameters.mat``,
        found like the networks' weights: see :func:`find_weights`), offline; a one-line error naming the
        file when it is absent."""
        path = find_weights("niqe", path)
        if path.suffix == ".mat":
            from scipy.io import loadmat

            data = loadmat(path)
            mean, cov = data["mu_prisparam"], data["cov_prisparam"]
        else:
            with np.load(path) as data:
                mean, cov = data["mu_pris_param"], data["cov_pris_param"]
        mean, cov = torch.as_tensor(mean, dtype=torch.float64).reshape(-1), torch.as_tensor(cov, dtype=torch.float64)
        if mean.shape != (NUM_FEATURES,) or cov.shape != (NUM_FEATURES, NUM_FEATURES):
            raise SidliteError(f"{path} holds a {tuple(mean.shape)} mean and {tuple(cov.shape)} covariance, "
                               f"not NIQE's {NUM_FEATURES} features; is it the right file?")
        return cls(mean, cov)

    def save(self, path: str | Path) -> None:
        """Write the model as an .npz with the keys :meth:`pretrained` reads."""
        np.savez(path, mu_pris_param=self.mean.numpy(), cov_pris_param=self.cov.numpy())


def niqe(image: torch.Tensor, model: NIQEModel) -> float:
    """NIQE of a (C, H, W) image in [-1, 1] (at least two 96×96 blocks) against a pristine model."""
    mean, cov = _gaussian(block_features(image.cpu())[0])
    diff = model.mean - mean
    return math.sqrt(float(diff @ torch.linalg.pinv((model.cov + cov) / 2) @ diff))

