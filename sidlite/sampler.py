"""The coarse-to-fine sampler: one full trajectory from noise per pyramid level, coarsest first.

At every step of a finer level, x̂ takes its low band from the finished coarser result (the two-scale
Laplacian blend), except at the last step, which returns the raw x̂. ε̂ is computed from the un-blended
x̂. Applications change the loop only through :class:`Hooks`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import torch
from tqdm.auto import tqdm

from .denoiser import ImageDenoiser
from .errors import SidliteError, check
from .pyramid import laplacian_blend, resize
from .runtime import normal_noise, release_freed_memory
from .schedule import Schedule


class Hooks:
    """Plug-in points of the sampler. The defaults give plain unconditional generation."""

    def fixed_result(self, level: int) -> torch.Tensor | None:
        """A finished result for this level that is not sampled (e.g. retargeting's fixed layout)."""
        return None

    def start(self, level: int, schedule: Schedule, noise: torch.Tensor) -> tuple[torch.Tensor, int]:
        """Initial state and the step to start at; by default pure noise at t = T."""
        return schedule.sigmas[-1] * noise, schedule.steps

    def estimate(self, level: int, denoiser: ImageDenoiser, x_t: torch.Tensor, alpha: float,
                 sigma: float) -> torch.Tensor:
        """The image estimate x̂₀ of x_t (tileable generation replaces it)."""
        return denoiser(x_t, alpha, sigma)

    def constrain(self, level: int, t: int, x_hat: torch.Tensor) -> torch.Tensor:
        """Modify x̂ before ε̂ is computed (mirror, data term, guidance)."""
        return x_hat


@dataclass
class StepRecord:
    """One sampler step, kept when ``record=True``: the state x_t and the estimate x̂₀ at (α_t, σ_t)."""

    level: int
    t: int
    alpha: float
    sigma: float
    x_t: torch.Tensor
    x_hat: torch.Tensor


@dataclass
class SampleResult:
    """The finest result, the finished result of every level (finest first) and the optional trajectory."""

    image: torch.Tensor
    levels: list[torch.Tensor]
    trajectory: list[StepRecord] = field(default_factory=list)


def sample_pyramid(denoisers: Sequence[ImageDenoiser | None], shapes: Sequence[tuple[int, int]],
                   schedules: Sequence[Schedule], *, eta: float | Sequence[float] = 0.0,
                   generator: torch.Generator | Sequence[torch.Generator] | None = None, hooks: Hooks | None = None,
                   record: bool = False, progress: bool = True, device: torch.device | str = "cpu",
                   dtype: torch.dtype = torch.float32) -> SampleResult:
    """Run the coarse-to-fine loop. Lists are per level, finest first; ``eta`` may be per level too.

    Initial noise for every level is drawn first, finest level first, then fresh noise per step. With a
    list of generators the samples run as one (B, C, H, W) batch through every step (larger products
    for the backend, one index); sample i draws from generator i exactly what it would draw alone.
    ``denoisers`` may be a lazy sequence (:class:`sidlite.model.LevelDenoisers`): each level's denoiser
    is asked for once, when that level starts. Each level shows a progress bar with its ETA.
    """
    hooks = Hooks() if hooks is None else hooks
    check(all(callable(getattr(hooks, name, None)) for name in ("fixed_result", "start", "estimate", "constrain")),
          f"hooks must be a sidlite.sampler.Hooks (or subclass), got {type(hooks).__name__}")
    generators = generator if isinstance(generator, (list, tuple)) else [generator]
    check(len(generators) >= 1 and all(g is None or isinstance(g, torch.Generator) for g in generators)
          and (len(generators) == 1 or None not in generators),
          f"generator must be a torch.Generator or a list of them, got {type(generator).__name__}; "
          f"pass seed= for a seed")
    levels = len(shapes)
    check(len(denoisers) == levels == len(schedules), "denoisers, shapes and schedules need one entry per level")
    etas = [float(eta)] * levels if isinstance(eta, (int, float)) else [float(e) for e in eta]
    check(len(etas) == levels, "eta needs one value per level")
    for e in etas:
        check(0.0 <= e <= 1.0, f"eta must lie in [0, 1], got {e}")
    channels = getattr(denoisers, "channels", None) or next(d.channels for d in denoisers if d is not None)
    batch = (len(generator),) if isinstance(generator, (list, tuple)) else ()
    noise = [normal_noise((*batch, channels, *shape), generator, dtype, device) for shape in shapes]
    results: list[torch.Tensor | None] = [None] * levels
    trajectory: list[StepRecord] = []
    for level in reversed(range(levels)):
        fixed = hooks.fixed_result(level)
        if fixed is not None:
            results[level] = fixed
            continue
        schedule, denoiser = schedules[level], denoisers[level]
        if denoiser is None:
            raise SidliteError(f"level {level} has neither a denoiser nor a fixed result")
        coarse = results[level + 1] if level + 1 < levels else None
        x, start = hooks.start(level, schedule, noise[level])
        height, width = shapes[level]
        upsampled = resize(coarse, (height, width)) if coarse is not None else None  # the same at every step
        with tqdm(total=start, disable=not progress, unit="step", leave=False,
                  desc=f"level {level} ({height}x{width}), {levels - level} of {levels}") as bar:
            for t in range(start, 0, -1):
                alpha, sigma = schedule.alphas[t], schedule.sigmas[t]
                x_hat = hooks.constrain(level, t, hooks.estimate(level, denoiser, x, alpha, sigma))
                eps = schedule.predict_noise(x, x_hat, t)
                if coarse is not None and t != 1:
                    x_hat = laplacian_blend(x_hat, coarse, upsampled)
                if record:
                    trajectory.append(StepRecord(level, t, alpha, sigma, x.cpu(), x_hat.cpu()))
                x = schedule.step(x_hat, eps, t - 1, etas[level], generator)
                del x_hat, eps  # the next step's estimate is allocated before these would go out of scope
                bar.update(1)
        results[level] = x
        del denoiser  # unless kept, the level's index goes before the next level's is built (plan: one at a time)
        release_freed_memory()  # and what the heap kept of it goes back to the OS (when asked to keep any)
    return SampleResult(results[0], results, trajectory)


def invert(denoiser, image: torch.Tensor, schedule: Schedule, stop: int,
           generator: torch.Generator | None = None) -> torch.Tensor:
    """DDIM inversion of a clean image to step ``stop`` with ``denoiser``.

    A warm-up x₁ = α₁·image + σ₁·z (z from ``generator``), then for t = 1 … stop-1 the deterministic step
    run forward: x̂ = D(x_t), ε̂ = (x_t - α_t·x̂)/σ_t, x_{t+1} = α_{t+1}·x̂ + σ_{t+1}·ε̂.
    """
    check(1 <= stop <= schedule.steps, f"the inversion stop must lie in 1..{schedule.steps}, got {stop}")
    z = torch.randn(image.shape, generator=generator, dtype=image.dtype, device=image.device)
    x = schedule.alphas[1] * image + schedule.sigmas[1] * z
    for t in range(1, stop):
        x_hat = denoiser(x, schedule.alphas[t], schedule.sigmas[t])
        x = schedule.step(x_hat, schedule.predict_noise(x, x_hat, t), t + 1, eta=0.0)
    return x
