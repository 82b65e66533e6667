"""sidlite benchmarks: one run, ratios beside absolute times, JSON + Markdown under benchmarks/results/.

Sections (``--only`` picks some):
  kernels  fp32 GEMM GFLOP/s (the yardstick) and the exact / attention backends' GFLOP/s at N = M = 16384
           for D = 147 and 675, each as a fraction of the GEMM figure (on CUDA also bf16);
  naive    the NumPy reference against the attention backend at a size the reference finishes in ~10 s;
  table1   unconditional generation in the paper's Table-1 setting (P = 15, 4 scales, T = 10, η = 0) on
           ../shared/data/sinddm15: seconds per sample, patch-SWD, diversity, copy fraction, per backend,
           and each as a ratio to exact attention when that runs too (by default on a GPU; on a CPU one
           timed step per level stands in for its time);
  scaling  seconds per denoising step against N for every backend, with fitted exponents;
  latent   a 1024×1024 output in the weight-free latent, with 'auto' and with exact attention.
Results are saved after every section, so a run cut short keeps what it measured.
Tests never time anything; this script is where speed is measured. The GPU figures in
benchmarks/results came from: --device cuda --backends 'attention;attention:dtype=bfloat16;
clustered:nprobe=1;clustered:nprobe=2;topk' (h200) and --only table1 --samples 4 --copy-samples 4
--backends 'attention;topk;clustered:nprobe=2' (h200_table1).
"""
from __future__ import annotations

import argparse
import json
import math
import platform
import time
from pathlib import Path

import numpy as np
import torch

import sidlite
from sidlite.backends import BACKENDS, make_backend, naive_denoise

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def best_time(fn, device, repeats=3, warmup=1):
    """Best wall time of ``repeats`` calls after ``warmup`` calls (noisy shared machines: take the best)."""
    for _ in range(warmup):
        fn()
    sync(device)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - start)
    return min(times)


def machine(device):
    info = {"python": platform.python_version(), "torch": torch.__version__, "platform": platform.platform(),
            "cpu_threads": torch.get_num_threads(), "device": str(device)}
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name()
    return info


def gemm_gflops(device, dtype=torch.float32, size=None):
    size = size or (2048 if device.type == "cpu" else 8192)
    a = torch.randn(size, size, device=device, dtype=dtype)
    b = torch.randn(size, size, device=device, dtype=dtype)
    seconds = best_time(lambda: a @ b, device, repeats=5)
    return 2 * size ** 3 / seconds / 1e9


def kernels(device, results, n=16384):
    gemm = gemm_gflops(device)
    rows = {"gemm_fp32_gflops": gemm, "n": n}
    dtypes = [("fp32", torch.float32)] + ([("bf16", torch.bfloat16)] if device.type == "cuda" else [])
    if device.type == "cuda":
        rows["gemm_bf16_gflops"] = gemm_gflops(device, torch.bfloat16)
    g = torch.Generator(device=device).manual_seed(0)
    for dim in (147, 675):
        y = torch.rand(n, dim, generator=g, device=device) * 2 - 1
        x = 0.5 * y[torch.randperm(n, generator=g, device=device)] + 0.5 * torch.randn(n, dim, generator=g, device=device)
        flops = 4 * n * n * dim
        for name in ("exact", "attention"):
            for tag, dtype in dtypes:
                if name == "exact" and tag != "fp32":
                    continue
                options = {"dtype": dtype} if name == "attention" else {}
                backend = make_backend(name, y, **options)
                seconds = best_time(lambda: backend.denoise(x, 0.5, 0.5), device, repeats=2)
                key = f"{name}_{tag}_D{dim}"
                rows[key + "_s"] = seconds
                rows[key + "_gflops"] = flops / seconds / 1e9
                rows[key + "_fraction_of_gemm"] = flops / seconds / 1e9 / rows[f"gemm_{tag}_gflops"]
                print(f"  {key}: {seconds:.3f} s, {flops / seconds / 1e9:.1f} GFLOP/s "
                      f"({rows[key + '_fraction_of_gemm']:.0%} of {tag} GEMM)")
    print(f"  fp32 GEMM: {gemm:.1f} GFLOP/s")
    results["kernels"] = rows


def naive(device, results, target_seconds=10.0):
    dim = 147
    n = 2048
    g = np.random.default_rng(0)
    alpha, sigma = 0.3, 0.9  # a broad posterior, so the comparison is not a trivial nearest-neighbour copy
    while True:  # grow N until the reference takes about the target time
        y = g.uniform(-1, 1, (n, dim)).astype(np.float32)
        x = (alpha * y[g.permutation(n)] + sigma * g.standard_normal((n, dim))).astype(np.float32)
        start = time.perf_counter()
        expected = naive_denoise(x, y, alpha, sigma)
        seconds = time.perf_counter() - start
        if seconds > target_seconds / 4 or n >= 65536:
            break
        n *= 2
    yt, xt = torch.from_numpy(y).to(device), torch.from_numpy(x).to(device)
    attention = make_backend("attention", yt)
    attention_s = best_time(lambda: attention.denoise(xt, alpha, sigma), device)
    out = attention.denoise(xt, alpha, sigma).cpu().numpy()
    error = float(np.abs(out - expected).max())
    results["naive"] = {"n": n, "d": dim, "naive_s": seconds, "attention_s": attention_s,
                        "speedup": seconds / attention_s, "max_abs_difference": error}
    print(f"  N = M = {n}, D = {dim}: naive {seconds:.2f} s, attention {attention_s:.3f} s "
          f"({seconds / attention_s:.0f}x), max |difference| {error:.1e}")


def parse_backend(spec: str) -> tuple[str, dict]:
    """'clustered:nprobe=1' -> ('clustered', {'nprobe': 1})."""
    name, _, rest = spec.partition(":")
    options = {}
    for item in filter(None, rest.split(",")):
        key, value = item.split("=")
        options[key] = int(value) if value.isdigit() else value
    return name, options


def exact_seconds_per_sample(model, steps, device):
    """One exact attention step per level, timed at a mid noise level and multiplied by the steps: the
    cost of an exact sample without spending minutes on one (the step cost does not depend on σ)."""
    total = 0.0
    for level in model.levels:
        denoiser = sidlite.ImageDenoiser(level, model.patch_size, "attention")
        x = level + 0.5 * torch.randn_like(level)
        total += steps * best_time(lambda: denoiser(x, 0.5, 0.5), device, repeats=1, warmup=0)
    return total


QUALITY = ("patch_swd", "pixel_diversity", "copy_fraction")


def compare_with_exact(rows, exact_spec="attention"):
    """Each backend's mean seconds and quality as ratios to the exact backend's, when it ran in this run."""
    exact = rows.get(exact_spec)
    if not exact:
        return
    for spec, row in rows.items():
        if spec in (exact_spec, "exact_estimate"):
            continue
        s, e = row["summary"], exact["summary"]
        s["speedup_over_exact"] = e["seconds_per_sample"] / s["seconds_per_sample"]
        for key in QUALITY:
            if key in s and key in e:
                s[key + "_relative_to_exact"] = s[key] / e[key] - 1


def table1(device, results, backends, images, samples, data, save, copy_samples=1):
    folder = data / "sinddm15"
    if not folder.is_dir():
        print(f"  skipped: {folder} not found")
        results["table1"] = {"skipped": f"{folder} not found"}
        return
    files = sorted(folder.glob("*.png"))[:images] if images else sorted(folder.glob("*.png"))
    rows = {}
    first = sidlite.SingleImageModel(sidlite.load_image(files[0]).to(device), patch_size=15, num_scales=4,
                                     min_short_side=None, backend="naive", device=device)
    exact = exact_seconds_per_sample(first, 10, device)
    rows["exact_estimate"] = {"image": files[0].stem, "seconds_per_sample": exact}
    results["table1_settings"] = {"images": len(files), "samples": samples, "copy_samples": min(copy_samples, samples)}
    print(f"  exact attention, {files[0].stem}: {exact:.1f} s per sample (one timed step per level × 10)")
    for spec in backends:
        backend, options = parse_backend(spec)
        per_image = []
        for path in files:
            image = sidlite.load_image(path).to(device)
            start = time.perf_counter()
            model = sidlite.SingleImageModel(image, patch_size=15, num_scales=4, min_short_side=None,
                                             backend=backend, device=device, **options)
            build = time.perf_counter() - start
            outs, times = [], []
            for i in range(samples):
                sync(device)
                start = time.perf_counter()
                outs.append(model.sample(seed=10 + i, steps=10, eta=0.0, progress=False).image)
                sync(device)
                times.append(time.perf_counter() - start)
            # the copy search is O(N²) itself (16 s a sample on the 2-core CPU): the first copy_samples only
            copied = float(np.mean([sidlite.copy_fraction(o, image) for o in outs[:copy_samples]]))
            reference = image.cpu()
            outs = [o.cpu() for o in outs]
            row = {"image": path.stem, "size": list(image.shape[1:]), "build_s": build,
                   "seconds_per_sample": sum(times) / len(times),
                   "patch_swd": float(np.mean([sidlite.patch_swd(o, reference) for o in outs])),
                   "copy_fraction": copied}
            if len(outs) > 1:
                row["pixel_diversity"] = sidlite.pixel_diversity(torch.stack(outs), reference)
            per_image.append(row)
            print(f"  {spec:>20} {path.stem:>16}: {row['seconds_per_sample']:.2f} s/sample, "
                  f"SWD {row['patch_swd']:.4f}, copy {row['copy_fraction']:.2f}"
                  + (f", diversity {row['pixel_diversity']:.3f}" if "pixel_diversity" in row else ""))
        summary = {key: float(np.mean([r[key] for r in per_image if key in r]))
                   for key in ("seconds_per_sample", "build_s", "patch_swd", "copy_fraction", "pixel_diversity")
                   if any(key in r for r in per_image)}
        same_image = per_image[0]["seconds_per_sample"]
        summary["speedup_over_exact_on_first_image"] = exact / same_image
        rows[spec] = {"summary": summary, "images": per_image}
        compare_with_exact(rows)
        results["table1"] = rows
        save()  # a long run keeps what it measured so far


def scaling(device, results, backends, dim=147):
    sizes = [1024, 2048, 4096, 8192, 16384] + ([32768, 65536] if device.type == "cuda" else [])
    g = torch.Generator(device=device).manual_seed(0)
    rows = {}
    for backend in backends:
        times = []
        for n in sizes:
            y = torch.rand(n, dim, generator=g, device=device) * 2 - 1
            x = 0.9 * y[torch.randperm(n, generator=g, device=device)] + 0.1 * torch.randn(n, dim, generator=g, device=device)
            model = make_backend(backend, y)
            times.append(best_time(lambda: model.denoise(x, 0.9, 0.1), device, repeats=2))
        slope = float(np.polyfit(np.log(sizes), np.log(times), 1)[0])
        rows[backend] = {"n": sizes, "seconds": times, "exponent": slope}
        print(f"  {backend:>10}: " + ", ".join(f"N={n}: {t * 1e3:.1f} ms" for n, t in zip(sizes, times))
              + f"  → exponent {slope:.2f}")
    results["scaling"] = rows


def latent(device, results):
    """A 1024×1024 output from the 512² astronaut in the weight-free PCA latent (128² cells, 16 channels):
    the paper's latent preset (P = 7, T = 20, η = 1, ρ = ∞) with 'auto' and with exact attention at every
    level (the quality reference), and a fast setting (T = 10, queries at stride 2)."""
    image = sidlite.example_image("astronaut")
    settings = {"preset T=20": dict(steps=20, backend="auto"),
                "preset T=20, exact": dict(steps=20, backend="attention"),
                "fast T=10, query_stride=2": dict(steps=10, query_stride=2, backend="auto")}
    rows = {}
    for label, options in settings.items():
        sync(device)
        start = time.perf_counter()
        out = sidlite.generate(image, size=(1024, 1024), latent="pca", device=device, progress=False, **options)
        sync(device)
        seconds = time.perf_counter() - start
        rows[label] = {"output": list(out.shape[2:]), "seconds": seconds, "backend": options["backend"],
                       "patch_swd": sidlite.patch_swd(sidlite.resize(out[0].cpu(), (512, 512)), image)}
        print(f"  1024x1024 in the PCA latent, {label} ({options['backend']}): {seconds:.2f} s")
    results["latent"] = rows


def markdown(results) -> str:
    lines = [f"# sidlite benchmarks ({results['machine']['device']}"
             + (f", {results['machine'].get('gpu')}" if "gpu" in results["machine"] else "") + ")", "",
             f"python {results['machine']['python']}, torch {results['machine']['torch']}, "
             f"{results['machine']['cpu_threads']} CPU threads, {results['machine']['platform']}", ""]
    k = results.get("kernels")
    if k:
        lines += ["## Kernels (N = M = %d)" % k["n"], "", "| what | seconds | GFLOP/s | share of GEMM |",
                  "|---|---|---|---|", f"| fp32 GEMM | | {k['gemm_fp32_gflops']:.1f} | 100 % |"]
        for key in sorted(x[:-2] for x in k if x.endswith("_s")):
            lines.append(f"| {key} | {k[key + '_s']:.4g} | {k[key + '_gflops']:.1f} | {k[key + '_fraction_of_gemm']:.0%} |")
        lines.append("")
    if "naive" in results:
        n = results["naive"]
        lines += ["## Naive NumPy against attention", "",
                  f"N = M = {n['n']}, D = {n['d']}: naive {n['naive_s']:.2f} s, attention {n['attention_s']:.3f} s, "
                  f"speed-up {n['speedup']:.0f}×, max |difference| {n['max_abs_difference']:.1e}", ""]
    t = results.get("table1")
    if t and "skipped" not in t:
        settings = results.get("table1_settings", {})
        lines += ["## Table-1 setting on sinddm15 (P = 15, 4 scales, T = 10, η = 0)", "",
                  f"{settings.get('samples', '?')} samples per image (seeds 10, 11, …); patch SWD averaged over them, "
                  f"copy fraction over the first {settings.get('copy_samples', 1)}.", "",
                  "| backend | images | s / sample | build s | patch SWD | pixel diversity | copy fraction |",
                  "|---|---|---|---|---|---|---|"]
        exact = t.get("exact_estimate")
        specs = [b for b in t if b != "exact_estimate"]
        for backend in specs:
            s = t[backend]["summary"]
            lines.append(f"| {backend} | {len(t[backend]['images'])} | {s['seconds_per_sample']:.2f} | {s['build_s']:.2f} | "
                         f"{s['patch_swd']:.4f} | {s.get('pixel_diversity', float('nan')):.3f} | {s['copy_fraction']:.3f} |")
        compared = [b for b in specs if "speedup_over_exact" in t[b]["summary"]]
        if compared:
            lines += ["", "Against exact attention in this run (quality as the relative difference; the target is within ±10 %):",
                      "", "| backend | speed-up | patch SWD | pixel diversity | copy fraction |", "|---|---|---|---|---|"]
            for backend in compared:
                s = t[backend]["summary"]
                lines.append(f"| {backend} | {s['speedup_over_exact']:.1f}× | " + " | ".join(
                    f"{s[key + '_relative_to_exact']:+.1%}" if key + "_relative_to_exact" in s else "–"
                    for key in QUALITY) + " |")
        if exact:
            lines += ["", f"Exact attention on {exact['image']}: {exact['seconds_per_sample']:.1f} s per sample "
                      "(one timed step per level × 10). Speed-up on that image: " +
                      ", ".join(f"{b} {t[b]['summary']['speedup_over_exact_on_first_image']:.0f}×" for b in specs)]
        lines.append("")
    sc = results.get("scaling")
    if sc:
        lines += ["## Seconds per denoising step against N (D = 147)", "", "| backend | " +
                  " | ".join(f"N={n}" for n in next(iter(sc.values()))["n"]) + " | exponent |",
                  "|---" * (len(next(iter(sc.values()))["n"]) + 2) + "|"]
        for backend, row in sc.items():
            lines.append(f"| {backend} | " + " | ".join(f"{s:.4f}" for s in row["seconds"]) + f" | {row['exponent']:.2f} |")
        lines.append("")
    if results.get("latent"):
        lines += ["## 1024×1024 in the weight-free PCA latent (from the 512² astronaut)", "",
                  "| setting | seconds | patch SWD (at 512²) |", "|---|---|---|"]
        for label, row in results["latent"].items():
            lines.append(f"| {label}, {row['backend']} | {row['seconds']:.2f} | {row['patch_swd']:.4f} |")
        lines.append("")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", default="kernels,naive,table1,scaling,latent")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--backends", default=None, help="';'-separated backend specs for table1, e.g. 'clustered:nprobe=1;topk'")
    parser.add_argument("--images", type=int, default=0, help="first N sinddm15 images (0: all 15)")
    parser.add_argument("--samples", type=int, default=2, help="samples per image in table1")
    parser.add_argument("--copy-samples", type=int, default=1, help="samples per image whose copy fraction is measured")
    parser.add_argument("--data", type=Path, default=SHARED, help="benchmark image folder (default ../shared/data)")
    parser.add_argument("--tag", default=None, help="result file name (default: cpu or the GPU's name)")
    args = parser.parse_args()
    device = sidlite.resolve_device(args.device)
    # exact attention runs in full where it is affordable (a GPU); on a CPU one timed step per level stands for it
    backends = args.backends.split(";") if args.backends else \
        (["attention"] if device.type == "cuda" else []) + ["clustered:nprobe=1", "clustered:nprobe=2", "topk"]
    results = {"machine": machine(device)}
    tag = args.tag or ("cpu" if device.type == "cpu" else torch.cuda.get_device_name().split()[-1].lower())
    out = ROOT / "benchmarks" / "results"
    out.mkdir(parents=True, exist_ok=True)

    def save():
        (out / f"{tag}.json").write_text(json.dumps(results, indent=2))
        (out / f"{tag}.md").write_text(markdown(results))

    for name in args.only.split(","):
        print(f"[{name}]", flush=True)
        if name == "kernels":
            kernels(device, results)
        elif name == "naive":
            naive(device, results)
        elif name == "table1":
            table1(device, results, backends, args.images, args.samples, args.data, save, args.copy_samples)
        elif name == "scaling":
            scaling(device, results, [b for b in BACKENDS if b not in ("naive", "faiss")])
        elif name == "latent":
            latent(device, results)
        save()
    print(f"wrote {out / tag}.json and .md")

if __name__ == "__main__":
    main()
