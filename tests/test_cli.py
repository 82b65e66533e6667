"""The command line: outputs, overwrite rules and one-line errors."""
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

import sidlite
from sidlite.cli import main

SMALL = ["--max-side", "40", "--patch-size", "5", "--steps", "3", "--quiet"]


def test_generate_writes_numbered_samples(tmp_path, capsys):
    out = tmp_path / "s.png"
    assert main(["generate", "example:dots", "-o", str(out), "--samples", "2", *SMALL]) == 0
    assert (tmp_path / "s_000.png").exists() and (tmp_path / "s_001.png").exists()
    assert main(["generate", "example:dots", "-o", str(out), "--samples", "2", *SMALL]) == 2
    assert "already exists" in capsys.readouterr().err
    assert main(["generate", "example:dots", "-o", str(out), "--samples", "2", "--overwrite", *SMALL]) == 0


def test_generate_in_batches_writes_the_same_files(tmp_path):
    from sidlite import load_image

    assert main(["generate", "example:dots", "-o", str(tmp_path / "a.png"), "--samples", "3", *SMALL]) == 0
    assert main(["generate", "example:dots", "-o", str(tmp_path / "b.png"), "--samples", "3", "--batch-size", "2",
                 *SMALL]) == 0
    for i in range(3):
        a, b = load_image(tmp_path / f"a_{i:03d}.png"), load_image(tmp_path / f"b_{i:03d}.png")
        assert ((a - b).abs() > 2 / 255).float().mean() < 0.01


def test_generate_size_option(tmp_path):
    from sidlite import load_image

    out = tmp_path / "wide.png"
    assert main(["generate", "example:stripes", "-o", str(out), "--size", "30", "60", *SMALL]) == 0
    assert load_image(out).shape == (3, 30, 60)


def test_a_large_latent_output_without_a_preset_hints_at_the_gigapixel_one(tmp_path, capsys):
    base = ["generate", "example:gravel", "-o", str(tmp_path / "big.png"), "--max-side", "64", "--latent", "pca", "--plan"]
    assert main(base + ["--size", "128", "128"]) == 0  # 4x the input's area
    assert "--preset generate-gigapixel" in capsys.readouterr().err
    assert main(base + ["--size", "128", "128", "--preset", "generate-latent"]) == 0  # the plain average, named
    assert "--preset generate-gigapixel" in capsys.readouterr().err
    for options in (["--size", "96", "96"], ["--size", "128", "128", "--preset", "generate-gigapixel"],
                  ["--size", "128", "128", "--quiet"]):
        assert main(base + options) == 0
        assert "hint" not in capsys.readouterr().err, options


@pytest.mark.parametrize("args,message", [
    (["missing.png"], "not found"),
    (["example:dots", "--eta", "1.5"], "eta"),
    (["example:dots", "--patch-size", "300"], "smaller than the 300x300 patch; use a larger image or a smaller "
                                              "--patch-size\n"),  # not shrunk: no word of --max-side
    (["example:dots", "--backend", "warp"], "unknown backend"),
    (["example:dots", "--device", "quantum"], "unknown device"),
    (["example:dots", "--max-side", "10"], "smaller than the 15x15 patch; use a larger image or a smaller --patch-size "
                                           "(--max-side 10 shrank the input to that size)"),
    (["example:nothing"], "unknown example"),
    (["example:dots", "--seed", "99999999999999999999"], "seed"),
    (["example:dots", "--memory-budget", "nanGB"], "memory size"),
    (["example:dots", "--memory-budget", "infGB"], "memory size"),
    (["example:dots", "--query-stride", "16"], "query stride"),
])
def test_user_errors_are_one_line(tmp_path, capsys, args, message):
    code = main(["generate", *args, "-o", str(tmp_path / "o.png"), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and message in err and "Traceback" not in err and err.count("\n") == 1


def test_module_entry_point_and_help():
    result = subprocess.run([sys.executable, "-m", "sidlite", "--help"], capture_output=True, text=True)
    assert result.returncode == 0 and "generate" in result.stdout
    bad = subprocess.run([sys.executable, "-m", "sidlite", "generate", "x.png", "-o", "y.png", "--size", "0", "5"],
                         capture_output=True, text=True)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr


def test_an_output_path_through_a_file_is_refused_before_any_work(tmp_path, capsys):
    (tmp_path / "taken.png").write_bytes(b"not a folder")
    for argv in (["generate", "example:dots", "-o", str(tmp_path / "taken.png" / "o.png"), "--quiet"],
                 ["demo", "--quick", "--output", str(tmp_path / "taken.png")]):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert "is a file, not a folder" in err and "Traceback" not in err
    assert (tmp_path / "taken.png").read_bytes() == b"not a folder"


def test_analogy_with_other_levels_than_the_presets_runs(tmp_path):
    base = ["analogy", "example:dots", "example:gravel", "--max-side", "48", "--patch-size", "5", "--quiet"]
    assert main(base + ["--levels", "2", "-o", str(tmp_path / "a.png")]) == 0  # the preset's steps, fitted
    assert main(base + ["--levels", "2", "--steps", "3", "-o", str(tmp_path / "b.png")]) == 0
    assert main(base + ["--levels", "2", "--steps", "3", "3", "3", "-o", str(tmp_path / "c.png")]) == 2


def test_version_notes_and_plan_only_runs(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["--version"])
    assert capsys.readouterr().out.startswith("sidlite ")
    rgba = np.zeros((24, 24, 4), np.uint8) + 128
    rgba[..., 3] = 100
    Image.fromarray(rgba).save(tmp_path / "rgba.png")
    out = tmp_path / "o.png"
    assert main(["generate", str(tmp_path / "rgba.png"), "-o", str(out), "--patch-size", "5", "--steps", "2", "--quiet"]) == 0
    assert capsys.readouterr().err == "sidlite: note: the image has transparency; it was composited over white\n"
    assert main(["generate", "example:dots", "-o", str(out), "--plan"]) == 0  # plans only: the existing file is no matter
    assert "planned peak" in capsys.readouterr().out
    assert main(["generate", "example:dots", "-o", str(tmp_path / "p.png"), "--backend", "topk:k=5,k=6"]) == 2
    assert "given twice" in capsys.readouterr().err


def test_edit_takes_examples_and_refuses_a_stray_at(tmp_path, capsys):
    base = ["edit", "example:astronaut", "--max-side", "48", "--patch-size", "5", "--steps", "2", "--quiet"]
    assert main(base + ["--paste", "example:gravel", "--at", "4", "4", "-o", str(tmp_path / "a.png")]) == 0
    assert main(base + ["--edited", "example:astronaut", "--at", "4", "4", "-o", str(tmp_path / "b.png")]) == 2
    assert "--at places a --paste piece" in capsys.readouterr().err


def test_running_out_of_memory_names_only_the_commands_own_options(tmp_path, capsys, monkeypatch):
    import sidlite.commands.generate as generate
    import sidlite.commands.upscale as upscale

    def exhausted(args):
        raise MemoryError()

    for module in (generate, upscale):
        monkeypatch.setattr(module, "run", exhausted)
    assert main(["generate", "example:dots", "-o", str(tmp_path / "g.png")]) == 2
    said = capsys.readouterr().err
    assert "--plan" in said and "--size" in said and said.count("\n") == 1
    assert main(["upscale", "example:dots", "-o", str(tmp_path / "u.png")]) == 2
    said = capsys.readouterr().err
    assert "out of CPU memory" in said and "--plan" not in said and "--size" not in said


def test_a_refused_plan_names_only_the_commands_own_options(tmp_path, capsys):
    """upscale has --factor and no --size: its refusal names the knob it has, in one line."""
    argv = ["upscale", "example:dots", "--factor", "8", "--memory-budget", "130MB", "-o", str(tmp_path / "u.png")]
    assert main(argv) == 2
    said = capsys.readouterr().err
    assert "but the memory budget is" in said and said.count("\n") == 1
    assert "--factor" in said and "--size" not in said and "--memory-budget" in said
    assert not (tmp_path / "u.png").exists()
    assert "--query-stride" not in said  # its index alone is over the budget: a stride would not fit either
    assert main(argv + ["--query-stride", "2"]) == 2
    # over by less than a band of one grid row: a stride of 2 halves that band, fits, and is offered
    argv = ["generate", "example:dots", "--size", "1024", "1024", "--memory-budget", "175MB", "-o",
            str(tmp_path / "g.png"), "--plan"]
    assert main(argv) == 2
    assert "use --query-stride 2" in capsys.readouterr().err
    main(argv + ["--query-stride", "2"])
    assert "level 0" not in capsys.readouterr().err  # the levels fit now (saving the output is its own check)
    assert main(["inpaint", "example:dots", "--extend", "0", "0", "900", "900", "--memory-budget", "2MB",
                 "-o", str(tmp_path / "i.png")]) == 2
    assert "lower --extend, --max-side" in capsys.readouterr().err
    assert main(["generate", "example:dots", "--size", "2048", "2048", "--samples", "2", "--batch-size", "2",
                 "--memory-budget", "20MB", "-o", str(tmp_path / "g.png")]) == 2
    assert "lower --batch-size, --size, --max-side" in capsys.readouterr().err
    # strided by 'auto' (above 8M positions), or images alone over the budget: a stride cannot help
    for size, budget in (("4000", "1GB"), ("2048", "20MB")):
        assert main(["generate", "example:dots", "--size", size, size, "--memory-budget", budget,
                     "-o", str(tmp_path / "h.png")]) == 2
        said = capsys.readouterr().err
        assert "raise --memory-budget" in said and "--query-stride" not in said, size


def test_plan_shows_the_levels_of_a_refused_size(tmp_path, capsys):
    argv = ["generate", "example:dots", "-o", str(tmp_path / "o.png"), "--size", "2048", "2048", "--memory-budget", "20MB"]
    assert main(argv + ["--plan"]) == 2
    captured = capsys.readouterr()
    assert "planned peak" in captured.out and "raise --memory-budget" in captured.err
    assert main(argv) == 2  # without --plan: the one line alone
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.count("\n") == 1


def test_edit_shrinks_its_edit_with_the_input(tmp_path):
    """--max-side shrinks an --edited copy as it shrinks the input, and a --paste piece and its --at corner by
    the input's factor: an edit painted or pasted at rows 40-79, columns 60-99 of a 120x160 photograph is
    redrawn at rows 20-39, columns 30-49 of its 60x80 shrink, and the rest is the shrunk input itself."""
    from sidlite import load_image

    rng = np.random.default_rng(3)
    photo = rng.integers(90, 160, (120, 160, 3), dtype=np.uint8)
    Image.fromarray(photo).save(tmp_path / "photo.png")
    painted = photo.copy()
    painted[40:80, 60:100] = (255, 0, 0)
    Image.fromarray(painted).save(tmp_path / "painted.png")
    Image.fromarray(np.full((40, 40, 3), (255, 0, 0), dtype=np.uint8)).save(tmp_path / "red.png")
    small = ["--max-side", "80", "--patch-size", "5", "--steps", "2", "--quiet"]
    assert main(["edit", str(tmp_path / "photo.png"), "-o", str(tmp_path / "a.png"), "--edited",
                 str(tmp_path / "painted.png"), *small]) == 0
    assert main(["edit", str(tmp_path / "photo.png"), "-o", str(tmp_path / "b.png"), "--paste",
                 str(tmp_path / "red.png"), "--at", "40", "60", *small]) == 0
    shrunk = load_image(tmp_path / "photo.png", max_side=80)
    far = np.ones((60, 80), dtype=bool)
    far[10:50, 20:60] = False  # the region and a 10-pixel margin for the feather
    for name in ("a.png", "b.png"):
        changed = (load_image(tmp_path / name) - shrunk).abs().amax(0) > 3 / 255
        assert not changed[far].any(), name  # untouched away from the region
        assert changed[20:40, 30:50].float().mean() > 0.5, name  # redrawn inside it


def test_latent_sizes_are_said_in_pixels_and_cells(tmp_path, capsys):
    """A size that whole latent blocks change is noted, and a latent too small for the patch is refused in
    its cells with the pixels they stand for (not as if they were pixels)."""
    out = str(tmp_path / "l.png")
    assert main(["generate", "example:gravel", "--max-side", "128", "--latent", "pca", "--size", "200", "200",
                 "-o", out, "--plan"]) == 0
    captured = capsys.readouterr()
    assert "the output is 192x192 pixels, not 200x200" in captured.err
    assert "sizes in cells of the pca latent, 8x8 pixels each: the output is 192x192 pixels" in captured.out
    assert main(["generate", "example:chelsea", "--max-side", "64", "--latent", "pca", "-o", out]) == 2
    said = capsys.readouterr().err
    assert "cropped to 32x64 pixels" in said and "the input is 4x8 cells of the pca latent (32x64 pixels)" in said
    assert main(["generate", "example:gravel", "--max-side", "64", "--size", "8", "8", "-o", out]) == 2
    assert "the output (8x8 pixels) is smaller than the 15x15 patch" in capsys.readouterr().err


def test_a_reader_that_closes_early_gets_no_traceback(tmp_path):
    import os

    read, write = os.pipe()
    os.close(read)  # as `sidlite generate … --plan | head` does once head has its lines
    try:
        done = subprocess.run([sys.executable, "-m", "sidlite", "generate", "example:dots", "-o",
                               str(tmp_path / "p.png"), "--plan", *SMALL], stdout=write, stderr=subprocess.PIPE,
                              text=True, timeout=120)
    finally:
        os.close(write)
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr


def test_a_latent_preset_run_in_pixels_says_so(tmp_path, capsys):
    argv = ["generate", "example:dots", "--preset", "generate-latent", "--steps", "2", "--quiet"]
    assert main(argv + ["-o", str(tmp_path / "p.png")]) == 0
    assert "made for a latent space" in capsys.readouterr().err
    assert main(argv + ["--latent", "pca", "-o", str(tmp_path / "l.png")]) == 0
    assert "made for a latent space" not in capsys.readouterr().err


def test_edit_checks_its_places_in_the_inputs_own_pixels(tmp_path, capsys):
    """--at and an --edited copy are given in the input's pixels, so their errors speak of those, not of the
    --max-side shrink the run works on."""
    source = tmp_path / "in.png"
    Image.fromarray(np.full((120, 160, 3), 90, np.uint8)).save(source)
    Image.fromarray(np.full((100, 100, 3), 90, np.uint8)).save(tmp_path / "wrong.png")
    common = [str(source), "--max-side", "40", "-o", str(tmp_path / "e.png"), "--quiet"]
    assert main(["edit", *common, "--paste", "example:dots", "--at", "500", "500"]) == 2
    assert "--at 500 500 puts the 128x128 piece wholly outside the 120x160 input" in capsys.readouterr().err
    assert main(["edit", *common, "--edited", str(tmp_path / "wrong.png")]) == 2
    assert "--edited is 100x100 but the input is 120x160" in capsys.readouterr().err
    assert not (tmp_path / "e.png").exists()


def test_inpaint_rect_is_given_in_the_inputs_own_pixels(tmp_path, capsys):
    """--rect 40 60 40 40 on a 120x160 input shrunk 4x by --max-side is the hole at rows 10-19, columns 15-24 of
    the 30x40 image the run works on: the rest comes back as the shrunk input, the hole is redrawn."""
    from sidlite import load_image

    rng = np.random.default_rng(0)
    source = tmp_path / "in.png"
    Image.fromarray(rng.integers(0, 256, (120, 160, 3), dtype=np.uint8)).save(source)
    out = tmp_path / "i.png"
    assert main(["inpaint", str(source), "--rect", "40", "60", "40", "40", "--max-side", "40", "-o", str(out),
                 "--patch-size", "5", "--steps", "2", "--quiet"]) == 0
    result, shrunk = load_image(out), load_image(source, max_side=40)
    hole = torch.zeros(30, 40, dtype=torch.bool)
    hole[10:20, 15:25] = True
    assert float((result - shrunk)[:, ~hole].abs().max()) <= 1 / 127.5 + 1e-6  # kept, up to 8-bit rounding
    assert float((result - shrunk)[:, hole].abs().mean()) > 0.05  # redrawn
    assert main(["inpaint", str(source), "--rect", "40", "60", "2", "2", "--max-side", "40", "-o", str(out),
                 "--overwrite"]) == 2
    assert "vanishes" in capsys.readouterr().err


def test_flags_that_would_do_nothing_say_so(tmp_path, capsys):
    common = ["--max-side", "32", "--steps", "2", "--quiet"]
    assert main(["stylize", "example:dots", "--palette", "example:chelsea", "--clip", "some/model", "--views", "3",
                 "-o", str(tmp_path / "s.png"), *common]) == 0
    assert "--clip, --views only act with --prompt" in capsys.readouterr().err
    assert main(["edit", "example:dots", "--paste", "example:stripes", "--at", "10", "10", "--start-level", "9",
                 "-o", str(tmp_path / "e.png"), *common]) == 0
    assert "past the coarsest level" in capsys.readouterr().err
    assert main(["generate", "example:dots", "-o", str(tmp_path / "g.gif"), *common]) == 2
    assert ".png, .jpg" in capsys.readouterr().err


def test_counts_are_checked_as_they_are_read(tmp_path, capsys):
    for value, message in (("0", "expected a number >= 1, got 0"), ("1.5", "expected a whole number, got '1.5'")):
        with pytest.raises(SystemExit):
            main(["generate", "example:dots", "--steps", value, "-o", str(tmp_path / "o.png")])
        assert message in capsys.readouterr().err


def test_settings_in_messages_read_as_python_in_python_and_as_flags_on_the_command_line(tmp_path, capsys):
    from sidlite.errors import for_command_line

    assert for_command_line("raise `memory_budget`, or use `query_stride=2` or `device='cpu'`; `rho` stays") == \
        "raise --memory-budget, or use --query-stride 2 or --device cpu; `rho` stays"
    with pytest.raises(sidlite.SidliteError, match="smaller `patch_size`"):
        sidlite.generate(sidlite.example_image("dots", 20), patch_size=25, progress=False)
    assert main(["generate", "example:dots", "--max-side", "20", "--patch-size", "25", "-o", str(tmp_path / "o.png")]) == 2
    said = capsys.readouterr().err
    assert "smaller --patch-size" in said and "`" not in said
