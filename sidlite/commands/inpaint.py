"""``sidlite inpaint``: fill a hole (mask file or rectangle) or extend the border with the image's own patches."""
from __future__ import annotations

import torch

from ..apps._shared import rectangle_mask
from ..apps.inpaint import inpaint, outpaint
from ..errors import check
from ..pyramid import resize
from ._common import (add_input, add_output, add_sampling, non_negative_int, output_paths, read_input, sampling_settings,
                      save_all, source_size)


def register(subparsers) -> None:
    parser = subparsers.add_parser("inpaint", help="fill a hole, or extend the image (outpainting)",
                                   description="Fill the hole given by --mask or --rect with patches of the rest of "
                                               "INPUT (known pixels are kept exactly), or extend INPUT by --extend "
                                               "margins. --rect and --mask are given on the input as it is (a mask file may be any size of "
                                               "its aspect ratio) and shrink with it under --max-side.")
    add_input(parser)
    add_output(parser)
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--mask", metavar="FILE", help="an image the size of the input; light pixels mark the hole")
    where.add_argument("--rect", nargs=4, type=non_negative_int, metavar=("TOP", "LEFT", "H", "W"),
                       help="a rectangular hole, in the input's own pixels (before --max-side)")
    where.add_argument("--extend", nargs=4, type=non_negative_int, metavar=("TOP", "BOTTOM", "LEFT", "RIGHT"),
                       help="outpaint: margins to add on each side, in pixels of the output (after --max-side)")
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
        mask = args.mask if args.mask else rect_hole(args, tuple(image.shape[-2:]))
        result = inpaint(image, mask, **options)
    save_all([result], paths, args.overwrite)


def rect_hole(args, shape: tuple[int, int]) -> torch.Tensor:
    """The --rect hole, given in the input's own pixels, on the (possibly --max-side shrunk) image of ``shape``:
    a shrunk pixel is in the hole when more than half of its footprint is, as for a mask file."""
    hole = rectangle_mask(source_size(args.input), *args.rect)
    if tuple(hole.shape) != shape:
        hole = resize(hole[None].float(), shape)[0] > 0.5
        check(bool(hole.any()), f"the --rect hole of {args.rect[2]}x{args.rect[3]} pixels vanishes when --max-side "
                                f"shrinks the input to {shape[0]}x{shape[1]}; make it larger")
    return hole
