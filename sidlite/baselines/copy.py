"""The copy baseline: the input, shifted by a few pixels, the uncovered border filled by mirroring."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ..errors import check
from ..image_io import as_image
from ..runtime import make_generator


def copy_baseline(image, *, seed: int = 0, max_shift: float = 0.1) -> torch.Tensor:
    """The input moved by (dy, dx), each drawn uniformly from ±``max_shift`` of its side, the uncovered
    strips filled by mirroring the image at its border. Every pixel is a pixel of the input, and at
    least (1 − max_shift)² of the sample is one verbatim crop of it."""
    check(0 <= max_shift < 1, f"max_shift must lie in [0, 1), got {max_shift}")
    image = as_image(image)
    _, height, width = image.shape
    generator = make_generator(seed)
    sy, sx = int(max_shift * (height - 1)), int(max_shift * (width - 1))
    dy = int(torch.randint(-sy, sy + 1, (1,), generator=generator)) if sy else 0
    dx = int(torch.randint(-sx, sx + 1, (1,), generator=generator)) if sx else 0
    padded = F.pad(image[None], (abs(dx), abs(dx), abs(dy), abs(dy)), mode="reflect")[0]
    top, left = abs(dy) + dy, abs(dx) + dx
    return padded[:, top:top + height, left:left + width].contiguous()
