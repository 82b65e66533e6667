"""The paper's Table-1 evaluation on the 15 SinDDM images: six methods, every metric, one table.

    .venv/bin/python benchmarks/evaluation.py [--images N] [--samples S] [--methods a,b,…] [--max-side PX]

Runs :func:`sidlite.evaluation.evaluate` in the Table-1 setting (P = 15, 4 levels, T = 10, η = 0, seeds
10, 11, …) for sidlite exact / auto / T = 40 η = 1, GPNN, GPDM and the copy baseline, and writes
benchmarks/results/evaluation_<device>.{json,md}: per image and mean ± std over images, and the
paper's quoted numbers beside them. SIFID and LPIPS diversity appear when their weights are on disk
(see sidlite/evaluation/networks.py). The exact method costs minutes per sample on a CPU, so on a CPU
it runs on the first ``--exact-images`` images only (default 1); the table says how many images each
method saw. Results are saved after every method, so a long run keeps what it measured; ``--append``
resumes a table run in parts: it keeps every (method, image) row already measured and runs only the
missing ones. ``--add-metrics`` fills in metrics the stored rows lack (SIFID, LPIPS or NIQE once their
files are on disk): it draws the same seeded samples again, checks that they reproduce the stored patch SWD
and copy fraction, and keeps every stored number.
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sidlite.errors import SidliteError  # noqa: E402
from sidlite.evaluation import (METHOD_NAMES, PAPER_TABLE1, EvaluationTable, NIQEModel, evaluate,  # noqa: E402
                                load_benchmark, niqe)
from sidlite.evaluation.protocol import find_networks, optional_metrics  # noqa: E402

REPRODUCED = ("patch_swd", "copy_fraction")  # stored metrics a re-drawn sample must reproduce (--add-metrics)


def paper_markdown() -> str:
    rows = ["| method (quoted from the paper's Table 1) | SIFID | NIQE | LPIPS diversity | pixel diversity "
            "| s / sample (A6000) |", "|---|---|---|---|---|---|"]
    for q in PAPER_TABLE1.values():
        cell = lambda m: f"{q[m][0]} ± {q[m][1]}" if m in q else "–"  # noqa: E731
        rows.append(f"| {q['label']} | {cell('sifid')} | {cell('niqe')} | {cell('lpips_diversity')} | "
                    f"{cell('pixel_diversity')} | {q.get('seconds', '–')} |")
    return "\n".join(rows)


def input_niqe(images: dict) -> dict[str, float]:
    """NIQE of the inputs themselves, the yardstick for the samples' (empty without the pristine model)."""
    try:
        model = NIQEModel.pretrained()
    except SidliteError:
        return {}
    return {name: niqe(image, model) for name, image in images.items()}


def save(stem: Path, combined: EvaluationTable, machine: dict, elapsed: float, inputs: dict) -> None:
    """Write the table so far (called after every image, so a long run keeps what it measured)."""
    seen = {m: sum(r["method"] == m for r in combined.rows) for m in combined.methods()}
    result = {"machine": machine, "images_per_method": seen, "elapsed_s": elapsed, "input_niqe": inputs,
              **json.loads(combined.to_json())}
    stem.with_suffix(".json").write_text(json.dumps(result, indent=1))
    yardstick = []
    if inputs:
        values = torch.tensor(list(inputs.values()), dtype=torch.float64)
        yardstick = [f"NIQE of the {len(values)} inputs themselves: {values.mean():.3f} ± "
                     f"{values.std(unbiased=False):.3f}.", ""]
    md = [f"# Table-1 evaluation on {machine['device']} ({machine['cpu_threads']} CPU threads)", "",
          f"Setting: {combined.settings}. Images per method: {seen}. Elapsed {elapsed:.0f} s.", "",
          "## Mean ± std over images (this run)", "", combined.markdown(), "", *yardstick,
          "## The paper's numbers (quoted, secondary summary; RTX A6000; 50 samples per image)", "",
          paper_markdown(), "", "## Methods", ""] + [f"- {k}: {v}" for k, v in combined.notes.items()] + [
          "", "## Per image", "", combined.markdown(per_image=True)]
    stem.with_suffix(".md").write_text("\n".join(md) + "\n")


def add_missing_metrics(stored: dict, fresh: dict) -> None:
    """Copy into ``stored`` the metrics only ``fresh`` has, once its samples are shown to be the same."""
    for metric in REPRODUCED:
        if abs(fresh[metric] - stored[metric]) > 1e-4 * max(abs(stored[metric]), 1e-3):
            raise SystemExit(f"--add-metrics: {stored['method']} on {stored['image']} gave {metric} "
                             f"{fresh[metric]:.6g}, stored {stored[metric]:.6g}: not the same samples, "
                             f"so nothing was added")
    stored.update({k: v for k, v in fresh.items() if k not in stored})


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=15, help="first N images of sinddm15 (default all 15)")
    parser.add_argument("--samples", type=int, default=2, help="samples per image (the paper: 50)")
    parser.add_argument("--methods", default=",".join(METHOD_NAMES), help="comma-separated method names")
    parser.add_argument("--exact-images", type=int, default=None,
                        help="images for sidlite-exact (default: all on a GPU, 1 on a CPU)")
    parser.add_argument("--max-side", type=int, default=None, help="shrink the images (default: full size)")
    parser.add_argument("--patch-size", type=int, default=15, help="P (Table 1: 15)")
    parser.add_argument("--num-levels", type=int, default=4, help="pyramid levels (Table 1: 4)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--root", default=None, help="folder holding sinddm15/ (default ../shared/data)")
    parser.add_argument("--out", default=None, help="output stem (default benchmarks/results/evaluation_<device>)")
    parser.add_argument("--append", action="store_true",
                        help="keep the rows already in the output and run only the missing (method, image) pairs")
    parser.add_argument("--add-metrics", action="store_true",
                        help="with --append: draw the stored rows' samples again and add the metrics they lack")
    args = parser.parse_args(argv)
    try:
        images = load_benchmark("sinddm15", root=args.root, max_side=args.max_side)
    except SidliteError as error:
        print(f"skipped: {error}")
        return 0
    images = dict(list(images.items())[:args.images])
    device = torch.device(args.device)
    exact_images = args.exact_images or (len(images) if device.type == "cuda" else 1)
    stem = Path(args.out) if args.out else ROOT / "benchmarks" / "results" / f"evaluation_{device.type}"
    stem.parent.mkdir(parents=True, exist_ok=True)
    machine = {"platform": platform.platform(), "cpu_threads": torch.get_num_threads(), "torch": torch.__version__,
               "device": torch.cuda.get_device_name() if device.type == "cuda" else "cpu"}
    combined = EvaluationTable()
    earlier = 0.0
    if args.append and stem.with_suffix(".json").exists():  # resume: keep every (method, image) already measured
        prior = json.loads(stem.with_suffix(".json").read_text())
        ours = {"patch_size": args.patch_size, "num_levels": args.num_levels, "samples_per_image": args.samples,
                "max_side": args.max_side}
        differ = [k for k, v in ours.items() if prior["settings"].get(k, v) != v]
        if differ:
            parser.error(f"--append: {stem}.json was made with other settings ({', '.join(differ)}); "
                         f"use the same ones or another --out")
        combined.rows, combined.notes, combined.settings = prior["rows"], prior["notes"], prior["settings"]
        earlier = prior["elapsed_s"]
    if args.add_metrics and not args.append:
        parser.error("--add-metrics completes a stored table: use it with --append")
    inputs = input_niqe(images)
    networks = find_networks() if args.add_metrics else None
    started = time.perf_counter() - earlier
    for method in args.methods.split(","):
        subset = dict(list(images.items())[:exact_images]) if method == "sidlite-exact" else images
        stored = {row["image"]: row for row in combined.rows if row["method"] == method}
        for name, image in subset.items():
            missing = optional_metrics(networks, image, args.samples) - stored[name].keys() \
                if args.add_metrics and name in stored else set()
            if name in stored and not missing:
                continue  # measured, and (with --add-metrics) nothing to add
            table = evaluate(method, {name: image}, samples_per_image=args.samples, device=device, progress=True,
                             patch_size=args.patch_size, num_levels=args.num_levels)
            if name in stored:
                add_missing_metrics(stored[name], table.rows[0])
            else:
                combined.rows += table.rows
            networks = {**combined.settings.get("networks", {}), **table.settings["networks"]}
            combined.settings, combined.notes = table.settings, {**combined.notes, **table.notes}
            combined.settings.update(max_side=args.max_side, networks=networks)
            save(stem, combined, machine, time.perf_counter() - started, inputs)
        print(f"saved {stem}.json/.md with {method} on {len(subset)} images", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
