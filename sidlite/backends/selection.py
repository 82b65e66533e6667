"""The k largest entries of each row: a small compiled kernel on the CPU, ``torch.topk`` elsewhere.

The top-k backends choose twice per call: the nearest lists of each query, then the best patches of
each (query, list) pair. On a CPU, torch.topk was their largest cost after the matrix products: about
1.4 ns per entry on rows a few hundred wide with k = 5. The kernel in ``selection.c`` takes about a third
of that (it looks only at the few column groups that can hold a winner; its comment says why that is
exact).

The kernel is plain C with OpenMP. It is compiled once per machine, on first use, with the system's C
compiler (``$CC``, else ``cc``), and cached in ``$SIDLITE_CACHE`` (default ``~/.cache/sidlite``).
Without a compiler with OpenMP, or with ``SIDLITE_NATIVE=0``, ``torch.topk`` does the same work.
Both return the same values; among equal entries the chosen columns may differ.
"""
from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import shutil
import subprocess
import tempfile
from functools import lru_cache
from pathlib import Path

import torch

SOURCE = Path(__file__).with_name("selection.c")
FLAGS = ("-O3", "-march=native", "-fopenmp", "-shared", "-fPIC")
MAX_K = 64  # the kernel's limit on k (selection.c)


def cache_folder() -> Path:
    """Where compiled kernels are kept: ``$SIDLITE_CACHE``, else ``~/.cache/sidlite``."""
    return Path(os.environ.get("SIDLITE_CACHE") or Path.home() / ".cache" / "sidlite")


def _machine_key() -> bytes:
    """What a ``-march=native`` build depends on: the architecture and, on Linux, the CPU's feature flags."""
    flags = b""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        flags = next((line for line in cpuinfo.read_bytes().splitlines() if line.startswith(b"flags")), b"")
    return platform.machine().encode() + flags


def _build(compiler: str, library: Path) -> bool:
    """Compile the kernel into ``library`` (written whole, then renamed into place); False if that fails."""
    try:
        library.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=library.parent) as scratch:
            built = Path(scratch) / library.name
            subprocess.run([compiler, *FLAGS, str(SOURCE), "-o", str(built)], check=True, capture_output=True,
                           timeout=120)
            os.replace(built, library)
        return True
    except (OSError, subprocess.SubprocessError):
        return False


@lru_cache(maxsize=1)
def native_kernel():
    """The compiled kernel's entry point, built on first use; None when it is switched off or cannot be built."""
    if os.environ.get("SIDLITE_NATIVE", "1") == "0":
        return None
    compiler = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    if not compiler:
        return None
    key = hashlib.sha256(SOURCE.read_bytes() + " ".join((compiler, *FLAGS)).encode() + _machine_key()).hexdigest()
    library = cache_folder() / f"selection-{key[:16]}.so"
    if not library.is_file() and not _build(compiler, library):
        return None
    try:
        kernel = ctypes.CDLL(str(library)).sidlite_top_k_rows
    except (OSError, AttributeError):
        return None
    kernel.argtypes = [ctypes.c_void_p, ctypes.c_int64, ctypes.c_int64, ctypes.c_int64, ctypes.c_void_p,
                       ctypes.c_int, ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p]
    kernel.restype = ctypes.c_int
    return kernel


def top_k_rows(scores: torch.Tensor, k: int, lengths: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(values, columns), each (R, k): the k largest entries of each row of the (R, W) ``scores``, largest first.

    With ``lengths`` (R,), row r counts only its first lengths[r] entries; the entries past them are
    scratch (the fallback overwrites them with −inf). A row with fewer than k entries is padded with −inf
    values at column 0. The kernel serves float32 CPU matrices whose rows are contiguous.
    """
    rows, width = scores.shape
    kernel = native_kernel() if (scores.device.type == "cpu" and scores.dtype == torch.float32
                                 and scores.stride(1) == 1 and k <= MAX_K) else None
    if kernel is None:
        if lengths is not None:
            scores.masked_fill_(torch.arange(width, device=scores.device)[None, :] >= lengths[:, None], -torch.inf)
        if width < k:
            scores = torch.cat([scores, scores.new_full((rows, k - width), -torch.inf)], 1)
        top = scores.topk(k, dim=1)
        return top.values, torch.where(torch.isfinite(top.values), top.indices, 0)
    values = scores.new_empty(rows, k)
    columns = torch.empty(rows, k, dtype=torch.int64)
    lengths = None if lengths is None else lengths.to(torch.int64).contiguous()
    kernel(scores.data_ptr(), rows, width, scores.stride(0), None if lengths is None else lengths.data_ptr(),
           k, torch.get_num_threads(), values.data_ptr(), columns.data_ptr())
    return values, columns
