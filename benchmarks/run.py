"""sidlite benchmarks: one run, ratios beside absolute times, JSON + Markdown under benchmarks/results/.

Sections (``--only`` picks some), one module each under benchmarks/sections/:
  kernels  fp32 GEMM GFLOP/s (the yardstick) and the exact / attention backends' GFLOP/s at N = M = 16384
           for D = 147 and 675, each as a fraction of the GEMM figure (on CUDA also bf16);
  naive    the NumPy reference against the attention backend at a size the reference finishes in ~10 s;
  table1   unconditional generation in the paper's Table-1 setting (P = 15, 4 levels, T = 10, η = 0) on
           ../shared/data/sinddm15: seconds per sample, patch-SWD, diversity, copy fraction, per backend,
           and each as a ratio to exact attention when that runs too (by default on a GPU; on a CPU one
           timed step per level stands in for its time);
  ranking  top-k ranked in a PCA projection: candidate recall against full-dimension top-k, per size r;
           and, where the CPU multiplies bf16 in hardware, the probe through a bf16 shortlist against the
           float32 probe;
  scaling  seconds per denoising step against N for every backend, with fitted exponents;
  latent   a 1024×1024 output in the weight-free latent, with 'auto' and with exact attention;
  apps     every application with its command-line defaults on a ~250×190 photograph (seconds each);
  scale    outputs from 1024² to 8192² (CPU) or to a gigapixel (GPU) under a memory budget: seconds and
           peak memory, each size in its own process.
Results are saved after every section, so a run cut short keeps what it measured; a run of some sections
adds to (replaces the same sections of) the results file of its machine, and refuses a file measured on
another CPU (pass --tag).
Tests never time anything; this script is where speed is measured. The GPU figures in
benchmarks/results came from: --device cuda --backends 'attention;attention:dtype=bfloat16;
clustered:nprobe=1;clustered:nprobe=2;topk' (h200) and --only table1 --samples 4 --copy-samples 4
--backends 'attention;topk;clustered:nprobe=2' (h200_table1). benchmarks/gpu_session.sh runs every GPU
measurement the open targets need in one short lease.
"""
from __future__ import annotations

import argparse
import importlib
import json
import sys
from pathlib import Path


sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import sidlite  # noqa: E402
from benchmarks.common import ROOT, SHARED, Context, default_tag, machine  # noqa: E402

#: What the machine line says of sidlite's compiled CPU kernels (benchmarks.common.machine records it).
KERNELS_NOTE = {True: "; compiled CPU kernels (top-k selection, list scan, fold): yes",
                False: "; compiled CPU kernels: no (torch fallbacks)"}
SECTIONS = ("kernels", "naive", "table1", "ranking", "scaling", "latent", "apps", "scale")


def markdown(results) -> str:
    head = results["machine"]
    lines = [f"# sidlite benchmarks ({head['device']}" + (f", {head.get('gpu')}" if "gpu" in head else "") + ")", "",
             f"python {head['python']}, torch {head['torch']}, {head['cpu_threads']} threads of {head.get('cpu', 'a CPU not recorded')}, "
             f"{head['platform']}"
             + KERNELS_NOTE.get(head.get("native_kernels"), ""), ""]
    for name in SECTIONS:
        lines += importlib.import_module(f"benchmarks.sections.{name}").markdown(results)
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", default=",".join(SECTIONS))
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--backends", default=None, help="';'-separated backend specs for table1, e.g. 'clustered:nprobe=1;topk'")
    parser.add_argument("--images", type=int, default=0, help="first N sinddm15 images (0: all 15)")
    parser.add_argument("--samples", type=int, default=2, help="samples per image in table1")
    parser.add_argument("--batch", type=int, default=1, help="table1: samples run through each step together")
    parser.add_argument("--copy-samples", type=int, default=1, help="samples per image whose copy fraction is measured")
    parser.add_argument("--data", type=Path, default=SHARED, help="benchmark image folder (default ../shared/data)")
    parser.add_argument("--memory-budget", default=None, help="scale: the budget (default 4GB on a CPU, 70GB on a GPU)")
    parser.add_argument("--scale-steps", type=int, default=20, help="scale: steps per level (the gigapixel preset's 20)")
    parser.add_argument("--keep-previews", action="store_true", help="scale: keep each output's preview in results/scale/")
    parser.add_argument("--tag", default=None, help="result file name (default: cpu_ and the CPU's model name, or the GPU's name); a file holds one machine's runs")
    args = parser.parse_args()
    if args.batch < 1:
        parser.error(f"--batch must be a whole number >= 1, got {args.batch}")
    unknown = [name for name in args.only.split(",") if name not in SECTIONS]
    if unknown:
        parser.error(f"unknown section(s) {', '.join(unknown)}; choose from {', '.join(SECTIONS)}")
    sidlite.runtime.reuse_freed_memory()  # measured as the CLI runs (see its docstring)
    device = sidlite.resolve_device(args.device)
    tag = args.tag or default_tag(device)
    out = ROOT / "benchmarks" / "results"
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{tag}.json"
    results = json.loads(path.read_text()) if path.exists() else {}
    here = machine(device)
    before = results.get("machine", {}).get("cpu", here["cpu"])
    if before != here["cpu"]:  # a file gathers one machine's runs: ratios and GEMM rates are per machine
        parser.error(f"{path.name} holds runs measured on {before}, not this {here['cpu']}; "
                     f"pass --tag NAME to write this machine's results to benchmarks/results/NAME.json")
    results["machine"] = here

    def save():
        path.write_text(json.dumps(results, indent=2))
        path.with_suffix(".md").write_text(markdown(results))

    context = Context(device, args, results, save)
    for name in args.only.split(","):
        print(f"[{name}]", flush=True)
        importlib.import_module(f"benchmarks.sections.{name}").run(context)
        save()
    print(f"wrote {path} and .md")


if __name__ == "__main__":
    main()
