"""``sidlite generate``: unconditional samples from one image."""
from __future__ import annotations

import math
import sys

from ..apps.generate import generation_model
from ..image_io import refuse_overwrite
from ..large_output import check_disk_space, plan_saving, save_bytes, save_result, streamed_paths
from ..plan import PlanRefused
from ..runtime import format_bytes
from ._common import add_input, add_output, add_sampling, add_size, output_paths, positive_int, read_input, sampling_settings


def register(subparsers) -> None:
    parser = subparsers.add_parser("generate", help="new images from one image",
                                   description="Generate new images with the patch statistics of INPUT.")
    add_input(parser)
    add_output(parser, samples=True)
    add_size(parser)
    parser.add_argument("--samples", type=positive_int, default=1, help="number of samples (seed, seed+1, …)")
    parser.add_argument("--batch-size", type=positive_int, default=None, dest="batch_size",
                        help="samples run through each step together (default 1; more use more memory and "
                             "give larger, faster products, most of all on a GPU)")
    parser.add_argument("--latent", default=None, metavar="SPACE",
                        help="work in a latent space: pca (weight-free) or vae:<model id or folder>; pixels (the default) "
                             "works on the pixels themselves")
    add_sampling(parser, "generate")  # of the space: pixels P = 15, η = 0; latent P = 7, η = 1
    parser.add_argument("--plan", action="store_true",
                        help="print every level's plan (backend, stride, bands, memory, work) and exit")
    parser.set_defaults(run=run)


#: Output area, in multiples of the input's, from which a latent run with the plain average (ρ = ∞) is told of
#: the gigapixel preset: at 4x the latent preset's plain average left about a tenth of a texture washed out (README).
HINT_AREA = 4


def run(args) -> None:
    paths = None if args.plan else output_paths(args.output, args.samples, args.overwrite)  # --plan writes nothing
    image = read_input(args)
    try:
        codec, model = generation_model(image, args.size, latent=args.latent, keep_levels=args.samples > 1,
                                        **sampling_settings(args))
    except PlanRefused as refused:
        if args.plan:  # show which level is too large, then the refusal
            print(refused.plan.table())
        raise
    height, width = args.size or image.shape[-2:]
    much_larger = height * width >= HINT_AREA * image.shape[-2] * image.shape[-1]
    plain_average = math.isinf(model.config.rho)
    if args.latent and much_larger and plain_average and not args.quiet:  # after the plan: errors stay one line
        print("hint: for an output many times the input's size, --preset generate-gigapixel keeps more texture "
              "(the latent preset's plain average washes regions out)", file=sys.stderr)
    height, width = (side * codec.cell_size for side in model.sample_shapes[0])
    streamed = plan_saving(model.plan, codec, height, width, image.shape[0])
    if args.plan:
        print(model.plan.table())
        if codec.cell_size > 1:
            print(f"sizes in cells of the {codec.name} latent, {codec.cell_size}x{codec.cell_size} pixels each: "
                  f"the output is {height}x{width} pixels")
        print(f"saving: {'streamed to PNG with a preview' if streamed else 'whole'}, "
              f"{format_bytes(save_bytes(codec, height, width, image.shape[0], streamed, model.plan.device))}")
        return
    for path in paths if streamed else ():
        for written in streamed_paths(path):  # the names a streamed output takes, before any sampling
            refuse_overwrite(written, args.overwrite)
    check_disk_space(paths[0], height, width, len(paths))
    for image, path in zip(model.images(len(paths)), paths):
        for written in save_result(codec, image, path, args.overwrite, streamed=streamed):
            print(written)
