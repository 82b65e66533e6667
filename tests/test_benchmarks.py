"""The benchmark scripts' own plumbing (they are run by hand, not in CI; what they time is never asserted)."""
from pathlib import Path

import pytest

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
