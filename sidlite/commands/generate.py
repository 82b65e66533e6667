"""``sidlite generate``: unconditional samples from one image."""
from __future__ import annotations

from ..errors import check
from ..large_output import check_disk_space, save_result
from ..model import generation_model
from ._common import add_input, add_output, add_sampling, add_size, output_paths, positive_int, read_input


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
    parser.add_argument("--memory-budget", default=None, metavar="SIZE",
                        help="most memory sampling may hold, e.g. 4GB (default: 60%% of the free memory)")
    parser.add_argument("--query-stride", default="auto", type=lambda t: t if t == "auto" else positive_int(t),
                        help="query patch stride: auto (2 on levels above 8M positions) or a whole number")
    parser.add_argument("--plan", action="store_true",
                        help="print every level's plan (backend, stride, bands, memory, work) and exit")
    parser.set_defaults(run=run)


def run(args) -> None:
    check(args.steps >= 1, f"--steps must be >= 1, got {args.steps}")
    check(args.eta is None or 0.0 <= args.eta <= 1.0, f"--eta must lie in [0, 1], got {args.eta}")
    paths = output_paths(args.output, args.samples, args.overwrite)
    image = read_input(args)
    codec, model, preset_eta = generation_model(
        image, size=args.size, patch_size=args.patch_size, backend=args.backend, device=args.device,
        latent=args.latent, memory_budget=args.memory_budget, query_stride=args.query_stride,
        keep_levels=args.samples > 1)
    if args.plan:
        print(model.plan.table())
        return
    height, width = (side * codec.factor for side in model.sample_shapes[0])
    check_disk_space(paths[0], height, width, len(paths))
    eta = preset_eta if args.eta is None else args.eta
    for index, path in enumerate(paths):
        result = model.sample(args.seed + index, args.steps, eta, progress=not args.quiet).image
        for written in save_result(codec, result, path, args.overwrite):
            print(written)
