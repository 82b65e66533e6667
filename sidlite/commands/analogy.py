"""``sidlite analogy``: the layout of STRUCTURE drawn with the patches of STYLE."""
from __future__ import annotations

from types import SimpleNamespace

from ..apps.analogy import structural_analogy
from ._common import add_output, add_sampling, noise_level, output_paths, positive_int, read_input, sampling_settings, save_all


def register(subparsers) -> None:
    parser = subparsers.add_parser("analogy", help="structural analogy: one image's layout in another's patches",
                                   description="Invert STRUCTURE's coarsest level with its own patch denoiser and "
                                               "reconstruct it with STYLE's patches, then refine coarse to fine.")
    parser.add_argument("structure", help="image whose layout is kept (a file or example:NAME)")
    parser.add_argument("style", help="image whose patches draw it (a file or example:NAME)")
    parser.add_argument("--max-side", type=positive_int, default=None,
                        help="shrink both inputs first so their long side is at most this many pixels")
    add_output(parser)
    parser.add_argument("--noise-level", type=noise_level, default=0.5,
                        help="how far the structure is inverted, in (0, 1]: low keeps more of it (default 0.5)")
    parser.add_argument("--short-side", type=positive_int, default=None,
                        help="short side of the output in pixels (default: the style image's)")
    parser.add_argument("--levels", type=positive_int, default=None, help="pyramid levels (default: the preset's 3)")
    add_sampling(parser, "analogy", steps_per_level=True)
    parser.set_defaults(run=run)


def run(args) -> None:
    paths = output_paths(args.output, 1, args.overwrite)
    structure = read_input(SimpleNamespace(input=args.structure, max_side=args.max_side))
    style = read_input(SimpleNamespace(input=args.style, max_side=args.max_side))
    settings = sampling_settings(args)
    if args.levels is not None:
        settings["num_levels"] = args.levels
    out = structural_analogy(structure, style, noise_level=args.noise_level, output_short_side=args.short_side,
                             **settings)
    save_all([out], paths, args.overwrite)
