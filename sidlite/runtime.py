"""Devices, generators and threads: the few facts about the machine that the rest of the package needs."""
from __future__ import annotations

import torch

from .errors import SidliteError

DEVICES = ("cpu", "cuda")


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
