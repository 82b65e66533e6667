"""One plan per pyramid level, resolved in one place before any work: backend and its options, query
stride, band height, dtype, and the memory and work each level will cost.

The memory a level needs while it is sampled is

* its images: the sampler's state, estimate, noise prediction, fold numerator, the upsampled coarser
  result and blend temporaries
  (about :data:`IMAGE_COPIES` images of the output level), the noise drawn up front for every level,
  the finished coarser results, and the level image the patches come from;
* its backend's index (k-means lists, padded keys …), from the backend's own estimate;
* one band of queries: patch-grid rows × the bytes one row costs (queries, estimates, the backend's
  working memory, the band's fold).

The band takes what the budget leaves, up to :data:`MAX_BAND_BYTES`; a level whose images, index and a band of one
patch-grid row exceed the budget cannot run, and :meth:`Plan.check` says so in one line naming the knob, before any
sampling starts.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Sequence

import torch

from .backends import BACKENDS, choose_backend, parse_backend
from .backends.clustered import compiled_list_scan
from .backends.spec import BackendSpec
from .errors import SidliteError, user_stacklevel
from .patches import patch_grid
from .runtime import available_memory, default_memory_budget, format_bytes, parse_bytes

#: Full-size images of the level being sampled that the sampler and the blend hold at once.
IMAGE_COPIES = 8

#: Largest band of queries worth holding: beyond it a CPU gains nothing (the work per query is the
#: same) and a GPU's kernels are already full, so memory stays flat as outputs grow.
MAX_BAND_BYTES = {"cpu": 2 ** 30, "cuda": 4 * 2 ** 30}

#: A top-k index that would take more than this share of the budget ranks in a PCA projection instead:
#: of the :data:`COMPACT_RANK_DIMS` dimensions, the most whose index fits the share (else the fewest), and
#: only where that index is smaller than the full one (a small patch set's index is mostly scratch, which
#: a projection does not shrink). Measured on the Table-1 setting (benchmarks/results/cpu.md, 'ranking' and
#: 'table1', d = 675): r = 64 finds 40-71 % of the full-dimension top 5 and moves patch SWD by 0.7 %, r = 32
#: finds 24-51 % and moves it by 5 % (its misses are near-ties); neither is faster on the CPU at that size,
#: so the projection is kept for indexes too big to hold. 'auto' also leaves exact attention for top-k on a
#: level where attention's padded keys and values would take more than this share and top-k's index is
#: smaller (few queries over many patches: a large query stride).
INDEX_SHARE = 0.25
COMPACT_RANK_DIMS = (64, 32)

#: Query positions of a level above which 'auto' strides the queries by 2 (the paper's resolver, §10).
AUTO_STRIDE_QUERIES = 8_000_000

#: Lists a top-k level probes when its spec does not say: the paper's 2 while the level's output is no
#: larger than its input, then 2 per input's worth of output positions, up to 8. Measured (one sitting,
#: AMD EPYC): gravel 256² in pixels to 512² (4.2 positions per patch) scored patch SWD 0.016-0.018 with
#: 2 lists, 0.011-0.013 with 4 and 0.010-0.011 with 8, with 3.1 %, 0.5 % and under 0.1 % of it washed
#: out (``sidlite.flat_fraction``); at the input's own size 2 lists cost about 0.001 of SWD against 8.
PROBES = (2, 8)


def default_nprobe(positions: int, patches: int) -> int:
    """The lists a top-k level probes by default: 2 · positions / patches (rounded), within :data:`PROBES`.
    An output many times its input reuses each patch many times, and with 2 lists probed such outputs
    washed out into smooth regions in places."""
    low, high = PROBES
    return max(low, min(high, round(low * positions / max(patches, 1))))


def compact_index(patches: int, dim: int, queries: int, options: dict, full_cost: dict,
                  share: float, compiled_scan: bool) -> tuple[dict, dict]:
    """The top-k options and cost for an index that crowds its ``share`` of the budget: ranking in the
    largest projection of :data:`COMPACT_RANK_DIMS` that fits the share (else the smallest index), where
    that is smaller than the full index; otherwise the full index, unchanged."""
    best_options, best_cost = options, full_cost
    for rank in COMPACT_RANK_DIMS:
        if rank >= dim:
            continue
        trial = {**options, "rank_dim": rank}
        cost = BACKENDS["topk"].estimate(patches, dim, queries, compiled_scan=compiled_scan, **trial)
        if cost["index_bytes"] < best_cost["index_bytes"]:
            best_options, best_cost = trial, cost
            if cost["index_bytes"] <= share:
                break
    return best_options, best_cost


@dataclass(frozen=True)
class LevelPlan:
    """What one pyramid level will do and cost (sizes in patches, bytes and floating-point operations)."""

    level: int
    input_shape: tuple[int, int]
    output_shape: tuple[int, int]
    patches: int
    queries: int
    dim: int
    backend: str
    options: dict = field(default_factory=dict)
    query_stride: int = 1
    band_rows: int = 1
    bands: int = 1
    dtype: str = "float32"
    image_bytes: int = 0
    index_bytes: int = 0
    band_bytes: int = 0
    flops_per_step: float = 0.0

    @property
    def resident_bytes(self) -> int:
        """What the level holds outside its bands, and still when its sampling ends: images and index."""
        return self.image_bytes + self.index_bytes

    @property
    def memory(self) -> int:
        return self.resident_bytes + self.band_bytes


class PlanRefused(SidliteError):
    """A plan whose level cannot fit its budget: what the level needs (``need``), the plan itself (``plan``)
    for ``--plan`` to show which level is too large, and as the message both with the knobs to turn (the
    command line names only the options its command has)."""

    def __init__(self, plan: "Plan", need: str):
        super().__init__(f"{need}; raise `memory_budget`, or lower `size` or the input's, or use `query_stride=2`")
        self.plan, self.need = plan, need


@dataclass
class Plan:
    """The per-level plans of one sampling run, finest level first, and the budget they were made for."""

    levels: list[LevelPlan]
    budget: int
    device: str
    #: What :func:`plan_levels` was given, so that advice can try another setting (:meth:`fits_with`).
    arguments: dict = field(default_factory=dict, repr=False)

    def fits_with(self, **changes) -> bool:
        """Whether the same run, planned again with ``changes`` (query_stride=2, say), would fit its budget."""
        if not self.arguments:
            return False
        replanned = plan_levels(**{**self.arguments, "memory_budget": self.budget, **changes})
        return replanned.peak <= replanned.budget

    @property
    def peak(self) -> int:
        return max(level.memory for level in self.levels)

    def check(self) -> "Plan":
        """Raise a one-line error when a level cannot fit the budget; returns the plan otherwise."""
        for level in self.levels:
            if level.memory > self.budget:
                raise PlanRefused(
                    self, f"level {level.level} ({level.output_shape[0]}x{level.output_shape[1]}) needs "
                    f"{format_bytes(level.memory)} (images {format_bytes(level.image_bytes)}, index "
                    f"{format_bytes(level.index_bytes)}, a band of one grid row {format_bytes(level.band_bytes)}) "
                    f"but the memory budget is {format_bytes(self.budget)}")
        return self

    def note_if_short(self) -> None:
        """Before a run: warn when the plan fits its budget but not the memory free now (a budget set above
        what the machine has, so the run could be killed instead of refused). Planning alone never warns."""
        device = torch.device(self.device)
        if device.type == "cpu" or (device.type == "cuda" and torch.cuda.is_available()):
            free = available_memory(device)
            if self.peak > free:
                warnings.warn(f"the plan's peak {format_bytes(self.peak)} fits the memory budget "
                              f"{format_bytes(self.budget)} but not the {format_bytes(free)} free on this "
                              f"{device.type.upper()} now; the run may be killed: lower the memory budget",
                              stacklevel=user_stacklevel())

    def table(self) -> str:
        """The plan as a text table, one row per level, coarsest last (as the levels are listed)."""
        header = ("level", "input", "output", "patches N", "queries M", "backend", "stride", "bands",
                  "dtype", "memory", "GFLOP/step")
        rows = [header]
        for p in self.levels:
            backend = p.backend + ("" if not p.options else ":" + ",".join(f"{k}={v}" for k, v in p.options.items()))
            rows.append((str(p.level), f"{p.input_shape[0]}x{p.input_shape[1]}",
                         f"{p.output_shape[0]}x{p.output_shape[1]}", f"{p.patches:,}", f"{p.queries:,}", backend,
                         str(p.query_stride), f"{p.bands} x {p.band_rows} rows", p.dtype, format_bytes(p.memory),
                         f"{p.flops_per_step / 1e9:,.1f}"))
        widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
        lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]
        lines.insert(1, "  ".join("-" * w for w in widths))
        total = sum(p.flops_per_step for p in self.levels)
        lines.append(f"budget {format_bytes(self.budget)} on {self.device}; planned peak {format_bytes(self.peak)}; "
                     f"about {total / 1e12:,.2f} TFLOP per step of every level")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.table()


def resolve_budget(memory_budget, device: torch.device | str) -> int:
    """The budget in bytes: as given (bytes or text such as '8GB'), or 60 % of what is free on ``device``."""
    return parse_bytes(memory_budget) if memory_budget is not None else default_memory_budget(device)


def resolve_stride(query_stride: int | str, queries: int, patch_size: int) -> int:
    """A level's query stride: with 'auto' 2 above :data:`AUTO_STRIDE_QUERIES` positions (never more than the
    patch size), else the given whole number, from 1 to the patch size: a larger one leaves pixels between
    patches that no patch covers."""
    if query_stride == "auto":
        return min(2, patch_size) if queries > AUTO_STRIDE_QUERIES else 1
    check_query_stride(query_stride, patch_size)
    return query_stride


def check_query_stride(query_stride: int, patch_size: int) -> None:
    """Refuse, in one line, a query stride that is not a whole number from 1 to the patch size."""
    if not (isinstance(query_stride, int) and 1 <= query_stride <= patch_size):
        raise SidliteError(f"query stride must be 'auto' or a whole number from 1 to the patch size {patch_size}, "
                           f"got {query_stride!r}")


def _search_plan(spec: BackendSpec, name: str, patches: int, dim: int, queries: int, grid: tuple[int, int],
                 device: torch.device, budget: int) -> tuple[dict, dict]:
    """For the backend ``name`` on one level: its options (the spec's, with top-k's default lists probed) and
    its cost; a top-k index that crowds its :data:`INDEX_SHARE` of the budget ranks in a projection."""
    options = spec.options_for(name, BACKENDS)
    if name == "topk" and "nprobe" not in options:
        options["nprobe"] = default_nprobe(grid[0] * grid[1], patches)
    compiled_scan = name == "topk" and compiled_list_scan(device, options.get("k", 5), options.get("scan", "auto"))
    cost = BACKENDS[name].estimate(patches, dim, queries, compiled_scan=compiled_scan, **options)
    if name == "topk" and "rank_dim" not in options and cost["index_bytes"] > INDEX_SHARE * budget:
        options, cost = compact_index(patches, dim, queries, options, cost, INDEX_SHARE * budget, compiled_scan)
    return options, cost


def plan_levels(input_shapes: Sequence[tuple[int, int]], output_shapes: Sequence[tuple[int, int]], channels: int,
                patch_size: int, backend: str | BackendSpec = "auto", *, device: torch.device | str = "cpu",
                memory_budget=None, query_stride: int | str = "auto", dataset_patches: Sequence[int] | None = None,
                keep_levels: bool = False, batch_size: int = 1) -> Plan:
    """Plan every level (finest first) of sampling ``output_shapes`` from the levels ``input_shapes``.

    ``dataset_patches`` overrides each level's patch count (a masked dataset keeps fewer); with
    ``keep_levels`` every level's index stays in memory, and the plan counts them all. A batch of
    ``batch_size`` samples holds that many copies of the images; its bands hold 1/B as many rows each.
    """
    arguments = dict(input_shapes=input_shapes, output_shapes=output_shapes, channels=channels, patch_size=patch_size,
                     backend=backend, device=device, memory_budget=memory_budget, query_stride=query_stride,
                     dataset_patches=dataset_patches, keep_levels=keep_levels, batch_size=batch_size)
    spec = parse_backend(backend)
    device = torch.device(device)
    budget = resolve_budget(memory_budget, device)
    item = 4  # float32 throughout
    dim = channels * patch_size ** 2
    noise_bytes = sum(channels * h * w * item for h, w in output_shapes)
    searches = []  # per level: stride, grid rows and columns, patch count, backend, options, cost
    for level, (inp, out) in enumerate(zip(input_shapes, output_shapes)):
        grid = patch_grid(*out, patch_size, 1)
        stride = resolve_stride(query_stride, grid[0] * grid[1], patch_size)
        rows, cols = patch_grid(*out, patch_size, stride)
        queries = rows * cols
        patches = dataset_patches[level] if dataset_patches else math.prod(patch_grid(*inp, patch_size, 1))
        name = spec.name if spec.name != "auto" else choose_backend(patches, dim, device, queries)
        options, cost = _search_plan(spec, name, patches, dim, queries, grid, device, budget)
        if spec.name == "auto" and name != "topk" and cost["index_bytes"] > INDEX_SHARE * budget:
            # few queries over many patches: 'auto' took exact attention for its speed, but where its keys and
            # values crowd the budget the top-k index is smaller (its lists, or their codes), so take that
            topk_options, topk_cost = _search_plan(spec, "topk", patches, dim, queries, grid, device, budget)
            if topk_cost["index_bytes"] < cost["index_bytes"]:
                name, options, cost = "topk", topk_options, topk_cost
        searches.append((stride, rows, cols, patches, name, options, cost))
    # with keep_levels every index is held once built, and all of them from a second sample on
    every_index = sum(int(cost["index_bytes"]) for *_, cost in searches)
    plans = []
    for level, (inp, out) in enumerate(zip(input_shapes, output_shapes)):
        stride, rows, cols, patches, name, options, cost = searches[level]
        coarser = sum(channels * h * w * item for h, w in output_shapes[level + 1:])  # finished results kept
        images = (batch_size * (IMAGE_COPIES * channels * out[0] * out[1] * item + noise_bytes + coarser)
                  + channels * inp[0] * inp[1] * item)
        index = every_index if keep_levels else int(cost["index_bytes"])
        per_row = cols * (3 * item * dim + int(cost["bytes_per_query"])) + item * channels * stride * out[1]
        left = min(budget - images - index, MAX_BAND_BYTES.get(device.type, MAX_BAND_BYTES["cpu"]))
        band_rows = max(1, min(rows, left // per_row)) if left > 0 else 1
        plans.append(LevelPlan(level, tuple(inp), tuple(out), patches, rows * cols, dim, name, options, stride,
                               band_rows, math.ceil(rows / band_rows), str(options.get("dtype") or "float32"),
                               images, index, band_rows * per_row, batch_size * float(cost["flops"])))
    return Plan(plans, budget, str(device), arguments)
