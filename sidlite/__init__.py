"""sidlite: training-free single-image diffusion. The image is the model.

The optimal (MMSE) denoiser over the patches of one image has a closed form; a coarse-to-fine sampler
built on it generates new images from that image alone, with no network and no training.
"""
from .backends import BACKENDS, choose_backend, make_backend, naive_denoise
from .codecs import Codec, get_codec
from .denoiser import ImageDenoiser
from .errors import SidliteError
from .examples import example_credit, example_image, example_names
from .image_io import as_image, load_image, save_image, to_display
from .metrics import coherence, completeness, copy_fraction, patch_swd, pixel_diversity
from .model import SingleImageModel, trajectory
from .apps.generate import generate, generation_model
from .config import SamplingConfig
from .presets import PRESETS, preset
from .patches import extract_patches, fold_patches, gaussian_window
from .pyramid import build_pyramid, laplacian_blend, pyramid_shapes, resize
from .runtime import make_generator, resolve_device
from .sampler import Hooks, SampleResult, invert, sample_pyramid
from .schedule import Schedule

__version__ = "0.1.0"

# Accelerations, latent codecs and applications add their public names below, one import line each.
from .apps.retarget import retarget
from .apps.tileable import tile_preview, tileable
from .apps.symmetric import mirror, symmetric
from .apps.inpaint import inpaint, outpaint, rectangle_mask
from .apps.edit import edit, harmonize, paste
from .apps.upscale import upscale
from .metrics import seam_error, symmetry_error
from .apps.analogy import structural_analogy
from .apps.stylize import palette_style, stylize, texture_style
from .guidance import Guidance, PaletteObjective, PatchStatsObjective
from .codecs import BlockPCACodec, VAECodec, load_vae
from .els import GlobalDenoiser, LocalPatchDenoiser, sample_images
from .metrics import flat_fraction, layout_distance, pixel_diversity_gray, pixel_spread
from .evaluation import evaluate
