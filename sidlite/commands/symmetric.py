"""``sidlite symmetric``: a new image with an exact mirror symmetry."""
from __future__ import annotations

from ..apps.symmetric import symmetric
from ._common import add_input, add_output, add_sampling, add_size, output_paths, read_input, sampling_settings, save_all


def register(subparsers) -> None:
    parser = subparsers.add_parser("symmetric", help="a new, mirror-symmetric image",
                                   description="Generate a new image from INPUT that is exactly symmetric "
                                               "left-right (horizontal) or top-bottom (vertical).")
    add_input(parser)
    add_output(parser)
    add_size(parser)
    parser.add_argument("--axis", choices=("horizontal", "vertical"), default="horizontal",
                        help="horizontal mirrors left/right, vertical mirrors top/bottom (default horizontal)")
    parser.add_argument("--source", choices=("left", "right", "top", "bottom"), default=None,
                        help="the half that is kept (default left or top)")
    parser.add_argument("--latent", default=None, metavar="SPACE", help="work in a latent space, as for generate")
    add_sampling(parser, "symmetric")
    parser.set_defaults(run=run)


def run(args) -> None:
    paths = output_paths(args.output, 1, args.overwrite)
    image = read_input(args)
    result = symmetric(image, args.size, axis=args.axis, source=args.source, latent=args.latent,
                       **sampling_settings(args))
    save_all([result], paths, args.overwrite)
