"""``sidlite tile``: a new image that tiles seamlessly, plus tiled previews of it."""
from __future__ import annotations

from ..apps.tileable import DIRECTIONS, preview_grids, tile_preview_pixels, tileable
from ..image_io import save_array, to_uint8
from ..large_output import PREVIEW_LONG_SIDE
from ._common import add_input, add_output, add_sampling, add_size, output_paths, read_input, sampling_settings


def register(subparsers) -> None:
    parser = subparsers.add_parser("tile", help="a seamlessly tileable image, with 2x2 and 3x3 previews",
                                   description="Generate a tileable image from INPUT. Beside OUTPUT it writes "
                                               "OUTPUT_2x2 and OUTPUT_3x3 (1x2/1x3 or 2x1/3x1 along one axis), "
                                               f"shrunk to {PREVIEW_LONG_SIDE} pixels on the long side where larger.")
    add_input(parser)
    add_output(parser)
    add_size(parser)
    parser.add_argument("--direction", choices=DIRECTIONS, default="both", help="which way it tiles (default both)")
    parser.add_argument("--shifts", type=int, choices=(3, 4), default=4,
                        help="shifted denoiser calls per step: 4 (official default) or 3 (the paper)")
    parser.add_argument("--latent", default=None, metavar="SPACE", help="work in a latent space, as for generate")
    add_sampling(parser, "tileable")
    parser.set_defaults(run=run)


def run(args) -> None:
    grids = preview_grids(args.direction)
    path = output_paths(args.output, 1, args.overwrite)[0]
    previews = [path.with_name(f"{path.stem}_{r}x{c}{path.suffix}") for r, c in grids]
    for preview in previews:
        output_paths(str(preview), 1, args.overwrite)  # refuse before any work, like the main output
    image = read_input(args)
    result = tileable(image, args.size, direction=args.direction, num_shifts=args.shifts, latent=args.latent,
                      **sampling_settings(args))
    pixels = to_uint8(result)  # the previews repeat the 8-bit image, shrunk where they would be large
    del result
    print(save_array(pixels, path, overwrite=args.overwrite))
    for (rows, cols), preview in zip(grids, previews):
        print(save_array(tile_preview_pixels(pixels, rows, cols), preview, overwrite=args.overwrite))
