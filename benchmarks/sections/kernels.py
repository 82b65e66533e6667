"""fp32 GEMM GFLOP/s (the yardstick) and the exact / attention backends' GFLOP/s at N = M = 16384
for D = 147 and 675, each as a fraction of the GEMM figure (on CUDA also bf16)."""
from __future__ import annotations

import torch

from sidlite.backends import make_backend

from ..common import best_time, gemm_gflops


def run(context, n=16384):
    device, results = context.device, context.results
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


def markdown(results) -> list[str]:
    lines = []
    k = results.get("kernels")
    if k:
        lines += ["## Kernels (N = M = %d)" % k["n"], "", "| what | seconds | GFLOP/s | share of GEMM |",
                  "|---|---|---|---|", f"| fp32 GEMM | | {k['gemm_fp32_gflops']:.1f} | 100 % |"]
        for key in sorted(x[:-2] for x in k if x.endswith("_s")):
            lines.append(f"| {key} | {k[key + '_s']:.4g} | {k[key + '_gflops']:.1f} | {k[key + '_fraction_of_gemm']:.0%} |")
        lines.append("")
    return lines
