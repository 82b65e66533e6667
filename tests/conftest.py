"""Shared fixtures: small images and the optional benchmark data folder."""
from pathlib import Path

import pytest
import torch

import sidlite

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture
def small_image() -> torch.Tensor:
    """A 40×56 crop of a bundled photo: big enough for 2–3 levels with P = 5, fast on any CPU."""
    return sidlite.example_image("chelsea", max_side=96)[:, 10:50, 20:76].contiguous()


@pytest.fixture
def shared_data() -> Path:
    """The benchmark images beside the project; tests using them skip when they are absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"benchmark images not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture
def logit_rounding():
    """The tolerance for two float32 computations of one softmax-weighted average that round each logit
    differently: a few float32 ulps of the largest logit, and a logit moved by δ moves the output by up to
    about 2δ·max|y|."""
    def tolerance(largest_logit: float, largest_value: float) -> float:
        return 4 * torch.finfo(torch.float32).eps * largest_logit * 2 * largest_value
    return tolerance
