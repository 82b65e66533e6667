"""Evaluation: the paper's Table-1 protocol, its metrics and the benchmark images.

``evaluate(method, images, samples_per_image=…, seeds=…)`` runs sidlite (exact, auto, T = 40/η = 1) or a
baseline (GPNN, GPDM, copy) over a set of images in the paper's Table-1 setting and returns one table
(per image and mean ± std over images: SIFID, LPIPS diversity and NIQE when their weights or pristine
model are on disk, pixel diversities, patch SWD, coherence, copy fraction, layout distance, seconds per
sample).
"""
from .datasets import BENCHMARKS, benchmark_folder, data_root, load_benchmark
from .networks import InceptionBlock1, LPIPSAlex, find_weights, lpips_diversity, sifid
from .niqe import NIQEModel, niqe
from .protocol import (METHOD_NAMES, METRICS, PAPER_TABLE1, TABLE1, EvaluationTable, Method, evaluate, measure,
                       methods)

__all__ = ["BENCHMARKS", "EvaluationTable", "InceptionBlock1", "LPIPSAlex", "METHOD_NAMES", "METRICS", "Method",
           "NIQEModel", "PAPER_TABLE1", "TABLE1", "benchmark_folder", "data_root", "evaluate", "find_weights",
           "load_benchmark", "lpips_diversity", "measure", "methods", "niqe", "sifid"]
