"""The paper's Table-1 protocol as a function: run methods over images, measure, tabulate."""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Callable

import torch

from .. import metrics as M
from ..errors import SidliteError, check

# The paper's Table-1 setting (efficient-SID, configs/uncond/paper_sinddm15.yaml): P = 15, 4 levels,
# T = 10, η = 0; seeds from 10.
TABLE1 = {"patch_size": 15, "num_levels": 4, "steps": 10, "eta": 0.0}

# Quoted from the paper's Table 1 (via a secondary summary, see /reference): mean ± std over the 15
# images, 50 samples each; time per sample on an RTX A6000. None: not reported.
PAPER_TABLE1 = {
    "sidlite-exact": {"label": "Ours (T=10, η=0, exact)", "sifid": (0.29, 0.39), "niqe": (8.08, 3.23),
                      "lpips_diversity": (0.49, 0.07), "pixel_diversity": (0.15, 0.04), "seconds": 3.09},
    "sidlite-auto": {"label": "Ours + ANN (k=5)", "sifid": (0.38, 0.52), "lpips_diversity": (0.50, 0.08), "seconds": 0.88},
    "sidlite-T40-eta1": {"label": "Ours (T=40, η=1)", "sifid": (0.21, 0.29), "seconds": 12.57},
    "sinddm": {"label": "SinDDM", "sifid": (0.48, 0.62), "lpips_diversity": (0.41, 0.07), "pixel_diversity": (0.11, 0.03)},
    "gpnn": {"label": "GPNN", "sifid": (0.06, 0.11)},
    "gpdm": {"label": "GPDM", "sifid": (0.015, 0.01)},
}


@dataclass
class Method:
    """A generator under evaluation: ``prepare(image)`` once per image (timed), then ``sample(state, seed)``."""

    name: str
    prepare: Callable
    sample: Callable
    note: str = ""


def _sidlite(name, backend, steps=None, eta=None, note=""):
    def prepare(image, settings):
        import sidlite

        return sidlite.SingleImageModel(image, patch_size=settings["patch_size"], num_levels=settings["num_levels"],
                                        min_short_side=None, backend=backend, device=settings["device"])

    def sample(model, seed, settings):
        result = model.sample(seed, steps if steps is not None else settings["steps"],
                              eta if eta is not None else settings["eta"], progress=False)
        return result.image

    return Method(name, prepare, sample, note)


def _baseline(name, function, note=""):
    return Method(name, lambda image, settings: image.cpu(),
                  lambda image, seed, settings: function(image, seed=seed, **settings.get(name, {})), note)


def methods() -> dict[str, Method]:
    """The six methods of the table, by name."""
    from ..baselines import copy_baseline, gpdm, gpnn

    return {m.name: m for m in [
        _sidlite("sidlite-exact", "attention", note="exact denoiser (attention backend)"),
        _sidlite("sidlite-auto", "auto", note="auto: exact on small levels, top-k ANN (k=5) above"),
        _sidlite("sidlite-T40-eta1", "auto", steps=40, eta=1.0,
                 note="T=40, η=1 with the auto backend (the paper ran it exact)"),
        _baseline("gpnn", gpnn, "GPNN: P=7, α=0.005, 10 iterations per level, ratio 3/4"),
        _baseline("gpdm", gpdm, "GPDM: P=7, 64 directions, 100 Adam steps per level, ratio 3/4"),
        _baseline("copy", copy_baseline, "the input shifted by up to 10 % of each side"),
    ]}


METHOD_NAMES = ("sidlite-exact", "sidlite-auto", "sidlite-T40-eta1", "gpnn", "gpdm", "copy")
METRICS = ("sifid", "niqe", "lpips_diversity", "pixel_diversity", "pixel_diversity_gray", "pixel_spread",
           "patch_swd", "coherence", "copy_fraction", "layout_distance", "seconds_per_sample")


@dataclass
class EvaluationTable:
    """Per (method, image) rows and their mean ± std over images per method."""

    rows: list[dict] = field(default_factory=list)
    settings: dict = field(default_factory=dict)
    samples: dict = field(default_factory=dict)
    notes: dict = field(default_factory=dict)

    def methods(self) -> list[str]:
        return list(dict.fromkeys(r["method"] for r in self.rows))

    def metrics(self) -> list[str]:
        present = {k for r in self.rows for k, v in r.items() if isinstance(v, float)}
        return [m for m in METRICS if m in present]

    def summary(self) -> dict[str, dict[str, tuple[float, float]]]:
        """{method: {metric: (mean, population std) over images}}."""
        out = {}
        for method in self.methods():
            rows = [r for r in self.rows if r["method"] == method]
            out[method] = {}
            for metric in self.metrics():
                values = torch.tensor([r[metric] for r in rows if isinstance(r.get(metric), float)], dtype=torch.float64)
                if len(values):
                    out[method][metric] = (float(values.mean()), float(values.std(unbiased=False)))
        return out

    def value(self, method: str, metric: str, image: str | None = None) -> float:
        """One number: the mean over images, or the value on one image."""
        if image is None:
            return self.summary()[method][metric][0]
        return next(r[metric] for r in self.rows if r["method"] == method and r["image"] == image)

    def markdown(self, per_image: bool = False, digits: int = 3) -> str:
        metrics = self.metrics()
        head = "| method | " + ("image | " if per_image else "") + " | ".join(metrics) + " |"
        lines = [head, "|" + "---|" * (len(metrics) + 1 + per_image)]
        if per_image:
            for r in self.rows:
                cells = [f"{r[m]:.{digits}f}" if isinstance(r.get(m), float) else "–" for m in metrics]
                lines.append(f"| {r['method']} | {r['image']} | " + " | ".join(cells) + " |")
        else:
            for method, stats in self.summary().items():
                rows = [r for r in self.rows if r["method"] == method]
                cells = []
                for m in metrics:
                    seen = sum(isinstance(r.get(m), float) for r in rows)
                    part = f" ({seen} of {len(rows)} images)" if 0 < seen < len(rows) else ""
                    cells.append(f"{stats[m][0]:.{digits}f} ± {stats[m][1]:.{digits}f}{part}" if m in stats else "–")
                lines.append(f"| {method} | " + " | ".join(cells) + " |")
        return "\n".join(lines)

    def to_json(self) -> str:
        return json.dumps({"settings": self.settings, "notes": self.notes, "rows": self.rows,
                           "summary": {m: {k: list(v) for k, v in s.items()} for m, s in self.summary().items()}},
                          indent=1)

    def __repr__(self) -> str:
        return self.markdown()


def find_networks(use: str | bool = "auto"):
    """(Inception, LPIPS network, NIQE pristine model), each None when its file is not on disk."""
    from .networks import InceptionBlock1, LPIPSAlex
    from .niqe import NIQEModel

    found = []
    for cls in (InceptionBlock1, LPIPSAlex, NIQEModel):
        try:
            found.append(cls.pretrained() if use else None)
        except SidliteError:
            if use == "require":
                raise
            found.append(None)
    return found


def optional_metrics(networks, image: torch.Tensor, samples: int) -> set[str]:
    """The metrics beyond the always-measured ones that ``networks`` (Inception, LPIPS network, NIQE model;
    None where absent) give ``samples`` samples the size of ``image``: LPIPS diversity needs two samples,
    NIQE two 96×96 blocks."""
    from .niqe import niqe_applies

    inception, lpips, niqe_model = networks
    return ({"sifid"} if inception is not None else set()) | \
        ({"lpips_diversity"} if lpips is not None and samples >= 2 else set()) | \
        ({"niqe"} if niqe_model is not None and niqe_applies(image) else set())


def measure(samples: torch.Tensor, reference: torch.Tensor, *, inception=None, lpips=None, niqe_model=None,
            patch_size: int = 7, exact: bool = True) -> dict[str, float]:
    """Every metric of one input's samples (S, 3, H, W): means over samples, diversities over the set
    (NIQE only for samples of at least two 96×96 blocks).
    ``exact=False`` takes coherence from the proposed neighbours (an upper bound, 25 % above the exact
    value on a Table-1 sample); the copy fraction is exact either way."""
    samples, reference = samples.float().cpu(), reference.float().cpu()
    extras = optional_metrics((inception, lpips, niqe_model), samples[0], samples.shape[0])
    per = {"patch_swd": [], "coherence": [], "copy_fraction": [], "layout_distance": [],
           **{name: [] for name in extras & {"sifid", "niqe"}}}
    from .networks import sifid
    from .niqe import niqe

    for s in samples:
        per["patch_swd"].append(M.patch_swd(s, reference))
        per["coherence"].append(M.coherence(s, reference, patch_size, exact=exact))
        per["copy_fraction"].append(M.copy_fraction(s, reference, patch_size))
        per["layout_distance"].append(M.layout_distance(s, reference))
        if "sifid" in per:
            per["sifid"].append(sifid(s, reference, inception))
        if "niqe" in per:
            per["niqe"].append(niqe(s, niqe_model))
    out = {k: sum(v) / len(v) for k, v in per.items()}
    if samples.shape[0] >= 2:
        out["pixel_diversity"] = M.pixel_diversity(samples, reference)
        out["pixel_diversity_gray"] = M.pixel_diversity_gray(samples, reference)
        out["pixel_spread"] = M.pixel_spread(samples)
        if "lpips_diversity" in extras:
            from .networks import lpips_diversity

            out["lpips_diversity"] = lpips_diversity(samples, lpips)
    return {k: float(v) for k, v in out.items()}


def evaluate(method, images: dict[str, torch.Tensor], *, samples_per_image: int = 2, seeds: list[int] | None = None,
             device: str | torch.device = "cpu", patch_size: int = TABLE1["patch_size"],
             num_levels: int = TABLE1["num_levels"], steps: int = TABLE1["steps"], eta: float = TABLE1["eta"],
             networks: str | bool = "auto", keep_samples: bool = False, exact_metrics: bool = True,
             baseline_options: dict | None = None, progress: bool = False) -> EvaluationTable:
    """Run one method (a name of :func:`methods`, a :class:`Method`) or a list of them over ``images``
    ({name: (3, H, W) tensor in [-1, 1]}) and return one :class:`EvaluationTable`.

    Defaults are the paper's Table-1 setting (P = 15, 4 levels, T = 10, η = 0); sample i of every
    image uses seed ``seeds[i]`` (default 10 + i). Seconds per sample include the per-image set-up
    (model or index building) divided over the samples. SIFID, LPIPS diversity and NIQE are measured
    when their weights or pristine model are found on disk (``networks='auto'``), always (``'require'``:
    else the error says which file is missing) or never (False).
    """
    check(isinstance(samples_per_image, int) and samples_per_image >= 1,
          f"samples_per_image must be an integer >= 1, got {samples_per_image}")
    seeds = list(seeds) if seeds is not None else [10 + i for i in range(samples_per_image)]
    check(len(seeds) == samples_per_image, f"{samples_per_image} samples need as many seeds, got {len(seeds)}")
    check(bool(images), "no images to evaluate")
    known = methods()
    chosen = method if isinstance(method, (list, tuple)) else [method]
    resolved = []
    for m in chosen:
        if isinstance(m, Method):
            resolved.append(m)
        elif m in known:
            resolved.append(known[m])
        else:
            raise SidliteError(f"unknown method {m!r}; choose from {', '.join(known)}")
    settings = {"patch_size": patch_size, "num_levels": num_levels, "steps": steps, "eta": eta,
                "device": str(device), "samples_per_image": samples_per_image, "seeds": seeds,
                **(baseline_options or {})}
    inception, lpips, niqe_model = find_networks(networks)
    table = EvaluationTable(settings={k: v for k, v in settings.items() if not isinstance(v, dict)})
    table.notes = {m.name: m.note for m in resolved}
    table.settings["networks"] = {"sifid": inception is not None, "lpips": lpips is not None,
                                  "niqe": niqe_model is not None}
    for m in resolved:
        for name, image in images.items():
            image = image.to(device)
            start = time.perf_counter()
            state = m.prepare(image, settings)
            outs = [m.sample(state, seed, settings).float() for seed in seeds]
            if torch.device(device).type == "cuda":
                torch.cuda.synchronize()
            seconds = (time.perf_counter() - start) / len(seeds)
            outs = torch.stack([o.cpu() for o in outs])
            start = time.perf_counter()
            row = {"method": m.name, "image": name, "size": list(image.shape[1:]), "seconds_per_sample": seconds,
                   **measure(outs, image.cpu(), inception=inception, lpips=lpips, niqe_model=niqe_model,
                              exact=exact_metrics)}
            row["metric_seconds_per_sample"] = (time.perf_counter() - start) / len(seeds)
            table.rows.append(row)
            if keep_samples:
                table.samples[(m.name, name)] = outs
            if progress:
                print(f"{m.name:>18} {name:>16}: {seconds:.2f} s/sample, SWD {row['patch_swd']:.4f}, "
                      f"copy {row['copy_fraction']:.2f}, layout {row['layout_distance']:.2f}", flush=True)
    return table
