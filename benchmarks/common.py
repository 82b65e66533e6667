"""What every benchmark section shares: timing, the machine's description, the GEMM yardstick."""
from __future__ import annotations

import platform
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch

from sidlite import native

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"


@dataclass
class Context:
    """One benchmark run: the device, the command-line options, the results so far and how to save them."""

    device: torch.device
    options: object
    results: dict = field(default_factory=dict)
    save: Callable[[], None] = lambda: None


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def best_time(fn, device, repeats=3, warmup=1):
    """Best wall time of ``repeats`` calls after ``warmup`` calls (noisy shared machines: take the best)."""
    for _ in range(warmup):
        fn()
    sync(device)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - start)
    return min(times)


def cpu_name() -> str:
    """The CPU's model name as the system reports it (Linux: /proc/cpuinfo), else Python's guess."""
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def default_tag(device) -> str:
    """The results file of this machine: 'cpu_' and the first words of the CPU's model name (cpu_amd_epyc),
    or the GPU's name (h200)."""
    if device.type == "cuda":
        return torch.cuda.get_device_name().split()[-1].lower()
    words = re.findall(r"[a-z0-9]+", re.sub(r"\((r|tm)\)", " ", cpu_name().lower()))
    return "_".join(["cpu", *[w for w in words if w not in ("cpu", "processor")][:3]])


def machine(device):
    info = {"python": platform.python_version(), "torch": torch.__version__, "platform": platform.platform(),
            "cpu": cpu_name(), "cpu_threads": torch.get_num_threads(), "device": str(device)}
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name()
    else:  # the compiled CPU kernels (top-k selection, fold); torch serves where they cannot be built
        info["native_kernels"] = native.library() is not None
    return info


def gemm_gflops(device, dtype=torch.float32, size=None):
    size = size or (2048 if device.type == "cpu" else 8192)
    a = torch.randn(size, size, device=device, dtype=dtype)
    b = torch.randn(size, size, device=device, dtype=dtype)
    seconds = best_time(lambda: a @ b, device, repeats=5)
    return 2 * size ** 3 / seconds / 1e9
