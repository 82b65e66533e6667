"""The image as the model: its pyramid and one patch denoiser per level, planned before they are built."""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from .backends import BackendSpec, parse_backend
from .config import SamplingConfig
from .denoiser import ImageDenoiser
from .errors import check, is_whole
from .image_io import as_image
from .plan import Plan, plan_levels
from .pyramid import auto_num_levels, build_pyramid, pyramid_shapes
from .runtime import check_seed, make_generator, resolve_device
from .sampler import Hooks, SampleResult, sample_pyramid
from .schedule import Schedule


def default_min_short_side(patch_size: int) -> int:
    """The coarsest level's short side when none is given: 1.6·P (24 px for P = 15), as the paper's presets."""
    return round(1.6 * patch_size)


MAX_SIDE = 2 ** 31 - 1


def check_size(size: Sequence[int] | None, what: str = "an output size") -> tuple[int, int] | None:
    """(H, W) as two positive whole numbers (Python or NumPy integers) of at most :data:`MAX_SIDE`; None stays None."""
    if size is None:
        return None
    check(isinstance(size, (list, tuple)) and len(size) == 2
          and all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v > 0 for v in size),
          f"{what} is two positive integers (height, width), got {size}")
    check(max(size) <= MAX_SIDE, f"an output side is at most {MAX_SIDE:,} pixels, got {size[0]}x{size[1]}")
    return int(size[0]), int(size[1])


#: Settings of a run, not of the model: :meth:`SingleImageModel.sample` takes them.
SAMPLING_SETTINGS = ("seed", "steps", "eta", "sigma_min", "progress", "batch_size")


class LevelDenoisers(Sequence):
    """The per-level denoisers of a model, built when a level is first asked for.

    With ``keep`` every built level stays (many samples from one model); without it only the level
    asked for last is held, so sampling one image never holds two levels' indexes at once.
    """

    def __init__(self, build, count: int, channels: int, keep: bool):
        self._build, self._count, self.channels, self.keep = build, count, channels, keep
        self._built: dict[int, ImageDenoiser] = {}

    def __len__(self) -> int:
        return self._count

    def __getitem__(self, index):
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(self._count))]
        if index < 0:
            index += self._count
        if not 0 <= index < self._count:
            raise IndexError(index)
        if index not in self._built:
            if not self.keep:
                self._built.clear()
            self._built[index] = self._build(index)
        return self._built[index]


class SingleImageModel:
    """An image as a generative model: a Gaussian pyramid with a closed-form patch denoiser per level.

    Build it once and call :meth:`sample` for as many samples as needed; the per-level patch datasets
    (and any search structure of the backend) are reused.

    ``num_levels`` is an integer or 'auto' (deep enough that the coarsest level's short side is
    ``min_short_side``, default 1.6·P); ``output_size`` is (H, W) of the samples (default: the input's).
    ``backend`` is a name or spec ('auto', 'topk:nprobe=4', …; keyword ``backend_options`` add to it).
    Before anything is built, :attr:`plan` resolves every level's backend, query stride and band
    height under ``memory_budget`` (bytes or '8GB'; default 60 % of the free memory) and refuses, in
    one line, a size that cannot fit. Level denoisers are built when first sampled; ``keep_levels``
    keeps them for further samples (False: only the level being sampled holds its index).
    """

    def __init__(self, image, patch_size: int = 15, num_levels: int | str = "auto",
                 min_short_side: int | None = None, output_size: Sequence[int] | None = None,
                 backend: str | BackendSpec = "auto", rho: float = 0.2, device: str | torch.device = "cpu",
                 *, memory_budget=None, query_stride: int | str = "auto", keep_levels: bool = True,
                 **backend_options):
        for key in backend_options:  # a sampling setting here would pass silently as a backend's option
            own = "; k-means' own seed goes in the backend spec, backend='topk:seed=...'" if key == "seed" else ""
            check(key not in SAMPLING_SETTINGS, f"{key} is a sampling setting: give it to sample(), or build the "
                                                f"model with SingleImageModel.from_config(image, SamplingConfig(...))"
                                                f"{own}")
        self.device = resolve_device(device)
        image = as_image(image).to(self.device)
        check(isinstance(patch_size, int) and patch_size >= 1, f"patch size must be a positive integer, got {patch_size}")
        check(rho > 0, f"rho must be positive (inf for a plain average), got {rho}")
        self.patch_size = patch_size
        reference = tuple(image.shape[-2:])
        output = check_size(output_size) or reference
        explicit_floor = min_short_side is not None
        m = min_short_side if explicit_floor else default_min_short_side(patch_size)
        check(m >= 1, f"min_short_side must be positive, got {m}")
        auto = num_levels == "auto"
        if auto:
            short = min(min(reference), min(output))
            check(min(reference) >= patch_size, f"the image ({reference[0]}x{reference[1]}) is smaller than the "
                                                f"{patch_size}x{patch_size} patch; use a smaller patch size")
            check(min(output) >= patch_size, f"the output ({output[0]}x{output[1]}) is smaller than the "
                                             f"{patch_size}x{patch_size} patch; use a larger output size or a smaller "
                                             f"patch size")
            num_levels = auto_num_levels(short, min(m, short))
        check(isinstance(num_levels, int) and num_levels >= 1, f"num_levels must be 'auto' or an integer >= 1, got {num_levels!r}")
        floor = m if (explicit_floor or auto) else None
        self.reference_shapes = pyramid_shapes(reference, num_levels, floor)
        self.sample_shapes = pyramid_shapes(output, num_levels, floor)
        for kind, shapes in (("input", self.reference_shapes), ("output", self.sample_shapes)):
            h, w = shapes[-1]
            check(min(h, w) >= patch_size,
                  f"the coarsest {kind} level is {h}x{w}, smaller than the {patch_size}x{patch_size} patch; "
                  f"use a larger image, fewer levels or a smaller patch size")
        self.rho = rho
        self.config = SamplingConfig(patch_size, num_levels, min_short_side, rho, backend=parse_backend(backend, **backend_options),
                                     device=str(self.device), memory_budget=memory_budget, query_stride=query_stride)
        self._plan_inputs = dict(input_shapes=self.reference_shapes, output_shapes=self.sample_shapes,
                                 channels=image.shape[0], patch_size=patch_size,
                                 backend=parse_backend(backend, **backend_options), device=self.device,
                                 memory_budget=memory_budget, query_stride=query_stride, keep_levels=keep_levels)
        self.plan: Plan = plan_levels(**self._plan_inputs).check()
        self.levels = build_pyramid(image, self.reference_shapes)
        self.denoisers = LevelDenoisers(self._build_level, len(self.levels), image.shape[0], keep_levels)

    @classmethod
    def from_config(cls, image, config: SamplingConfig, output_size: Sequence[int] | None = None,
                    keep_levels: bool = True) -> "SingleImageModel":
        """The model a :class:`~sidlite.config.SamplingConfig` describes; :meth:`sample` then uses its
        seed, steps, η, σ_min and progress setting unless told otherwise."""
        model = cls(image, config.patch_size, config.num_levels, config.min_side(), output_size, config.backend,
                    config.rho, config.device, memory_budget=config.memory_budget, query_stride=config.query_stride,
                    keep_levels=keep_levels)
        model.config = config
        if config.batch_size > 1:
            model.plan = model.plan_batch(config.batch_size)
        return model

    def plan_batch(self, batch_size: int) -> Plan:
        """The plan for ``batch_size`` samples at once; raises the one-line error when it cannot fit."""
        return plan_levels(**self._plan_inputs, batch_size=batch_size).check()

    def _build_level(self, index: int) -> ImageDenoiser:
        """The denoiser of level ``index`` exactly as the plan says."""
        return ImageDenoiser.from_plan(self.plan.levels[index], self.levels[index], self.patch_size, self.rho)

    @property
    def num_levels(self) -> int:
        return len(self.levels)

    def schedules(self, steps: int | Sequence[int], sigma_min: float) -> list[Schedule]:
        """One flow-linear schedule per level (``steps`` may be per level, finest first)."""
        per_level = [steps] * self.num_levels if isinstance(steps, int) else list(steps)
        check(len(per_level) == self.num_levels, f"steps needs one value per level ({self.num_levels})")
        return [Schedule.flow_linear(s, sigma_min) for s in per_level]

    def sample(self, seed: int | None = None, steps: int | Sequence[int] | None = None, eta: float | None = None,
               sigma_min: float | None = None, record: bool = False, progress: bool | None = None,
               hooks: Hooks | None = None, generator: torch.Generator | None = None, batch: int = 1) -> SampleResult:
        """One sample; the same seed gives the same image. Settings left as None come from :attr:`config`.

        ``hooks`` are how applications change the run (fixed levels, a start state, constraints); a
        level a hook fixes is never built or sampled. ``batch`` = B > 1 runs the samples of seeds
        seed … seed + B − 1 through every step together and returns (B, C, H, W) images; sample i equals
        ``sample(seed + i)`` up to float rounding in the backend's products.
        """
        check(seed is None or generator is None, "give sample() a seed or a generator, not both")
        c = self.config
        seed, eta = (c.seed if seed is None else seed), (c.eta if eta is None else eta)
        steps, sigma_min = (c.steps if steps is None else steps), (c.sigma_min if sigma_min is None else sigma_min)
        progress = c.progress if progress is None else progress
        check(isinstance(batch, int) and batch >= 1, f"batch must be a whole number >= 1, got {batch!r}")
        check_seed(seed + batch - 1 if isinstance(seed, int) else seed)  # the batch's last seed too
        plan = self.plan
        if batch > 1:
            check(generator is None, "a batch draws from one generator per seed; pass seed=, not generator=")
            plan = self.plan_batch(batch)
            generator = [make_generator(seed + i, self.device) for i in range(batch)]
        plan.note_if_short()
        generator = generator or make_generator(seed, self.device)
        return sample_pyramid(self.denoisers, self.sample_shapes, self.schedules(steps, sigma_min), eta=eta,
                              generator=generator, hooks=hooks, record=record, progress=progress,
                              device=self.device, dtype=self.levels[0].dtype)

    def images(self, count: int, seed: int | None = None):
        """``count`` finished images (C, H, W), of seeds seed, seed + 1, …, sampled :attr:`config`'s
        ``batch_size`` at a time; yields each as soon as its batch is done."""
        check(is_whole(count) and count >= 0, f"count must be a whole number >= 0, got {count!r}")
        seed, batch = (self.config.seed if seed is None else seed), self.config.batch_size
        check_seed(seed + count - 1 if isinstance(seed, int) else seed)  # the last image's seed too, before the first
        for first in range(0, count, batch):
            size = min(batch, count - first)
            result = self.sample(seed + first, batch=size).image
            yield from (result if size > 1 else result[None])

    def __repr__(self) -> str:
        levels = ", ".join(f"{h}x{w}" for h, w in self.reference_shapes)
        return f"SingleImageModel(P={self.patch_size}, levels=[{levels}], backend={self.plan.levels[0].backend})"



def trajectory(image, *, seed: int = 10, **options) -> SampleResult:
    """One sample with every step recorded (x_t and x̂₀ per step and level), for figures."""
    sample_options = {k: options.pop(k) for k in ("steps", "eta", "sigma_min", "progress") if k in options}
    return SingleImageModel(image, **options).sample(seed, record=True, **sample_options)
