"""Guidance: steer the sampler's estimate x̂₀ up the gradient of any differentiable score of the image.

An *objective* is a callable ``score(x) -> scalar tensor`` on a (C, H, W) image in [-1, 1]; higher is
better. :class:`Guidance` applies the text-style rule of the paper's code to x̂ once per sampler step:

1. momentum: x_m = x̂ at the first step, afterwards x_m = (1 - ω)·x̂_prev + ω·x̂, with x̂_prev the previous
   step's guided estimate;
2. g = ∇ score(x_m), and a soft threshold keeps the strongest pixels: with e = ‖g‖ over channels and q its
   (1 - f) quantile, g' = max(e - q, 0)·g/e on the mask e > q;
3. a self-normalized step whose size is a fraction κ_t of the image's own norm on the mask:
   x̂ ← clamp(x_m + κ_t·(‖x_m ⊙ mask‖ / ‖g' ⊙ mask‖)·g' ⊙ mask, -1, 1), with κ_t = κ·σ_t/σ_start, so
   guidance fades to nothing as the noise does.

Two weight-free objectives live here (a colour palette and a second image's patch statistics); the CLIP
objective, which needs downloaded weights, is in :mod:`sidlite.clip`.
"""
from __future__ import annotations

import math

from typing import Callable

import torch

from .errors import check
from .image_io import as_image
from .patches import extract_patches
from .pyramid import resize
from .runtime import make_generator

Objective = Callable[[torch.Tensor], torch.Tensor]


def soft_threshold(grad: torch.Tensor, fill_factor: float = 0.5) -> tuple[torch.Tensor, torch.Tensor]:
    """Keep the ``fill_factor`` share of pixels with the largest gradient norm, shrunk by the threshold.

    Returns (g', mask) with mask (1, H, W) true where ‖g(p)‖ > q, q the (1 - f) quantile ('nearest').
    """
    check(0.0 < fill_factor <= 1.0, f"fill_factor must lie in (0, 1], got {fill_factor}")
    energy = grad.float().norm(dim=0, keepdim=True)
    q = torch.quantile(energy.flatten(), 1.0 - fill_factor, interpolation="nearest")
    mask = energy > q
    shrunk = torch.nan_to_num((energy - q).clamp_min(0) * grad.float() / energy, nan=0.0)
    return shrunk.to(grad.dtype), mask


def guided_step(x: torch.Tensor, grad: torch.Tensor, gamma: float, fill_factor: float = 0.5) -> torch.Tensor:
    """One self-normalized, soft-thresholded ascent step of size κ relative to ‖x ⊙ mask‖, clamped to [-1, 1]."""
    shrunk, mask = soft_threshold(grad, fill_factor)
    mask = mask.to(x.dtype)
    step_norm = (shrunk * mask).norm()
    if step_norm == 0:
        return x.clamp(-1, 1)
    scale = gamma * (x * mask).norm() / step_norm
    return (x + scale * shrunk * mask).clamp(-1, 1)


def score_gradient(objective: Objective, x: torch.Tensor) -> tuple[torch.Tensor, float]:
    """∇ₓ score(x) for a detached copy of x, and the score's value."""
    with torch.enable_grad():
        leaf = x.detach().clone().requires_grad_(True)
        score = objective(leaf)
        check(isinstance(score, torch.Tensor) and score.dim() == 0,
              f"an objective returns a scalar tensor score, got {type(score).__name__} "
              f"{tuple(score.shape) if isinstance(score, torch.Tensor) else score!r}")
        check(score.requires_grad, "the objective's score does not depend on the image it is given; compute it "
                                   "from that image with torch operations, so that it has a gradient")
        check(bool(torch.isfinite(score)), f"the objective's score is {float(score.detach())}; it must be finite")
        (grad,) = torch.autograd.grad(score, leaf)
    return grad, float(score.detach())


class Guidance:
    """The stateful per-step guidance of text-guided style (momentum, soft threshold, self-normalized step).

    Call :meth:`reset` before a new trajectory, then ``guide(x_hat, sigma_t, sigma_start)`` once per step.
    ``strength`` is κ, ``momentum`` is ω (the weight of the *new* estimate), ``fill_factor`` the share of
    pixels that move, ``iters`` the number of gradient steps per sampler step. ``history`` keeps the score
    seen at every call.
    """

    def __init__(self, objective: Objective, strength: float = 1.0, momentum: float = 0.1,
                 fill_factor: float = 0.5, iters: int = 1):
        check(0 <= strength < math.inf, f"guidance strength must be finite and >= 0, got {strength}")
        check(callable(objective), f"an objective is a callable score of an image, got {objective!r}; give text as prompt=...")
        check(0.0 <= momentum <= 1.0, f"momentum must lie in [0, 1], got {momentum}")
        check(0.0 < fill_factor <= 1.0, f"fill_factor must lie in (0, 1], got {fill_factor}")
        check(isinstance(iters, int) and iters >= 1, f"iters must be an integer >= 1, got {iters}")
        self.objective, self.strength, self.momentum = objective, strength, momentum
        self.fill_factor, self.iters = fill_factor, iters
        self.reset()

    def reset(self) -> None:
        self.previous: torch.Tensor | None = None
        self.history: list[float] = []

    def guide(self, x_hat: torch.Tensor, sigma: float, sigma_start: float) -> torch.Tensor:
        gamma = self.strength * sigma / sigma_start
        x = x_hat.detach()
        for _ in range(self.iters):
            if self.previous is not None:
                x = (1 - self.momentum) * self.previous + self.momentum * x
            grad, value = score_gradient(self.objective, x)
            self.history.append(value)
            x = guided_step(x, grad, gamma, self.fill_factor)
            self.previous = x
        return x


class PaletteObjective:
    """Weight-free: pixels should lie near a palette of colours (the k-means colours of a palette image).

    score(x) = -mean over pixels of the soft minimum (temperature τ) of ‖x(p) - c_k‖² over the colours c_k.
    """

    def __init__(self, palette, colours: int = 8, temperature: float = 0.01, seed: int = 0):
        check(colours >= 1, f"a palette needs at least one colour, got {colours}")
        check(temperature > 0, f"temperature must be positive, got {temperature}")
        image = as_image(palette)
        self.channels = image.shape[0]
        pixels = image.reshape(image.shape[0], -1).T.double()
        self.colours = kmeans_colours(pixels, colours, make_generator(seed)).float()
        self.temperature = temperature

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        check(x.shape[0] == self.channels, f"the palette has {self.channels} channels and the image "
                                           f"{x.shape[0]}; give both in colour or both in grey")
        pixels = x.reshape(x.shape[0], -1).T
        dist = torch.cdist(pixels, self.colours.to(x), compute_mode="donot_use_mm_for_euclid_dist") ** 2
        soft_min = -self.temperature * torch.logsumexp(-dist / self.temperature, dim=1)
        return -soft_min.mean()


def kmeans_colours(pixels: torch.Tensor, k: int, generator: torch.Generator, iters: int = 20,
                   max_pixels: int = 8192) -> torch.Tensor:
    """k-means centres of (N, C) pixel rows: k distinct random pixels to start, Lloyd iterations after,
    on at most ``max_pixels`` randomly chosen rows."""
    pixels = pixels[torch.randperm(pixels.shape[0], generator=generator)[:max_pixels]]
    k = min(k, pixels.shape[0])
    centres = pixels[:k].clone()
    for _ in range(iters):
        assign = torch.cdist(pixels, centres).argmin(1)
        sums = torch.zeros_like(centres).index_add_(0, assign, pixels)
        counts = torch.bincount(assign, minlength=k).to(pixels.dtype)[:, None]
        centres = torch.where(counts > 0, sums / counts.clamp_min(1), centres)
    return centres


class PatchStatsObjective:
    """Weight-free: the image's small patches should have a texture image's mean and covariance.

    score(x) = -Σ_levels (‖μ_x - μ_t‖² + ‖Σ_x - Σ_t‖²_F) over P×P patches at ``levels`` pyramid levels:
    a Gram-matrix style loss (Gatys et al.) on raw pixel patches instead of network features.
    """

    def __init__(self, texture, patch_size: int = 3, levels: int = 2):
        check(patch_size >= 1 and levels >= 1, "patch_size and levels must be >= 1")
        self.patch_size, self.levels = patch_size, levels
        self.targets = [self._stats(level) for level in self._pyramid(as_image(texture))]

    def _pyramid(self, x: torch.Tensor) -> list[torch.Tensor]:
        out = [x]
        for _ in range(self.levels - 1):
            h, w = out[-1].shape[-2:]
            if min(h, w) // 2 < self.patch_size:
                break
            out.append(resize(out[-1], ((h + 1) // 2, (w + 1) // 2)))
        return out

    def _stats(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        patches = extract_patches(x, self.patch_size)
        mean = patches.mean(0)
        centred = patches - mean
        return mean, centred.T @ centred / patches.shape[0]

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        loss = x.new_zeros(())
        for level, (mean, cov) in zip(self._pyramid(x), self.targets):
            m, c = self._stats(level)
            loss = loss + (m - mean.to(x)).pow(2).sum() + (c - cov.to(x)).pow(2).sum()
        return -loss
