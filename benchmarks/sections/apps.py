"""Every application with its command-line defaults on a ~250×190 photograph: seconds per run."""
from __future__ import annotations

import tempfile
import time
from pathlib import Path

import sidlite
from sidlite.cli import main as cli

from ..common import SHARED, sync

#: Target of the speed issue: every application's default within this many seconds on the 2-core CPU.
TARGET_SECONDS = 15.0


def commands(folder: Path, data: Path) -> dict[str, list[str]]:
    """One command line per application, the input a 193×258 photograph (sinddm15's aqueduct) unless
    the application needs a pair (analogy: a letter S drawn with a mosaic, both shrunk to 250 px)."""
    photo = str(data / "sinddm15" / "aqueduct.png")
    piece = folder / "piece.png"
    image = sidlite.load_image(photo)
    sidlite.save_image(image[:, 20:68, 150:198], piece)  # a 48×48 piece of the sky's edge to paste lower down
    out = lambda name: ["-o", str(folder / f"{name}.png"), "--overwrite", "--quiet"]  # noqa: E731
    return {
        "generate": ["generate", photo, *out("generate")],
        "retarget": ["retarget", photo, "--size", "193", "386", *out("retarget")],
        "tile": ["tile", photo, *out("tile")],
        "symmetric": ["symmetric", photo, *out("symmetric")],
        "inpaint": ["inpaint", photo, "--rect", "70", "100", "50", "60", *out("inpaint")],
        "outpaint": ["inpaint", photo, "--extend", "0", "0", "64", "64", *out("outpaint")],
        "edit": ["edit", photo, "--paste", str(piece), "--at", "120", "40", *out("edit")],
        "analogy": ["analogy", str(data / "analogy" / "content" / "S_char.jpg"),
                    str(data / "analogy" / "style" / "duck_mosaic.jpg"), "--max-side", "250", *out("analogy")],
        "upscale": ["upscale", photo, *out("upscale")],
        "stylize": ["stylize", photo, "--palette", str(data / "sinddm15" / "balloons.png"), *out("stylize")],
    }


def run(context):
    device, results = context.device, context.results
    data = Path(getattr(context.options, "data", SHARED))
    rows = {}
    with tempfile.TemporaryDirectory() as folder:
        for name, argv in commands(Path(folder), data).items():
            argv = argv + (["--device", str(device)] if device.type == "cuda" and name != "stylize" else [])
            sync(device)
            start, cpu = time.perf_counter(), time.process_time()
            code = cli(argv)
            sync(device)
            seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
            shape = list(sidlite.load_image(Path(folder) / f"{name}.png").shape[1:]) if code == 0 else None
            shown = [Path(a).name if a.startswith(folder) else a.replace(str(data), "../shared/data") for a in argv]
            rows[name] = {"command": "sidlite " + " ".join(shown),
                          "seconds": seconds, "cpu_seconds": cpu, "exit": code, "output": shape}
            print(f"  {name}: {seconds:.1f} s, CPU {cpu:.1f} s (exit {code})", flush=True)
            results["apps"] = rows
            context.save()


def markdown(results) -> list[str]:
    rows = results.get("apps")
    if not rows:
        return []
    lines = [f"## Every application with its command-line defaults (target ≤ {TARGET_SECONDS:.0f} s on the 2-core CPU)", "",
             "Input: sinddm15's aqueduct (193×258) unless named; the analogy draws the letter S with a mosaic "
             "(both at most 250 px). Seconds in the process, model and index building included, interpreter start "
             "excluded; CPU seconds are the process's over all its threads (on a busy machine wall time grows, "
             "CPU time much less).", "", "| application | seconds | CPU seconds | output | command |", "|---|---|---|---|---|"]
    for name, row in rows.items():
        output = "x".join(map(str, row["output"])) if row["output"] else f"exit {row['exit']}"
        lines.append(f"| {name} | {row['seconds']:.1f} | {row.get('cpu_seconds', float('nan')):.1f} | {output} | "
                     f"`{row['command']}` |")
    return lines + [""]
