"""sidlite's compiled CPU kernels (``kernels.c``): top-k selection, the fused list scan, the windowed fold,
the exact scores of a probe's shortlist.

They are plain C with OpenMP, compiled once per machine on first use with the system's C compiler
(``$CC``, else ``cc``) and cached in ``$SIDLITE_CACHE`` (default ``~/.cache/sidlite``). Nothing needs them:
without a compiler with OpenMP, or with ``SIDLITE_NATIVE=0``, :func:`kernel` returns None and the callers
(:mod:`sidlite.backends.selection`, :func:`sidlite.patches.fold_windowed`) use torch, which computes the
same thing more slowly.
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

SOURCE = Path(__file__).with_name("kernels.c")
FLAGS = ("-O3", "-march=native", "-fopenmp", "-shared", "-fPIC")
_I64, _INT, _PTR = ctypes.c_int64, ctypes.c_int, ctypes.c_void_p
#: Each kernel's C arguments and result (kernels.c documents them).
SIGNATURES = {
    "sidlite_top_k_rows": ([_PTR, _I64, _I64, _I64, _PTR, _INT, _INT, _PTR, _PTR], _INT),
    "sidlite_fold_windowed": ([_PTR, _I64, _I64, _I64, _I64, _I64, _PTR, _PTR, _I64, _I64, _INT], None),
    "sidlite_scan_lists": ([_PTR, _I64, _PTR, _I64, _PTR, _PTR, _PTR, _I64, ctypes.c_float, _INT, _INT, _PTR, _PTR],
                           _INT),
    "sidlite_score_candidates": ([_PTR, _I64, _I64, _PTR, _PTR, _PTR, _I64, ctypes.c_float, _INT, _PTR], None),
}


def cache_folder() -> Path:
    """Where the compiled kernels are kept: ``$SIDLITE_CACHE``, else ``~/.cache/sidlite``."""
    return Path(os.environ.get("SIDLITE_CACHE") or Path.home() / ".cache" / "sidlite")


def _machine_key() -> bytes:
    """What a ``-march=native`` build depends on: the architecture and, on Linux, the CPU's feature flags."""
    flags = b""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        flags = next((line for line in cpuinfo.read_bytes().splitlines() if line.startswith(b"flags")), b"")
    return platform.machine().encode() + flags


def _build(compiler: str, library: Path) -> bool:
    """Compile the kernels into ``library`` (written whole, then renamed into place); False if that fails."""
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
def library() -> ctypes.CDLL | None:
    """The compiled kernels, built on first use; None when switched off or when they cannot be built."""
    if os.environ.get("SIDLITE_NATIVE", "1") == "0":
        return None
    compiler = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    if not compiler:
        return None
    key = hashlib.sha256(SOURCE.read_bytes() + " ".join((compiler, *FLAGS)).encode() + _machine_key()).hexdigest()
    path = cache_folder() / f"kernels-{key[:16]}.so"
    if not path.is_file() and not _build(compiler, path):
        return None
    try:
        loaded = ctypes.CDLL(str(path))
        for name, (arguments, result) in SIGNATURES.items():
            function = getattr(loaded, name)
            function.argtypes, function.restype = arguments, result
    except (OSError, AttributeError):
        return None
    return loaded


def kernel(name: str):
    """The kernel ``name`` of :data:`SIGNATURES`, or None where the kernels are not available."""
    loaded = library()
    return None if loaded is None else getattr(loaded, name)
