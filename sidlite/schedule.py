"""Noise schedule and the sampler's update rule (flow-matching linear schedule, η-interpolated DDIM).

Forward process x_t = α_t·y + σ_t·ε. For t = 1..T, α_t = (1 - σ_min)(1 - (t-1)/(T-1)), σ_t = 1 - α_t,
and t = 0 is the clean terminal (α, σ) = (1, 0). The denoiser is never called at t = 0.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from .errors import check
from .runtime import normal_noise


@dataclass(frozen=True)
class Schedule:
    """The (α_t, σ_t) pairs for t = 0..T, index 0 clean and index T pure noise."""

    alphas: tuple[float, ...]
    sigmas: tuple[float, ...]

    @classmethod
    def flow_linear(cls, steps: int, sigma_min: float = 1e-4) -> "Schedule":
        """The rectified-flow schedule with ``steps`` denoiser evaluations."""
        check(isinstance(steps, int) and steps >= 1, f"steps must be an integer >= 1, got {steps}")
        check(0 < sigma_min < 1, f"sigma_min must lie in (0, 1), got {sigma_min}")
        if steps == 1:
            alphas = [0.0]
        else:
            alphas = [(1 - sigma_min) * (1 - t / (steps - 1)) for t in range(steps)]
        return cls(tuple([1.0] + alphas), tuple([0.0] + [1 - a for a in alphas]))

    @property
    def steps(self) -> int:
        return len(self.alphas) - 1

    def noise_level(self, t: int) -> float:
        """σ_t / (α_t + σ_t): equal to σ_t under the flow-linear schedule."""
        return self.sigmas[t] / (self.alphas[t] + self.sigmas[t])

    def index_for_noise_level(self, level: float | None) -> int:
        """The step whose noise level is nearest to ``level`` (at least 1); None means T."""
        if level is None:
            return self.steps
        check(0 <= level <= 1, f"a noise level lies in [0, 1], got {level}")
        best = min(range(1, self.steps + 1), key=lambda t: abs(self.noise_level(t) - level))
        return best

    def predict_noise(self, x_t: torch.Tensor, x_hat: torch.Tensor, t: int) -> torch.Tensor:
        """ε̂ = (x_t - α_t·x̂) / σ_t."""
        check(t >= 1, "the noise prediction needs t >= 1 (σ_0 = 0)")
        return (x_t - self.alphas[t] * x_hat) / self.sigmas[t]

    def step(self, x_hat: torch.Tensor, eps_hat: torch.Tensor, t_to: int, eta: float = 0.0,
             generator=None) -> torch.Tensor:
        """Move to index ``t_to``: x = α·x̂ + √(σ² - c²)·ε̂ + c·z with c = η·σ; at t_to = 0 return x̂.

        η = 0 is the deterministic DDIM/Euler step (no random numbers are drawn); η = 1 re-noises x̂
        from scratch. Running it with t_to = t + 1 and η = 0 is the inversion step. ``generator`` may
        be a list, one per sample of a (B, …) batch (see :func:`sidlite.runtime.normal_noise`).
        """
        check(0.0 <= eta <= 1.0, f"eta must lie in [0, 1], got {eta}")
        if t_to == 0:
            return x_hat
        alpha, sigma = self.alphas[t_to], self.sigmas[t_to]
        c = eta * sigma
        x = alpha * x_hat + (sigma ** 2 - c ** 2) ** 0.5 * eps_hat
        if c > 0:
            x = x + c * normal_noise(x_hat.shape, generator, x_hat.dtype, x_hat.device)
        return x
