"""``sidlite stylize``: restyle an image by guided denoising, toward a text prompt (CLIP) or, without any
weights, toward a palette image's colours or a texture image's patch statistics."""
from __future__ import annotations

import warnings
from types import SimpleNamespace

from ..apps.stylize import stylize
from ..clip import DEFAULT_CLIP, DEFAULT_VIEWS
from ..errors import check
from ..guidance import PaletteObjective, PatchStatsObjective
from ._common import add_input, add_output, add_sampling, noise_level, output_paths, positive_int, read_input, sampling_settings, save_all


def register(subparsers) -> None:
    parser = subparsers.add_parser("stylize", help="guided style: toward a text prompt (CLIP), a palette or a texture",
                                   description="Invert INPUT a little with its own patch denoiser, then denoise it "
                                               "back while guidance raises a score of the estimate.")
    add_input(parser)
    add_output(parser)
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--prompt", help="text the result should match (needs CLIP weights)")
    target.add_argument("--palette", metavar="IMAGE", help="weight-free: pull toward this image's colours")
    target.add_argument("--texture", metavar="IMAGE", help="weight-free: pull toward this image's patch statistics")
    parser.add_argument("--clip", default=None, metavar="MODEL",
                        help=f"CLIP model id or local folder (default {DEFAULT_CLIP}); read offline from the cache")
    parser.add_argument("--allow-download", action="store_true", help="let --clip fetch the model from the Hub")
    parser.add_argument("--views", type=positive_int, default=None,
                        help=f"augmented CLIP views per step (default {DEFAULT_VIEWS})")
    parser.add_argument("--noise-level", type=noise_level, default=0.3, help="how far the input is inverted (default 0.3)")
    parser.add_argument("--strength", type=float, default=1.0, help="guidance strength γ (default 1.0)")
    add_sampling(parser, "stylize")
    parser.set_defaults(run=run)


def run(args) -> None:
    check(args.strength >= 0, f"--strength must be >= 0, got {args.strength}")
    paths = output_paths(args.output, 1, args.overwrite)
    image = read_input(args)
    options = dict(noise_level=args.noise_level, strength=args.strength, **sampling_settings(args))
    if args.prompt is not None:
        out = stylize(image, prompt=args.prompt, clip_model=args.clip or DEFAULT_CLIP,
                      allow_download=args.allow_download, num_views=args.views or DEFAULT_VIEWS, **options)
    else:
        unused = [flag for flag, given in (("--clip", args.clip), ("--allow-download", args.allow_download),
                                           ("--views", args.views)) if given]
        if unused:
            warnings.warn(f"{', '.join(unused)} only act with --prompt; ignored with "
                          f"{'--palette' if args.palette else '--texture'}", stacklevel=2)
        source = read_input(SimpleNamespace(input=args.palette or args.texture, max_side=None))
        objective = PaletteObjective(source) if args.palette else PatchStatsObjective(source)
        out = stylize(image, objective, **options)
    save_all([out], paths, args.overwrite)
