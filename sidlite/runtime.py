"""Devices, generators and threads: the few facts about the machine that the rest of the package needs."""
from __future__ import annotations

import ctypes
import ctypes.util
import math
import os
import re
import sys

import torch

from .errors import SidliteError, check

DEVICES = ("cpu", "cuda")

# glibc mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
#: Blocks below this are served from (and freed back to) the heap for reuse; larger ones are mapped
#: and unmapped, so a huge band cannot grow the heap for good.
_REUSE_BELOW = 2 ** 28


def resolve_device(device: str | torch.device | None = "cpu") -> torch.device:
    """A torch device from 'cpu', 'cuda', 'cuda:N' or 'auto' (CUDA when present), with a clear error for an
    unknown name, a CPU index or a GPU this machine does not have."""
    if isinstance(device, torch.device):
        device = str(device)
    check(device is None or isinstance(device, str), f"a device is 'cpu', 'cuda' or 'auto', got {device!r}")
    name = (device or "cpu").lower()
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    parsed = re.fullmatch(r"(\w+)(?::([0-9]+))?", name, re.ASCII)
    if parsed is None or parsed[1] not in DEVICES:
        raise SidliteError(f"unknown device {device!r}; use 'cpu', 'cuda', 'cuda:N' or 'auto'")
    kind, index = parsed[1], parsed[2]
    if kind == "cpu" and index not in (None, "0"):
        raise SidliteError(f"there is one CPU device, 'cpu'; got {device!r}")
    if kind == "cuda" and not torch.cuda.is_available():
        raise SidliteError("CUDA was requested but this machine has no usable CUDA GPU; use `device='cpu'`")
    if kind == "cuda" and index is not None and int(index) >= torch.cuda.device_count():
        count = torch.cuda.device_count()
        names = "cuda:0" if count == 1 else f"cuda:0 to cuda:{count - 1}"
        raise SidliteError(f"this machine has {count} CUDA GPU{'s' * (count > 1)} ({names}); got {device!r}")
    return torch.device("cpu" if kind == "cpu" else name)


def make_generator(seed: int, device: torch.device | str = "cpu") -> torch.Generator:
    """A seeded ``torch.Generator`` on ``device``: every random draw in sidlite goes through one."""
    check_seed(seed)
    generator = torch.Generator(device=torch.device(device))
    generator.manual_seed(int(seed))
    return generator


def check_seed(seed) -> None:
    """A seed is a whole number from −2⁶³ to 2⁶⁴ − 1 (what a torch generator takes)."""
    check(isinstance(seed, int) and not isinstance(seed, bool) and -2 ** 63 <= seed < 2 ** 64,
          f"a seed is a whole number from -2^63 to 2^64 - 1, got {seed!r}")


def normal_noise(shape, generator=None, dtype=torch.float32, device="cpu") -> torch.Tensor:
    """Standard normal noise of ``shape`` from ``generator``, or from a list of generators for a batch.

    With a list, ``shape`` starts with the batch size and row i is drawn by generator i alone, exactly
    what that generator would draw for a single sample: a batch of seeds gives the images of the seeds.
    """
    if isinstance(generator, (list, tuple)):
        if len(shape) == 0 or shape[0] != len(generator):
            raise SidliteError(f"a batch of {len(generator)} generators draws noise of shape (B={len(generator)}, …), "
                               f"got {tuple(shape)}")
        return torch.stack([torch.randn(tuple(shape[1:]), generator=g, dtype=dtype, device=device) for g in generator])
    return torch.randn(tuple(shape), generator=generator, dtype=dtype, device=device)


def reuse_freed_memory(budget: int | None = None) -> bool:
    """Keep freed CPU memory in the process for reuse instead of returning it to the OS (glibc only).

    Every denoising step makes and frees several patch matrices of N·D floats (118 MB each at the
    finest level of a 248×186 image). glibc serves blocks that large with a fresh ``mmap`` and unmaps
    them on free, so each step touches every page anew: on the 2-core development CPU that page
    faulting was ~40 % of a sample's time (14.4 s → 8.7 s per Table-1 sample once memory is reused).
    The library never calls it on import or construction: the ``sidlite`` command line, the benchmarks
    and the book's ``setup()`` opt in, since they own their process; a program embedding sidlite may
    call it too. Blocks up to 256 MB are kept and reused (the heap holds up to 512 MB free before it
    trims); larger ones, the bands of very large outputs, are still mapped and returned, so a bounded
    run keeps its bound (with all blocks kept, an 8192² output under a 4 GB budget peaked at 5.7 GB).
    Under a memory ``budget`` (bytes) what is kept is a share of it, as the plan does not count freed
    memory: blocks up to an eighth, trimmed above a quarter. Measured on the AMD EPYC: an outpainting
    run under 300 MB peaked at 0.73–0.91 GB resident with 256 MB kept, 0.59–0.69 GB so (0.62 with the
    allocator left alone; the interpreter and torch take 0.3 GB); a Table-1 sample under 1 GB kept its
    speed (3.3 s), where an eighth as the trim threshold cost 15 %. Set SIDLITE_KEEP_MALLOC=1 to leave
    the allocator alone.
    Returns whether the setting was applied.
    """
    if os.environ.get("SIDLITE_KEEP_MALLOC") == "1" or not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (musl, …): nothing to tune
        return False
    keep = _REUSE_BELOW if budget is None else max(2 ** 20, min(_REUSE_BELOW, budget // 8))
    applied = bool(mallopt(_M_MMAP_THRESHOLD, keep)) and bool(mallopt(_M_TRIM_THRESHOLD, 2 * keep))
    _KEPT["libc"] = libc if applied else None
    return applied


#: glibc, once :func:`reuse_freed_memory` has told it to keep freed memory (else None).
_KEPT: dict[str, ctypes.CDLL | None] = {"libc": None}


def release_freed_memory() -> None:
    """Give the memory the heap keeps free back to the OS (glibc's ``malloc_trim``), where
    :func:`reuse_freed_memory` asked it to keep some: the sampler calls it when a level ends, as the next
    level's matrices have other sizes and the blocks kept would only sit outside the budget (blocks freed
    below live ones are not trimmed otherwise: an edit under 400 MB grew by 0.57–0.70 GB, 0.38 GB with the
    allocator left alone). Does nothing elsewhere."""
    if _KEPT["libc"] is not None:
        _KEPT["libc"].malloc_trim(0)


_UNITS = {"": 1, "b": 1, "k": 2 ** 10, "kb": 2 ** 10, "m": 2 ** 20, "mb": 2 ** 20, "g": 2 ** 30, "gb": 2 ** 30,
          "t": 2 ** 40, "tb": 2 ** 40}


def parse_bytes(value: str | int | float) -> int:
    """A memory size from a number of bytes or text such as '8GB', '512 MB', '1.5g' (binary units)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        amount, unit = float(value), ""
    else:
        text = str(value).strip().lower().replace(" ", "").replace("ib", "b")
        number = text.rstrip("kmgtb")
        unit = text[len(number):]
        try:
            amount = float(number)
        except ValueError:
            raise SidliteError(f"cannot read {value!r} as a memory size; write e.g. 8GB or 512MB") from None
        if unit not in _UNITS:
            raise SidliteError(f"unknown memory unit in {value!r}; use B, KB, MB, GB or TB")
    if not math.isfinite(amount) or amount * _UNITS[unit] > 2 ** 62:
        raise SidliteError(f"cannot read {value!r} as a memory size; write e.g. 8GB or 512MB")
    size = int(amount * _UNITS[unit])
    if size <= 0:
        raise SidliteError(f"a memory budget must be positive, got {value!r}")
    return size


def available_memory(device: torch.device | str = "cpu") -> int:
    """Bytes free now: the GPU's free memory for CUDA, MemAvailable (or the cgroup limit) for the CPU."""
    device = torch.device(device)
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    free = None
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    free = int(line.split()[1]) * 1024
    except OSError:
        pass
    for limit_file in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            with open(limit_file) as handle:
                text = handle.read().strip()
        except OSError:
            continue
        if text.isdigit() and int(text) < 2 ** 60:
            free = min(free or int(text), int(text))
    return free if free is not None else 8 * 2 ** 30


def default_memory_budget(device: torch.device | str = "cpu") -> int:
    """What sidlite plans to use when no budget is given: 60 % of the memory free now."""
    return int(0.6 * available_memory(device))


def format_bytes(size: float) -> str:
    """'1.5 GB', '340 MB', … (binary units)."""
    for unit, scale in (("TB", 2 ** 40), ("GB", 2 ** 30), ("MB", 2 ** 20), ("KB", 2 ** 10)):
        if abs(size) >= scale:
            return f"{size / scale:.1f} {unit}"
    return f"{int(size)} B"
