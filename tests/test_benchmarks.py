"""The benchmark scripts' own plumbing (they are run by hand, not in CI; what they time is never asserted)."""
from pathlib import Path

import pytest
import torch

from benchmarks.run import SECTIONS
from benchmarks.sections import apps
from sidlite.cli import build_parser

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.mark.skipif(not (DATA / "sinddm15" / "aqueduct.png").exists(), reason="needs ../shared/data")
def test_every_application_timed_has_a_valid_command_line(tmp_path):
    lines = apps.commands(tmp_path, DATA)
    assert {"generate", "retarget", "tile", "symmetric", "inpaint", "outpaint", "edit", "analogy", "upscale",
            "stylize"} <= set(lines)
    parser = build_parser()
    for name, argv in lines.items():
        args = parser.parse_args(argv)
        assert args.command == argv[0] and Path(args.output).parent == tmp_path, name
    assert (tmp_path / "piece.png").exists()  # the edit's paste is made for it


def test_every_section_is_listed_and_renders_nothing_before_it_ran():
    import importlib

    for name in SECTIONS:
        module = importlib.import_module(f"benchmarks.sections.{name}")
        assert callable(module.run) and module.markdown({}) == [], name


def test_recall_counts_the_reference_candidates_found():
    import torch

    from benchmarks.sections.ranking import recall

    found = torch.tensor([[1, 2, -1], [4, 5, 6]])
    reference = torch.tensor([[2, 3, -1], [6, 5, 4]])
    assert recall(found, reference) == 4 / 5  # -1 (no candidate) is not counted; order does not matter


@pytest.mark.skipif(not (DATA / "sinddm15" / "aqueduct.png").exists(), reason="needs ../shared/data")
def test_evaluation_table_resumes_where_a_run_stopped(tmp_path):
    import json

    from benchmarks.evaluation import main

    stem = tmp_path / "table"
    small = ["--images", "2", "--samples", "2", "--max-side", "32", "--patch-size", "5", "--num-levels", "1",
             "--device", "cpu", "--root", str(DATA), "--out", str(stem)]
    assert main(small + ["--methods", "copy"]) == 0
    first = json.loads(stem.with_suffix(".json").read_text())
    assert first["images_per_method"] == {"copy": 2}
    kept = first["rows"][0]
    first["rows"] = first["rows"][:1]  # as if the run had stopped after one image
    stem.with_suffix(".json").write_text(json.dumps(first))
    assert main(small + ["--methods", "copy,gpnn", "--append"]) == 0
    resumed = json.loads(stem.with_suffix(".json").read_text())
    assert resumed["images_per_method"] == {"copy": 2, "gpnn": 2}
    assert resumed["rows"][0] == kept  # the measured row is kept, not measured again
    copies = [r["image"] for r in resumed["rows"] if r["method"] == "copy"]
    assert len(copies) == len(set(copies)) == 2  # only the missing image was run
    with pytest.raises(SystemExit):  # other settings cannot be appended to the same table
        main(small[:-6] + ["--patch-size", "7", "--num-levels", "1", "--device", "cpu", "--root", str(DATA),
                           "--out", str(stem), "--methods", "copy", "--append"])


@pytest.mark.skipif(not (DATA / "sinddm15" / "aqueduct.png").exists(), reason="needs ../shared/data")
def test_evaluation_adds_a_metric_to_stored_rows_from_the_same_samples(tmp_path, monkeypatch):
    import json

    import sidlite
    from benchmarks.evaluation import main
    from sidlite.evaluation import NIQEModel

    monkeypatch.setenv("SIDLITE_WEIGHTS", str(tmp_path / "weights"))
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    stem = tmp_path / "table"
    args = ["--images", "2", "--samples", "2", "--max-side", "200", "--patch-size", "5", "--num-levels", "1",
            "--device", "cpu", "--root", str(DATA), "--out", str(stem), "--methods", "copy"]
    assert main(args) == 0  # no pristine model on disk: no NIQE
    before = json.loads(stem.with_suffix(".json").read_text())
    assert "niqe" not in before["rows"][0] and before["input_niqe"] == {}
    (tmp_path / "weights").mkdir()
    NIQEModel.fit([sidlite.example_image("astronaut")]).save(tmp_path / "weights" / "niqe_pris_params.npz")
    assert main(args + ["--append", "--add-metrics"]) == 0
    after = json.loads(stem.with_suffix(".json").read_text())
    for old, new in zip(before["rows"], after["rows"]):
        assert {k: new[k] for k in old} == old and new["niqe"] > 0  # every stored number kept, NIQE added
    assert set(after["input_niqe"]) == {r["image"] for r in after["rows"]}

    def draw_again(*args, **kwargs):
        raise AssertionError("a row with every metric the run can add was drawn again")

    with monkeypatch.context() as patch:
        patch.setattr("benchmarks.evaluation.evaluate", draw_again)
        assert main(args + ["--append", "--add-metrics"]) == 0  # nothing left to add: nothing is drawn
    after["rows"][0]["patch_swd"] *= 2  # stored rows that the samples do not reproduce are left alone
    for row in after["rows"]:
        row.pop("niqe")
    stem.with_suffix(".json").write_text(json.dumps(after))
    with pytest.raises(SystemExit, match="not the same samples"):
        main(args + ["--append", "--add-metrics"])


def test_nearest_five_merges_blocks_exactly():
    import torch

    from benchmarks.sections.scaling import nearest_five

    g = torch.Generator().manual_seed(0)
    data, queries = torch.randn(300, 6, generator=g), torch.randn(20, 6, generator=g)
    expected = torch.cdist(queries, data).topk(5, dim=1, largest=False).indices
    assert torch.equal(nearest_five(queries, data, block=7), expected)  # 7 does not divide 300


def test_table1_draws_batches_as_the_same_seeded_samples():
    import sidlite
    from benchmarks.sections.table1 import draw

    image = sidlite.example_image("brick", max_side=40)
    model = sidlite.SingleImageModel(image, patch_size=5, num_levels=2, min_short_side=None, backend="attention")
    batched, seconds = draw(model, 3, 2, torch.device("cpu"))  # a batch of 2, then one of 1
    one_by_one, _ = draw(model, 3, 1, torch.device("cpu"))
    assert len(batched) == len(seconds) == 3 and seconds[0] == seconds[1]
    for a, b in zip(batched, one_by_one):
        assert a.shape == image.shape and torch.allclose(a, b, atol=1e-4)
    assert not torch.allclose(batched[0], batched[1], atol=1e-2)  # the batch holds two seeds, not one twice


def test_a_results_file_is_not_merged_with_another_machines_runs(tmp_path, monkeypatch, capsys):
    import json
    import sys

    import benchmarks.run as run

    results = tmp_path / "benchmarks" / "results"
    results.mkdir(parents=True)
    stored = {"machine": {"cpu": "a CPU this machine is not"}, "kernels": {"gemm_fp32_gflops": 1.0}}
    (results / "cpu.json").write_text(json.dumps(stored))
    monkeypatch.setattr(run, "ROOT", tmp_path)
    monkeypatch.setattr(sys, "argv", ["run.py", "--only", "kernels", "--tag", "cpu"])
    with pytest.raises(SystemExit):
        run.main()
    assert "pass --tag NAME" in capsys.readouterr().err
    assert json.loads((results / "cpu.json").read_text()) == stored  # left as it was


def test_the_default_results_file_is_named_after_the_machine(monkeypatch):
    import benchmarks.common as common

    monkeypatch.setattr(common, "cpu_name", lambda: "Intel(R) Xeon(R) Platinum 8488C CPU @ 2.40GHz")
    assert common.default_tag(torch.device("cpu")) == "cpu_intel_xeon_platinum"
    monkeypatch.setattr(common, "cpu_name", lambda: "AMD EPYC")
    assert common.default_tag(torch.device("cpu")) == "cpu_amd_epyc"  # this project's second machine's file
