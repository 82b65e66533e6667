"""``sidlite upscale``: super-resolution with the image's own patches."""
from __future__ import annotations

from ..apps.upscale import upscale
from ._common import add_input, add_output, add_sampling, noise_level, output_paths, read_input, sampling_settings, save_all


def register(subparsers) -> None:
    parser = subparsers.add_parser("upscale", help="enlarge an image with detail made of its own patches",
                                   description="Enlarge INPUT by --factor: the input is the coarsest level, finer "
                                               "levels are sampled with its own patches and back-projected so the "
                                               "result, shrunk again, matches the input.")
    add_input(parser)
    add_output(parser)
    parser.add_argument("--factor", type=float, default=2.0, help="enlargement factor > 1 (default 2)")
    parser.add_argument("--noise-level", type=noise_level, default=0.5,
                        help="start each finer level from the coarser one re-noised to this noise level in (0, 1] (default 0.5)")
    parser.add_argument("--consistency", type=int, default=4, help="back-projection iterations per level (default 4)")
    add_sampling(parser, "upscale")
    parser.set_defaults(run=run)


def run(args) -> None:
    paths = output_paths(args.output, 1, args.overwrite)
    image = read_input(args)
    result = upscale(image, args.factor, noise_level=args.noise_level, consistency=args.consistency,
                     **sampling_settings(args))
    save_all([result], paths, args.overwrite)
