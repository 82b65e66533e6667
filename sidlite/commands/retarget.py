"""``sidlite retarget``: the image at a new size, its content kept at its own proportions."""
from __future__ import annotations

from ..apps.retarget import retarget
from ._common import add_input, add_output, add_sampling, add_size, output_paths, read_input, sampling_settings, save_all


def register(subparsers) -> None:
    parser = subparsers.add_parser("retarget", help="resize an image without stretching its content",
                                   description="Resample INPUT at a new size: the layout follows a plain resize, "
                                               "the detail is made of the input's unstretched patches.")
    add_input(parser)
    add_output(parser)
    add_size(parser, required=True)
    add_sampling(parser, "retarget")
    parser.set_defaults(run=run)


def run(args) -> None:
    paths = output_paths(args.output, 1, args.overwrite)
    image = read_input(args)
    result = retarget(image, tuple(args.size), **sampling_settings(args))
    save_all([result], paths, args.overwrite)
