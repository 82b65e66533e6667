"""``sidlite edit``: harmonize a pasted or painted edit with the image's own patches."""
from __future__ import annotations

from types import SimpleNamespace

from ..apps.edit import edit, paste
from ..errors import check
from ..image_io import shrink_to
from ._common import (add_input, add_output, add_sampling, noise_level, output_paths, read_input, sampling_settings,
                      save_all, source_size)


def register(subparsers) -> None:
    parser = subparsers.add_parser("edit", help="harmonize a paste or a painted edit",
                                   description="Re-noise an edited INPUT part way and denoise it with the patches of "
                                               "INPUT. Give the edit as a painted copy (--edited) or as a piece to "
                                               "paste (--paste FILE --at ROW COL).")
    add_input(parser)
    add_output(parser)
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--edited", metavar="FILE", help="a copy of the input (same size) with something painted or "
                                                        "pasted in; --max-side shrinks it as it shrinks the input")
    what.add_argument("--paste", metavar="FILE", help="an image to paste into the input (needs --at); --max-side "
                                                       "shrinks it by the input's factor")
    parser.add_argument("--at", nargs=2, type=int, metavar=("ROW", "COL"),
                        help="top-left corner for --paste, in the input's own pixels (before --max-side)")
    parser.add_argument("--mask", metavar="FILE", help="light pixels mark the edited region (default: where the images differ)")
    parser.add_argument("--start-level", type=int, default=1, help="pyramid level re-noised first, 0 = finest (default 1)")
    parser.add_argument("--noise-level", type=noise_level, default=0.5, help="noise level in (0, 1] to re-noise to (default 0.5)")
    parser.add_argument("--no-keep-outside", action="store_true",
                        help="do not composite the result back onto the input outside the (feathered) edit")
    add_sampling(parser, "edit")
    parser.set_defaults(run=run)


def run(args) -> None:
    check(not args.paste or args.at is not None, "--paste needs --at ROW COL, the top-left corner of the piece")
    check(args.paste or args.at is None, "--at places a --paste piece; an --edited copy is already in place")
    paths = output_paths(args.output, 1, args.overwrite)
    height, width = source_size(args.input)  # what the user sees and gives coordinates in, before --max-side
    if args.edited:
        edited_size = source_size(args.edited)
        check(edited_size == (height, width), f"--edited is {edited_size[0]}x{edited_size[1]} but the input is "
                                              f"{height}x{width}; it must be a copy of the input at the input's size")
    image = read_input(args)
    if args.edited:  # a copy of the input's size: --max-side shrinks it alike
        edited, mask = read_input(SimpleNamespace(input=args.edited, max_side=args.max_side)), None
    else:  # the piece and its place scale with the input, as --max-side shrank it
        piece = read_input(SimpleNamespace(input=args.paste, max_side=None))  # a file or example:NAME
        (row, col), (rows, cols) = args.at, piece.shape[-2:]
        check(-rows < row < height and -cols < col < width,
              f"--at {row} {col} puts the {rows}x{cols} piece wholly outside the {height}x{width} input; give a "
              f"corner that overlaps it")
        scale = image.shape[-1] / width
        piece = shrink_to(piece, max(1, round(max(piece.shape[-2:]) * scale)))
        edited, mask = paste(image, piece, *(round(v * scale) for v in args.at))
    result = edit(image, edited, args.mask or mask, start_level=args.start_level, noise_level=args.noise_level,
                  keep_outside=not args.no_keep_outside, **sampling_settings(args))
    save_all([result], paths, args.overwrite)
