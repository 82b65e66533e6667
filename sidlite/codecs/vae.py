"""The diffusers autoencoders as codecs: FLUX.1 / Stable Diffusion ``AutoencoderKL`` and ``AutoencoderTiny``.

Loading is offline-first: a local folder (holding ``config.json`` and the weights, or a ``vae/``
subfolder that does) or a Hugging Face model id already in the local cache. Nothing is downloaded
unless the caller passes ``allow_download=True``; a missing model raises a one-line
:class:`~sidlite.errors.SidliteError` that names it and says how to get it.

Encoding follows the paper's latent mode (spec §7): centre-crop to multiples of 16 px, run the encoder,
take the posterior **mode** (deterministic; AutoencoderTiny is deterministic already), then
z = (mode − shift_factor)·scaling_factor with both numbers from the model's config (FLUX.1:
0.3611 and 0.1159; SD: 0.18215 and none; TAESD: 1 and 0), which brings the latent to about unit
variance. Decoding inverts that. Large images go through the network in overlapping tiles
(:mod:`sidlite.codecs.tiling`); ``decode(z, periodic=True)`` instead switches every decoder convolution
to circular padding for one untiled pass, so a latent that tiles decodes to an image that tiles.
"""
from __future__ import annotations

import json
import warnings
from contextlib import contextmanager
from pathlib import Path

import torch

from ..errors import SidliteError, check
from ..runtime import resolve_device
from .base import Codec
from .tiling import tiled_map

#: Short names for the usual models: name -> (Hugging Face id, subfolder).
KNOWN_VAES: dict[str, tuple[str, str | None]] = {
    "flux": ("black-forest-labs/FLUX.1-schnell", "vae"),  # 16 channels, Apache-2.0, gated on the Hub
    "sd": ("stabilityai/sd-vae-ft-mse", None),  # 4 channels
    "taesd": ("madebyollin/taesd", None),  # tiny, 4 channels, SD-compatible latents
    "taef1": ("madebyollin/taef1", None),  # tiny, 16 channels, FLUX-compatible latents
}
SUPPORTED = ("AutoencoderKL", "AutoencoderTiny")
_LOADED: dict[tuple, torch.nn.Module] = {}


def _how_to_get(repo: str, subfolder: str | None) -> str:
    include = f" --include '{subfolder}/*'" if subfolder else ""
    gated = " (accept its licence on huggingface.co and log in first)" if repo.startswith("black-forest-labs/") else ""
    return (f"on a machine with internet run `huggingface-cli download {repo}{include}`{gated} and copy the "
            f"Hugging Face cache here, or pass the model's local folder as vae:/path/to/folder; "
            f"sidlite downloads only when asked (in Python, VAECodec(..., allow_download=True))")


def _read_folder_config(folder: Path, subfolder: str | None) -> tuple[dict, str | None]:
    """The config of the VAE in ``folder`` (or its ``vae/`` subfolder) and the subfolder that holds it."""
    options = [subfolder] if subfolder else [None, "vae"]
    for option in options:
        path = folder / option / "config.json" if option else folder / "config.json"
        if path.is_file():
            return json.loads(path.read_text()), option
    raise SidliteError(f"{folder} holds no VAE config.json (nor {folder}/vae/config.json); pass the folder "
                       f"that holds the VAE's config.json and weights")


def _read_hub_config(repo: str, subfolder: str | None, allow_download: bool) -> tuple[dict, str | None]:
    """The config of Hugging Face model ``repo`` from the cache (or the Hub if allowed)."""
    from diffusers import AutoencoderKL

    found = None
    for option in ([subfolder] if subfolder else [None, "vae"]):
        try:
            with warnings.catch_warnings():  # diffusers passes an argument huggingface_hub has deprecated
                warnings.filterwarnings("ignore", message=".*local_dir_use_symlinks.*")
                config = AutoencoderKL.load_config(repo, subfolder=option, local_files_only=not allow_download)
        except (OSError, ValueError):
            continue
        if config.get("_class_name") in SUPPORTED:
            return config, option
        found = found or (config, option)  # some other model: load_vae names what it is
    if found:
        return found
    raise SidliteError(f"the VAE {repo!r} is not available offline (not a local folder, not in the Hugging Face "
                       f"cache); {_how_to_get(repo, subfolder)}")


def load_vae(source: str, subfolder: str | None = None, allow_download: bool = False,
             device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32) -> torch.nn.Module:
    """A diffusers ``AutoencoderKL`` or ``AutoencoderTiny`` from a folder, a cached model id or a short name
    (:data:`KNOWN_VAES`), in eval mode without gradients; loaded once per (model, device, dtype)."""
    import diffusers

    check(isinstance(source, str) and source.strip() != "", "name a VAE: a local folder, a Hugging Face id or one of "
                                                            + ", ".join(KNOWN_VAES))
    repo, subfolder = KNOWN_VAES.get(source, (source, subfolder))
    folder = Path(repo).expanduser()
    if folder.is_dir():
        config, subfolder = _read_folder_config(folder, subfolder)
        location = str(folder.resolve())
    elif repo.startswith(("/", ".", "~")) or repo.count("/") != 1 or "\\" in repo:
        raise SidliteError(f"VAE folder not found: {repo}; pass an existing folder, a Hugging Face id "
                           f"(owner/name) or one of {', '.join(KNOWN_VAES)}")
    else:
        config, subfolder = _read_hub_config(repo, subfolder, allow_download)
        location = repo
    kind = config.get("_class_name")
    check(kind in SUPPORTED, f"{repo} is a {kind}, not a VAE sidlite can use ({' or '.join(SUPPORTED)})")
    device = resolve_device(device)
    key = (location, subfolder, str(device), dtype)
    if key not in _LOADED:
        verbosity = diffusers.utils.logging.get_verbosity()
        diffusers.utils.logging.set_verbosity_error()  # no advice to install accelerate, no unused-key notes
        try:
            model = getattr(diffusers, kind).from_pretrained(location, subfolder=subfolder, torch_dtype=dtype,
                                                             local_files_only=not allow_download)
        except (OSError, ValueError) as error:
            raise SidliteError(f"cannot load the VAE {repo!r} ({str(error).splitlines()[0]}); "
                               f"{_how_to_get(repo, subfolder)}") from None
        finally:
            diffusers.utils.logging.set_verbosity(verbosity)
        _LOADED[key] = model.to(device).eval().requires_grad_(False)
    return _LOADED[key]


@contextmanager
def circular_padding(module: torch.nn.Module):
    """Temporarily make every zero-padded ``Conv2d`` inside ``module`` pad circularly."""
    convs = [m for m in module.modules()
             if isinstance(m, torch.nn.Conv2d) and m.padding_mode == "zeros" and any(p > 0 for p in m.padding)]
    for conv in convs:
        conv.padding_mode = "circular"
    try:
        yield
    finally:
        for conv in convs:
            conv.padding_mode = "zeros"


#: Peak working memory of one decoder call, in tensors of the full-resolution stage's width: measured on a
#: CPU in float32 with randomly initialised models of the released shapes, the Stable Diffusion VAE's (128
#: channels there; FLUX.1's decoder is as wide) at 3,871–4,038 bytes a decoded pixel from 512² to 512×1024,
#: 7.6–7.9 such tensors, and AutoencoderTiny's (64 channels) at 1,041–1,135, 4.1–4.4; rounded up. Much
#: narrower decoders (the tests' 8 channels) take several times more per channel than this counts.
LIVE_TENSORS = {"AutoencoderKL": 8, "AutoencoderTiny": 5}
#: A tiled decode's float64 sums of weighted tiles and of weights: 4 channels of 8 bytes a pixel of the image.
TILE_SUM_BYTES = 32


class VAECodec(Codec):
    """A diffusers VAE as a codec (see the module doc).

    ``source``: a local folder, a Hugging Face id in the local cache, or a short name ('flux', 'sd',
    'taesd', 'taef1'). ``device`` 'auto' picks CUDA when present; ``dtype`` defaults to bfloat16 on CUDA
    (as the paper) and float32 on the CPU. Images whose latent exceeds ``tile`` cells per side are
    encoded and decoded in tiles of ``tile`` cells overlapping by ``overlap`` (``tile=None``: never).
    """

    blockwise = False  # convolutions mix neighbouring cells: decoded whole (in its own tiles)

    name = "vae"

    def __init__(self, source: str, subfolder: str | None = None, allow_download: bool = False,
                 device: str | torch.device = "auto", dtype: torch.dtype | None = None,
                 tile: int | None = 64, overlap: int = 8, multiple: int = 16):
        self.device = resolve_device(device)
        self.dtype = dtype or (torch.bfloat16 if self.device.type == "cuda" else torch.float32)
        self.source = source
        self.model = load_vae(source, subfolder, allow_download, self.device, self.dtype)
        config = self.model.config
        self.kind = type(self.model).__name__
        levels = config.get("encoder_block_out_channels") or config["block_out_channels"]
        self.cell_size = 2 ** (len(levels) - 1)
        self.channels = int(config["latent_channels"])
        self.scaling = float(config.get("scaling_factor") or 1.0)
        self.shift = float(config.get("shift_factor") or 0.0)
        check(multiple % self.cell_size == 0, f"the crop multiple {multiple} must be a multiple of the VAE's cell size {self.cell_size}")
        check(tile is None or tile > overlap >= 0, f"tiles need tile > overlap >= 0, got tile={tile}, overlap={overlap}")
        self.multiple = multiple
        self.tile, self.overlap = tile, overlap

    @torch.no_grad()
    def _encoder(self, x: torch.Tensor) -> torch.Tensor:
        out = self.model.encode(x)
        return out.latents if self.kind == "AutoencoderTiny" else out.latent_dist.mode()

    @torch.no_grad()
    def _decoder(self, z: torch.Tensor) -> torch.Tensor:
        return self.model.decode(z).sample

    def _tiled(self, cells: tuple[int, int]) -> bool:
        return self.tile is not None and max(cells) > self.tile

    def network_bytes(self, cells: tuple[int, int], periodic: bool = False) -> int:
        """Working memory of decoding a latent of ``cells``: the decoder's activations on its largest call
        (:data:`LIVE_TENSORS` full-resolution tensors: one tile, or the whole image when it fits one tile or
        the decode is ``periodic``, which cannot be tiled), and a tiled decode's sums. The Stable Diffusion
        VAE in float32 takes about 1 GB a 512² tile; periodic, 4 KB a pixel of the whole image."""
        config = self.model.config
        width = config["block_out_channels"][0] if self.kind == "AutoencoderKL" else config["decoder_block_out_channels"][-1]
        tiled = not periodic and self._tiled(cells)
        call = (min(cells[0], self.tile), min(cells[1], self.tile)) if tiled else cells
        pixels = self.cell_size ** 2
        activations = LIVE_TENSORS[self.kind] * width * self.dtype.itemsize * call[0] * call[1] * pixels
        return activations + (TILE_SUM_BYTES * cells[0] * cells[1] * pixels if tiled else 0)

    def encode(self, image: torch.Tensor) -> torch.Tensor:
        """(3, H, W) in [-1, 1] -> (channels, H'/f, W'/f) scaled latent (float32, on the image's device)."""
        check(image.dim() == 3 and image.shape[0] == 3, f"the VAE encodes RGB (3, H, W) images, got {tuple(image.shape)}")
        x = self.crop(image)[None].to(self.device, self.dtype)
        cells = (x.shape[-2] // self.cell_size, x.shape[-1] // self.cell_size)
        if self._tiled(cells):
            z = tiled_map(self._encoder, x, cells, self.cell_size, 1, self.channels, self.tile, self.overlap)
        else:
            z = self._encoder(x)
        return ((z.float() - self.shift) * self.scaling)[0].to(image.device)

    def decode(self, latent: torch.Tensor, periodic: bool = False) -> torch.Tensor:
        """(channels, h, w) -> (3, h·f, w·f) in [-1, 1]; ``periodic`` decodes with circular padding."""
        check(latent.dim() == 3 and latent.shape[0] == self.channels,
              f"expected a ({self.channels}, h, w) latent for this VAE, got {tuple(latent.shape)}")
        z = (latent.float() / self.scaling + self.shift)[None].to(self.device, self.dtype)
        cells = tuple(z.shape[-2:])
        if periodic:
            with circular_padding(self.model.decoder):
                image = self._decoder(z)
        elif self._tiled(cells):
            image = tiled_map(self._decoder, z, cells, 1, self.cell_size, 3, self.tile, self.overlap)
        else:
            image = self._decoder(z)
        return image[0].float().clamp(-1, 1).to(latent.device)

    def __repr__(self) -> str:
        return (f"VAECodec({self.source!r}, {self.kind}, channels={self.channels}, cell_size={self.cell_size}, "
                f"scaling={self.scaling}, shift={self.shift})")
