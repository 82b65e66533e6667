"""Compose the README's figure from a `sidlite demo` folder: ``python scripts/readme_figure.py outputs/demo docs/demo.png``."""
import argparse
from pathlib import Path

from PIL import Image, ImageDraw

ROWS = [
    [("input.png", "input"), ("generate_000.png", "sample 1"), ("generate_001.png", "sample 2"),
     ("generate_002.png", "sample 3"), ("megapixel_1024.png", "1024x1024 (weight-free latent)")],
    [("retarget_wide.png", "retargeted 1.6x"), ("symmetric.png", "symmetric"), ("tileable_2x2.png", "tileable, 2x2"),
     ("inpaint.png", "rocket removed (inpainting)"), ("outpaint.png", "outpainted")],
    [("analogy_structure.png", "structure"), ("analogy_noise0.3.png", "drawn with mosaic patches"),
     ("edit_harmonized.png", "edit harmonized"), ("upscale_4x.png", "4x upscaled"),
     ("stylize_palette_result.png", "guided to a palette")],
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("demo", type=Path)
    parser.add_argument("output", type=Path)
    parser.add_argument("--height", type=int, default=180)
    args = parser.parse_args()
    rows = []
    for row in ROWS:
        tiles = []
        for name, label in row:
            image = Image.open(args.demo / name).convert("RGB")
            image = image.resize((round(image.width * args.height / image.height), args.height), Image.LANCZOS)
            tile = Image.new("RGB", (image.width, args.height + 22), "white")
            tile.paste(image, (0, 0))
            ImageDraw.Draw(tile).text((4, args.height + 5), label, fill="black")
            tiles.append(tile)
        width = sum(t.width for t in tiles) + 8 * (len(tiles) - 1)
        strip = Image.new("RGB", (width, tiles[0].height), "white")
        x = 0
        for tile in tiles:
            strip.paste(tile, (x, 0))
            x += tile.width + 8
        rows.append(strip)
    figure = Image.new("RGB", (max(r.width for r in rows), sum(r.height for r in rows) + 8 * (len(rows) - 1)), "white")
    y = 0
    for strip in rows:
        figure.paste(strip, (0, y))
        y += strip.height + 8
    args.output.parent.mkdir(parents=True, exist_ok=True)
    figure.save(args.output)
    print(args.output)


if __name__ == "__main__":
    main()
