"""CLIP as a guidance objective: loading (offline first), augmented views in plain torch, and the loss.

The score of an image for a prompt is -L with
L = (1/n) Σ_j 1.2·(1 - mean over views v of cos(E_img(v), E_txt(template_j(prompt)))),
n ~ Uniform{1…14} random templates per call (with replacement), and 16 views: the whole image resized to
a short side of 224 (long side at most 320), plus random crops of 60–100 % of each side resized to the same
size, every view randomly flipped, rotated/translated, perspective-warped, colour-jittered and sometimes
made grey. Averaging over many random views keeps the gradient from painting adversarial pixel noise.
Weights come through ``transformers`` (CLIPModel + its tokenizer), from a local folder or the Hugging Face
cache; nothing is downloaded unless asked.
"""
from __future__ import annotations

import math
import os
from pathlib import Path

import torch
import torch.nn.functional as F

from .errors import SidliteError, check
from .runtime import make_generator

DEFAULT_CLIP = "openai/clip-vit-base-patch32"
DEFAULT_VIEWS = 16  # augmented views a CLIP score averages per step
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
#: Prompt templates; the loss samples among their embeddings instead of averaging them.
TEMPLATES = ("{}.", "a {}.", "{}!", "{}...", "the {}.", "photo of {}.", "a photo of {}.",
             "high quality photo of {}.", "a picture of {}.", "an image of {}.", "a rendering of {}.",
             "a close-up photo of {}.", "a detailed picture of {}.", "a beautiful image of {}.")


def clip_available(model: str = DEFAULT_CLIP) -> bool:
    """Whether :func:`load_clip` can find ``model`` offline: a local folder with a config, or a snapshot in
    the Hugging Face cache. Cheap: it only looks at the file system (no ``transformers`` import)."""
    folder = Path(model).expanduser()
    if folder.is_dir():
        return (folder / "config.json").is_file()
    hub = os.environ.get("HF_HUB_CACHE") or os.path.join(
        os.environ.get("HF_HOME", os.path.join(os.path.expanduser("~"), ".cache", "huggingface")), "hub")
    snapshots = Path(hub) / f"models--{model.replace('/', '--')}" / "snapshots"
    return snapshots.is_dir() and any((snap / "config.json").exists() for snap in snapshots.iterdir())


def load_clip(model: str = DEFAULT_CLIP, device: str | torch.device = "cpu", allow_download: bool = False):
    """A frozen float32 (CLIPModel, tokenizer) pair from a local folder or the Hugging Face cache.

    With ``allow_download`` the model may be fetched from the Hub; otherwise a missing model raises a
    :class:`SidliteError` that says how to get it.
    """
    try:
        from transformers import AutoTokenizer, CLIPModel
    except ImportError:
        raise SidliteError("CLIP guidance needs the 'transformers' package; install it with "
                           "pip install transformers") from None
    source = str(Path(model).expanduser()) if Path(model).expanduser().is_dir() else model
    try:
        clip = CLIPModel.from_pretrained(source, local_files_only=not allow_download)
        tokenizer = AutoTokenizer.from_pretrained(source, local_files_only=not allow_download)
    except (OSError, ValueError) as error:
        reason = str(error).strip().splitlines()[0][:160] if str(error).strip() else type(error).__name__
        if model.startswith(("/", ".", "~")) and not Path(model).expanduser().exists():
            raise SidliteError(f"no CLIP model folder {model}; check the path, or give a model id such as "
                               f"{DEFAULT_CLIP}") from None
        if source != model or Path(model).expanduser().exists():  # a folder (or file) the user named
            raise SidliteError(f"{model} holds no CLIP model that transformers can load ({reason}); pass a "
                               f"folder saved by CLIPModel.save_pretrained, or a model id such as {DEFAULT_CLIP}") from None
        if allow_download:
            raise SidliteError(f"CLIP model {model!r} could not be downloaded ({reason}); check the network "
                               f"and the model id, or pass a local folder") from None
        raise SidliteError(f"CLIP model {model!r} is not available offline ({reason}); fetch it once with "
                           f"`hf download {model}` (or pass a local folder, or allow downloading with "
                           f"--allow-download / allow_download=True)") from None
    clip = clip.to(device=device, dtype=torch.float32).eval().requires_grad_(False)
    return clip, tokenizer


def _uniform(generator: torch.Generator, low: float, high: float) -> float:
    return low + (high - low) * float(torch.rand((), generator=generator))


def _chance(generator: torch.Generator, p: float) -> bool:
    return float(torch.rand((), generator=generator)) < p


def _warp(view: torch.Tensor, grid: torch.Tensor, fill: float) -> torch.Tensor:
    """Sample ``view`` (1, 3, h, w) at ``grid`` (1, h, w, 2); outside the image the value is ``fill``."""
    return F.grid_sample(view - fill, grid, mode="bilinear", padding_mode="zeros", align_corners=False) + fill


def _base_grid(h: int, w: int, device, dtype) -> torch.Tensor:
    ys = (torch.arange(h, device=device, dtype=dtype) + 0.5) / h * 2 - 1
    xs = (torch.arange(w, device=device, dtype=dtype) + 0.5) / w * 2 - 1
    gy, gx = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack([gx, gy], -1)  # (h, w, 2) as (x, y)


def random_affine(view: torch.Tensor, generator: torch.Generator, degrees: float = 15.0,
                  translate: float = 0.1, fill: float = 1.0) -> torch.Tensor:
    """Rotate by U(±degrees) about the centre and shift by up to ``translate`` of each side."""
    h, w = view.shape[-2:]
    angle = math.radians(_uniform(generator, -degrees, degrees))
    tx, ty = 2 * _uniform(generator, -translate, translate), 2 * _uniform(generator, -translate, translate)
    grid = _base_grid(h, w, view.device, view.dtype)
    # Output point p comes from input point R⁻¹(p - t), in pixel units so rotation is not skewed by the aspect.
    px, py = (grid[..., 0] - tx) * w / 2, (grid[..., 1] - ty) * h / 2
    cos, sin = math.cos(angle), math.sin(angle)
    sx, sy = cos * px + sin * py, -sin * px + cos * py
    return _warp(view, torch.stack([sx * 2 / w, sy * 2 / h], -1)[None], fill)


def _homography(src: torch.Tensor, dst: torch.Tensor) -> torch.Tensor:
    """The 3×3 projective map taking the four points ``src`` (4, 2) to ``dst`` (4, 2)."""
    rows, rhs = [], []
    for (x, y), (u, v) in zip(src.tolist(), dst.tolist()):
        rows += [[x, y, 1, 0, 0, 0, -u * x, -u * y], [0, 0, 0, x, y, 1, -v * x, -v * y]]
        rhs += [u, v]
    h = torch.linalg.solve(torch.tensor(rows, dtype=torch.float64), torch.tensor(rhs, dtype=torch.float64))
    return torch.cat([h, h.new_ones(1)]).reshape(3, 3)


def random_perspective(view: torch.Tensor, generator: torch.Generator, distortion: float = 0.4,
                       fill: float = 0.0) -> torch.Tensor:
    """Move each corner inward by up to ``distortion`` of the half-side and warp the image to fit."""
    h, w = view.shape[-2:]
    corners = torch.tensor([[-1.0, -1.0], [1.0, -1.0], [1.0, 1.0], [-1.0, 1.0]], dtype=torch.float64)
    moved = corners - corners.sign() * distortion * torch.rand((4, 2), generator=generator, dtype=torch.float64)
    inverse = _homography(moved, corners).to(view)  # output point (on the moved quad) -> input point
    grid = _base_grid(h, w, view.device, view.dtype)
    points = torch.cat([grid, torch.ones_like(grid[..., :1])], -1) @ inverse.T
    return _warp(view, (points[..., :2] / points[..., 2:])[None], fill)


def _gray(view: torch.Tensor) -> torch.Tensor:
    weights = torch.tensor([0.299, 0.587, 0.114], dtype=view.dtype, device=view.device).view(1, 3, 1, 1)
    return (view * weights).sum(1, keepdim=True)


def colour_jitter(view: torch.Tensor, generator: torch.Generator, amount: float = 0.1) -> torch.Tensor:
    """Random brightness, contrast and saturation factors in 1 ± amount and a hue turn of up to ±amount·360°.

    The hue turn is a rotation about the grey axis in YIQ space (smooth, so gradients pass through it).
    """
    view = (view * _uniform(generator, 1 - amount, 1 + amount)).clamp(0, 1)
    c = _uniform(generator, 1 - amount, 1 + amount)
    view = (c * view + (1 - c) * _gray(view).mean()).clamp(0, 1)
    s = _uniform(generator, 1 - amount, 1 + amount)
    view = (s * view + (1 - s) * _gray(view)).clamp(0, 1)
    turn = 2 * math.pi * _uniform(generator, -amount, amount)
    to_yiq = torch.tensor([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]], dtype=torch.float64)
    rotate = torch.tensor([[1, 0, 0], [0, math.cos(turn), -math.sin(turn)], [0, math.sin(turn), math.cos(turn)]],
                          dtype=torch.float64)
    matrix = (torch.linalg.inv(to_yiq) @ rotate @ to_yiq).to(view)
    return torch.einsum("ij,bjhw->bihw", matrix, view).clamp(0, 1)


def view_size(height: int, width: int, size: int = 224, max_size: int = 320) -> tuple[int, int]:
    """Short side ``size`` unless the long side would pass ``max_size`` (then the long side is max_size)."""
    short, long = min(height, width), max(height, width)
    scale = size / short if long * size / short <= max_size else max_size / long
    return max(1, round(height * scale)), max(1, round(width * scale))


def augment_views(image: torch.Tensor, num_views: int, generator: torch.Generator, size: int = 224,
                  max_size: int = 320, affine_fill: float = 1.0) -> torch.Tensor:
    """``num_views`` differentiable random views (V, 3, h, w) of a [0, 1] image (3, H, W).

    View 0 is the whole image; the others are random crops (one scale s ~ U(0.6, 1) for both sides).
    Each view is then flipped (p 0.5), rotated/translated (p 0.8, filled with ``affine_fill``),
    perspective-warped (p 0.5), colour-jittered (p 0.7) and made grey (p 0.15).
    """
    check(num_views >= 1, f"num_views must be >= 1, got {num_views}")
    height, width = image.shape[-2:]
    out_size = view_size(height, width, size, max_size)
    views = []
    for i in range(num_views):
        if i == 0:
            crop = image
        else:
            s = _uniform(generator, 0.6, 1.0)
            ch, cw = max(1, int(height * s)), max(1, int(width * s))
            top = int(torch.randint(0, height - ch + 1, (), generator=generator))
            left = int(torch.randint(0, width - cw + 1, (), generator=generator))
            crop = image[:, top:top + ch, left:left + cw]
        view = F.interpolate(crop[None], size=out_size, mode="bilinear", antialias=True, align_corners=False)
        if _chance(generator, 0.5):
            view = view.flip(-1)
        if _chance(generator, 0.8):
            view = random_affine(view, generator, fill=affine_fill)
        if _chance(generator, 0.5):
            view = random_perspective(view, generator)
        if _chance(generator, 0.7):
            view = colour_jitter(view, generator)
        if _chance(generator, 0.15):
            view = _gray(view).expand(-1, 3, -1, -1)
        views.append(view)
    return torch.cat(views)


def _features(output) -> torch.Tensor:
    """The projected embedding from a transformers output (a tensor in older versions, an output object in newer)."""
    return output if isinstance(output, torch.Tensor) else output.pooler_output


class ClipObjective:
    """score(x) = -L_CLIP((x + 1)/2) for a prompt: higher when x looks more like the text to CLIP.

    ``model`` and ``tokenizer`` come from :func:`load_clip` (or any transformers CLIPModel and tokenizer);
    views are drawn from ``generator`` (seeded by ``seed`` when not given).
    """

    def __init__(self, model, tokenizer, prompt: str, num_views: int = DEFAULT_VIEWS, seed: int = 0,
                 generator: torch.Generator | None = None, templates=TEMPLATES, affine_fill: float = 1.0):
        check(isinstance(prompt, str) and prompt.strip() != "", "the prompt must be non-empty text")
        check(num_views >= 1, f"num_views must be >= 1, got {num_views}")
        self.model, self.num_views, self.affine_fill = model, num_views, affine_fill
        self.device = next(model.parameters()).device
        self.generator = generator or make_generator(seed)
        self.size = int(model.config.vision_config.image_size)
        self.max_size = round(self.size * 320 / 224)
        tokens = tokenizer([t.format(prompt) for t in templates], padding=True, return_tensors="pt")
        with torch.no_grad():
            text = _features(model.get_text_features(**{k: v.to(self.device) for k, v in tokens.items()}))
        self.text = F.normalize(text.float(), dim=-1)
        self.mean = torch.tensor(CLIP_MEAN, device=self.device).view(1, 3, 1, 1)
        self.std = torch.tensor(CLIP_STD, device=self.device).view(1, 3, 1, 1)

    def loss(self, image01: torch.Tensor) -> torch.Tensor:
        """L for a [0, 1] image (3, H, W)."""
        views = augment_views(image01.to(self.device, torch.float32), self.num_views, self.generator,
                              self.size, self.max_size, self.affine_fill)
        # views that are not size x size need the positional embedding resampled (bicubic, inside transformers)
        extra = {} if tuple(views.shape[-2:]) == (self.size, self.size) else {"interpolate_pos_encoding": True}
        try:
            embedded = self.model.get_image_features(pixel_values=(views - self.mean) / self.std, **extra)
        except TypeError:
            raise SidliteError("this transformers version cannot resample CLIP's positional embedding for "
                               "non-square views; upgrade transformers (pip install -U transformers)") from None
        embedded = _features(embedded)
        embedded = F.normalize(embedded, dim=-1)
        count = int(torch.randint(1, len(self.text) + 1, (), generator=self.generator))
        chosen = self.text[torch.randint(0, len(self.text), (count,), generator=self.generator)]
        cosines = embedded @ chosen.T  # (views, targets)
        return (1.2 * (1 - cosines.mean(0))).mean()

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return -self.loss((x + 1) / 2)
