"""One sampling configuration for every application, and the presets it starts from.

:class:`SamplingConfig` holds the settings every sampler run shares (patch size, pyramid, window,
schedule, η, seed, backend spec, device, memory budget, progress). Every application takes ``config=``
and keyword overrides of its fields (``sidlite.retarget(img, size, steps=25)``); keywords that are not
fields are backend options (``nprobe=4``), checked against the backend spec in one place. The starting
values come from :data:`sidlite.presets.PRESETS`, one table per application and space.
"""
from __future__ import annotations

import dataclasses
import difflib
import math
import numbers
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np

from .backends import BackendSpec, parse_backend
from .errors import SidliteError, check, is_whole
from .plan import check_query_stride
from .runtime import check_seed, parse_bytes


@dataclass(frozen=True)
class SamplingConfig:
    """The settings of one sampling run. ``min_short_side`` is pixels, 'kP' (k times the patch size,
    e.g. '1.6P') or None (no floor); ``steps`` is one count or one per level, finest first."""

    patch_size: int = 15
    num_levels: int | str = "auto"
    min_short_side: int | str | None = "1.6P"
    rho: float = 0.2
    steps: int | tuple[int, ...] = 10
    sigma_min: float = 1e-4
    eta: float = 0.0
    seed: int = 10
    backend: str | BackendSpec = "auto"
    device: str = "cpu"
    memory_budget: int | str | None = None
    query_stride: int | str = "auto"
    progress: bool = True
    batch_size: int = 1  # samples run through each step together (one index, larger products)

    def __post_init__(self):
        self._plain_numbers()
        check(isinstance(self.patch_size, int) and not isinstance(self.patch_size, bool) and self.patch_size >= 1,
              f"patch size must be a positive integer, got {self.patch_size!r}")
        check(self.num_levels == "auto" or (isinstance(self.num_levels, int) and self.num_levels >= 1),
              f"num_levels must be 'auto' or an integer >= 1, got {self.num_levels!r}")
        check(isinstance(self.rho, (int, float)) and self.rho > 0, f"rho must be positive (inf for a plain average), got {self.rho!r}")
        steps = tuple(self.steps) if isinstance(self.steps, (list, tuple)) else (self.steps,)
        check(len(steps) >= 1 and all(isinstance(s, int) and not isinstance(s, bool) and s >= 1 for s in steps),
              f"steps must be an integer >= 1 (or one per level), got {self.steps!r}")
        check(0 < self.sigma_min < 1, f"sigma_min must lie in (0, 1), got {self.sigma_min!r}")
        check(isinstance(self.eta, (int, float)) and 0.0 <= self.eta <= 1.0, f"eta must lie in [0, 1], got {self.eta!r}")
        check_seed(self.seed)
        if self.query_stride != "auto":
            check_query_stride(self.query_stride, self.patch_size)
        check(isinstance(self.progress, (bool, np.bool_)), f"progress is True or False, got {self.progress!r}")
        object.__setattr__(self, "progress", bool(self.progress))
        check(isinstance(self.batch_size, int) and self.batch_size >= 1,
              f"batch size must be a whole number >= 1, got {self.batch_size!r}")
        if self.memory_budget is not None:
            parse_bytes(self.memory_budget)
        self.min_side()
        object.__setattr__(self, "backend", parse_backend(self.backend))

    def _plain_numbers(self) -> None:
        """NumPy's integers and floats (np.int64(7), np.float32(0.2)) as Python's, so that they pass the checks
        a Python number passes; booleans stay booleans, and are refused where a count is asked for."""
        def plain(value):
            if is_whole(value):
                return int(value)
            return float(value) if isinstance(value, numbers.Real) and not isinstance(value, bool) else value
        for name in ("patch_size", "num_levels", "min_short_side", "rho", "sigma_min", "eta", "seed", "query_stride",
                     "batch_size"):
            object.__setattr__(self, name, plain(getattr(self, name)))
        if isinstance(self.steps, (list, tuple)):
            object.__setattr__(self, "steps", tuple(plain(s) for s in self.steps))
        else:
            object.__setattr__(self, "steps", plain(self.steps))

    def min_side(self) -> int | None:
        """The coarsest level's short side in pixels (cells in a latent), from the 'kP' rule or as given."""
        value = self.min_short_side
        if value is None or isinstance(value, int):
            check(value is None or value >= 1, f"min_short_side must be positive, got {value}")
            return value
        text = str(value).strip()
        check(text.endswith("P"), f"min_short_side is pixels, 'kP' (k times the patch size) or None, got {value!r}")
        factor = float(text[:-1] or 1)
        check(factor > 0 and math.isfinite(factor), f"min_short_side {value!r} needs a positive factor")
        return round(factor * self.patch_size)

    def updated(self, **settings) -> "SamplingConfig":
        """A copy with ``settings`` applied: field names change fields, other names are backend options."""
        fields = {f.name for f in dataclasses.fields(self)}
        changes = {k: v for k, v in settings.items() if k in fields}
        options = {k: v for k, v in settings.items() if k not in fields}
        if options:
            try:
                changes["backend"] = parse_backend(changes.get("backend", self.backend), **options)
            except SidliteError as error:
                for key in options:  # a misspelt setting reads better as such than as a backend option
                    near = difflib.get_close_matches(key, fields, n=1, cutoff=0.75)
                    if near:
                        raise SidliteError(f"unknown setting {key!r}; did you mean {near[0]!r}?") from None
                raise SidliteError(f"{error}; the settings are {', '.join(sorted(fields))}") from None
        return dataclasses.replace(self, **changes) if changes else self

    def steps_per_level(self, levels: int) -> list[int]:
        """One step count per level, finest first."""
        per_level = [self.steps] * levels if isinstance(self.steps, int) else list(self.steps)
        check(len(per_level) == levels,
              f"`steps` takes one value for all levels or one per level ({levels}), got {len(per_level)}")
        return per_level


def configure(application: str, space: str, config: SamplingConfig | None, settings: Mapping[str, Any]) -> SamplingConfig:
    """The configuration an application runs with: ``config`` (default: its preset for ``space``), then
    the keyword ``settings`` on top."""
    from .presets import preset

    check(config is None or isinstance(config, SamplingConfig),
          f"config must be a SamplingConfig, got a {type(config).__name__}")
    return (config or preset(application, space)).updated(**settings)


def config_fields() -> Sequence[str]:
    """The names of the configuration's fields (the keyword settings every application takes)."""
    return [f.name for f in dataclasses.fields(SamplingConfig)]
