"""Options and helpers shared by the subcommands: input, output, sampling settings and safe saving."""
from __future__ import annotations

import argparse
import warnings
from pathlib import Path

from ..backends import BACKENDS
from ..presets import by_name, preset
from ..errors import check
from ..examples import example_image, example_names
from ..image_io import image_size, load_image, refuse_overwrite, save_image


def int_at_least(minimum: int):
    """An argparse type for whole numbers >= ``minimum``."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected a number >= {minimum}, got {value}")
        return value
    return parse


positive_int = int_at_least(1)
non_negative_int = int_at_least(0)


def query_stride(text: str) -> str | int:
    """--query-stride: 'auto' or a whole number >= 1."""
    if text.lower() == "auto":
        return "auto"
    try:
        return positive_int(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(f"expected auto or a whole number >= 1, got {text!r}") from None


def noise_level(text: str) -> float:
    """An argparse type for a noise level in (0, 1]."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"a noise level lies in (0, 1], got {value}")
    return value


def add_size(parser: argparse.ArgumentParser, required: bool = False) -> None:
    """--size H W: the output size in pixels."""
    parser.add_argument("--size", nargs=2, type=positive_int, metavar=("H", "W"), required=required,
                        help="output size in pixels" if required else "output size (default: the input's)")


def add_input(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("input", help=f"an image file, or example:NAME for a bundled image ({', '.join(example_names())})")
    parser.add_argument("--max-side", type=positive_int, default=None,
                        help="shrink the input first so its long side is at most this many pixels")


def add_output(parser: argparse.ArgumentParser, samples: bool = False) -> None:
    """-o and --overwrite; ``samples``: the command writes several samples, numbered."""
    numbered = "; with several samples, _000, _001, … are appended" if samples else ""
    parser.add_argument("-o", "--output", required=True, help=f"output image path (.png/.jpg){numbered}")
    parser.add_argument("--overwrite", action="store_true", help="replace existing output files")


def add_sampling(parser: argparse.ArgumentParser, application: str, *, steps_per_level: bool = False) -> None:
    """The sampling options every subcommand shares: each defaults to the application's preset
    (``sidlite presets`` lists them), and ``--preset`` starts from another row of that table."""
    default = f"the {application} preset's"
    if steps_per_level:
        parser.add_argument("--steps", type=positive_int, nargs="+", default=None, metavar="T",
                            help=f"steps per level, finest first, or one for all (default: {default})")
    else:
        parser.add_argument("--steps", type=positive_int, default=None,
                            help=f"denoising steps per level (default: {default})")
    parser.add_argument("--eta", type=float, default=None, help=f"stochasticity in [0, 1] (default: {default})")
    parser.add_argument("--patch-size", type=positive_int, default=None, help=f"patch side P (default: {default})")
    parser.add_argument("--seed", type=int, default=None, help=f"random seed (default: {default})")
    parser.add_argument("--preset", default=None, metavar="NAME",
                        help="start from another preset (see 'sidlite presets'), e.g. generate-table1")
    add_runtime(parser)


def add_runtime(parser: argparse.ArgumentParser) -> None:
    """Backend, device, memory and progress options."""
    parser.add_argument("--backend", default=None, metavar="SPEC",
                        help=f"patch denoiser, with options: auto | {' | '.join(BACKENDS)}, e.g. topk:k=5,nprobe=4 "
                             f"(default auto)")
    parser.add_argument("--device", default=None, help="cpu | cuda | auto (default cpu)")
    parser.add_argument("--memory-budget", default=None, metavar="SIZE",
                        help="most memory sampling's data may hold, e.g. 4GB (default: 60%% of the free memory); "
                             "the process itself takes about 0.3 GB more")
    parser.add_argument("--query-stride", default=None, type=query_stride,
                        help="query patch stride: auto (2 on levels above 8M positions) or a whole number")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


SETTINGS = ("steps", "eta", "patch_size", "seed", "backend", "device", "memory_budget", "query_stride", "batch_size")


def sampling_settings(args) -> dict:
    """The settings given on the command line (``config`` from --preset, then each option given)."""
    settings = {key: getattr(args, key) for key in SETTINGS if getattr(args, key, None) is not None}
    if isinstance(settings.get("steps"), list):
        settings["steps"] = settings["steps"][0] if len(settings["steps"]) == 1 else tuple(settings["steps"])
    settings["progress"] = not args.quiet
    if getattr(args, "preset", None):
        application, space = by_name(args.preset)
        settings["config"] = preset(application, space)
        if space != "pixels" and getattr(args, "latent", None) in (None, "pixels"):
            warnings.warn(f"the {args.preset} preset is made for a latent space, but this run is in pixels; add "
                          f"--latent pca (or a VAE) to run it where it was tuned", stacklevel=2)
    return settings


def read_input(args) -> "torch.Tensor":
    """The input image from a path or ``example:NAME``, shrunk to ``--max-side`` if given; where it was shrunk,
    ``args.shrunk_by_max_side`` is set, so that an error calling the image too small can name the flag."""
    source = args.input
    if source.startswith("example:"):
        image = example_image(source.split(":", 1)[1], args.max_side)
    else:
        image = load_image(source, args.max_side)
    args.shrunk_by_max_side = args.max_side is not None and max(source_size(source)) > args.max_side
    return image


def explain_small_input(message: str, args) -> str:
    """``message``, with a note that --max-side made the image that small where it did."""
    if "smaller than the" in message and getattr(args, "shrunk_by_max_side", False):
        return f"{message} (--max-side {args.max_side} shrank the input to that size)"
    return message


def source_size(source: str) -> tuple[int, int]:
    """(H, W) of an input path or ``example:NAME`` before any ``--max-side`` shrink."""
    if source.startswith("example:"):
        return tuple(example_image(source.split(":", 1)[1]).shape[-2:])
    return image_size(source)


def check_folder_path(folder: Path) -> None:
    """Refuse, before any work, a folder path that runs through a file (it could never be created)."""
    for part in (folder, *folder.parents):
        if part.exists():
            where = "" if part == folder else f", so {folder} cannot be one"
            check(part.is_dir(), f"{part} is a file, not a folder{where}; choose another output path")
            return


#: The extensions an output may take: lossless or high-quality formats Pillow writes (GIF's 256 colours are not).
OUTPUT_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


def output_paths(output: str, count: int, overwrite: bool) -> list[Path]:
    """Where ``count`` outputs go; refuses (before any work) to replace existing files."""
    path = Path(output)
    check(path.suffix.lower() in OUTPUT_EXTENSIONS,
          f"output {output!r} needs one of the image extensions sidlite writes: {', '.join(OUTPUT_EXTENSIONS)}")
    check_folder_path(path.parent)
    paths = [path] if count == 1 else [path.with_name(f"{path.stem}_{i:03d}{path.suffix}") for i in range(count)]
    for each in paths:
        refuse_overwrite(each, overwrite)
    return paths


def save_all(images, paths: list[Path], overwrite: bool) -> None:
    for image, path in zip(images, paths):
        print(save_image(image, path, overwrite=overwrite))
