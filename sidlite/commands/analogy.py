"""``sidlite analogy``: the layout of STRUCTURE drawn with the patches of STYLE."""
from __future__ import annotations

from types import SimpleNamespace

from ..apps.analogy import structural_analogy
from ..errors import check
from ._common import add_output, add_runtime, noise_level, output_paths, positive_int, read_input, save_all


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
    parser.add_argument("--scales", type=positive_int, default=3, help="pyramid levels (default 3)")
    parser.add_argument("--steps", type=positive_int, nargs="+", default=[10, 10, 50], metavar="T",
                        help="steps per level, finest first (default 10 10 50)")
    parser.add_argument("--patch-size", type=positive_int, default=11, help="patch side P (default 11)")
    parser.add_argument("--eta", type=float, default=0.0, help="stochasticity of the finer levels in [0, 1] (default 0)")
    add_runtime(parser, seed=1023)
    parser.set_defaults(run=run)


def run(args) -> None:
    check(0.0 <= args.eta <= 1.0, f"--eta must lie in [0, 1], got {args.eta}")
    steps = args.steps[0] if len(args.steps) == 1 else args.steps
    check(isinstance(steps, int) or len(steps) == args.scales,
          f"--steps takes one value or one per level ({args.scales}), got {len(args.steps)}")
    paths = output_paths(args.output, 1, args.overwrite)
    structure = read_input(SimpleNamespace(input=args.structure, max_side=args.max_side))
    style = read_input(SimpleNamespace(input=args.style, max_side=args.max_side))
    out = structural_analogy(structure, style, noise_level=args.noise_level, patch_size=args.patch_size,
                             num_scales=args.scales, steps=steps, eta=args.eta, output_short_side=args.short_side,
                             seed=args.seed, backend=args.backend, device=args.device, progress=not args.quiet)
    save_all([out], paths, args.overwrite)
