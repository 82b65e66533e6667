"""Devices, generators and threads: the few facts about the machine that the rest of the package needs."""
from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys
from functools import lru_cache

import torch

from .errors import SidliteError

DEVICES = ("cpu", "cuda")

# glibc mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD, _M_MMAP_MAX = -1, -4


def resolve_device(device: str | torch.device | None = "cpu") -> torch.device:
    """A torch device from 'cpu', 'cuda', 'cuda:N' or 'auto' (CUDA when present), with a clear error."""
    if isinstance(device, torch.device):
        device = str(device)
    name = (device or "cpu").lower()
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    kind = name.split(":")[0]
    if kind not in DEVICES:
        raise SidliteError(f"unknown device {device!r}; use 'cpu', 'cuda' or 'auto'")
    if kind == "cuda" and not torch.cuda.is_available():
        raise SidliteError("CUDA was requested but this machine has no usable CUDA GPU; use --device cpu")
    return torch.device(name)


def make_generator(seed: int, device: torch.device | str = "cpu") -> torch.Generator:
    """A seeded ``torch.Generator`` on ``device``: every random draw in sidlite goes through one."""
    generator = torch.Generator(device=torch.device(device))
    generator.manual_seed(int(seed))
    return generator


@lru_cache(maxsize=1)
def reuse_freed_memory() -> bool:
    """Keep freed CPU memory in the process for reuse instead of returning it to the OS (glibc only).

    Every denoising step makes and frees several patch matrices of N·D floats (118 MB each at the
    finest level of a 248×186 image). glibc serves blocks that large with a fresh ``mmap`` and unmaps
    them on free, so each step touches every page anew: on the 2-core development CPU that page
    faulting was ~40 % of a sample's time (14.4 s → 8.7 s per Table-1 sample once memory is reused).
    Called once by the CPU denoiser; the price is that the process keeps its peak memory.
    Set SIDLITE_KEEP_MALLOC=1 to leave the allocator alone. Returns whether the setting was applied.
    """
    if os.environ.get("SIDLITE_KEEP_MALLOC") == "1" or not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (musl, …): nothing to tune
        return False
    return bool(mallopt(_M_MMAP_MAX, 0)) and bool(mallopt(_M_TRIM_THRESHOLD, 2 ** 31 - 1))
