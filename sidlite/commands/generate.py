"""``sidlite generate``: unconditional samples from one image."""
from __future__ import annotations

from ..errors import check
from ..model import generate
from ._common import add_input, add_output, add_sampling, add_size, output_paths, positive_int, read_input, save_all


def register(subparsers) -> None:
    parser = subparsers.add_parser("generate", help="new images from one image",
                                   description="Generate new images with the patch statistics of INPUT.")
    add_input(parser)
    add_output(parser)
    add_size(parser)
    parser.add_argument("--samples", type=positive_int, default=1, help="number of samples (seed, seed+1, …)")
    parser.add_argument("--latent", default=None, metavar="SPACE",
                        help="work in a latent space: pca (weight-free) or vae:<model id or folder>")
    add_sampling(parser, eta=None, patch_size=None)  # pixels: P = 15, η = 0; latent: P = 7, η = 1
    parser.set_defaults(run=run)


def run(args) -> None:
    check(args.steps >= 1, f"--steps must be >= 1, got {args.steps}")
    check(args.eta is None or 0.0 <= args.eta <= 1.0, f"--eta must lie in [0, 1], got {args.eta}")
    paths = output_paths(args.output, args.samples, args.overwrite)
    image = read_input(args)
    samples = generate(image, args.samples, seed=args.seed, size=args.size, steps=args.steps, eta=args.eta,
                       patch_size=args.patch_size, backend=args.backend, device=args.device,
                       latent=args.latent, progress=not args.quiet)
    save_all(samples, paths, args.overwrite)
