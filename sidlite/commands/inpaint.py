"""``sidlite inpaint``: fill a hole (mask file or rectangle) or extend the border with the image's own patches."""
from __future__ import annotations

from ..apps._shared import rectangle_mask
from ..apps.inpaint import inpaint, outpaint
from ..errors import check
from ._common import add_input, add_output, add_sampling, non_negative_int, output_paths, read_input, sampling_settings, save_all


def register(subparsers) -> None:
    parser = subparsers.add_parser("inpaint", help="fill a hole, or extend the image (outpainting)",
                                   description="Fill the hole given by --mask or --rect with patches of the rest of "
                                               "INPUT (known pixels are kept exactly), or extend INPUT by --extend "
                                               "margins. The mask is applied after --max-side shrinks the input.")
    add_input(parser)
    add_output(parser)
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--mask", metavar="FILE", help="an image the size of the input; light pixels mark the hole")
    where.add_argument("--rect", nargs=4, type=non_negative_int, metavar=("TOP", "LEFT", "H", "W"), help="a rectangular hole")
    where.add_argument("--extend", nargs=4, type=non_negative_int, metavar=("TOP", "BOTTOM", "LEFT", "RIGHT"),
                       help="outpaint: margins in pixels to add on each side")
    add_sampling(parser, "inpaint")
    parser.set_defaults(run=run)


def run(args) -> None:
    paths = output_paths(args.output, 1, args.overwrite)
    image = read_input(args)
    options = sampling_settings(args)
    if args.extend:
        check(any(args.extend), "--extend needs at least one positive margin")
        result = outpaint(image, *args.extend, **options)
    else:
        mask = args.mask if args.mask else rectangle_mask(tuple(image.shape[-2:]), *args.rect)
        result = inpaint(image, mask, **options)
    save_all([result], paths, args.overwrite)
