"""One sampling configuration: presets in one table, typed settings, every application and the CLI alike."""
import math

import pytest
import torch

import sidlite
from sidlite import SamplingConfig, SidliteError, preset
from sidlite.backends import BackendSpec
from sidlite.cli import main
from sidlite.presets import PRESETS, by_name, format_presets


def test_presets_follow_the_papers_table():
    """Spot checks against the reference spec §9 (where sidlite keeps the paper's value)."""
    assert preset("retarget").min_side() == 15 and preset("retarget").eta == 1.0 and preset("retarget").seed == 0
    assert preset("tileable").min_side() == 30 and preset("generate").min_side() == 24
    assert preset("generate", "latent").rho == math.inf and preset("generate", "latent").patch_size == 7
    analogy = preset("analogy")
    assert (analogy.patch_size, analogy.num_levels, analogy.steps, analogy.sigma_min, analogy.seed) == (11, 3, (10, 10, 50), 1e-2, 1023)
    table1 = preset("generate", "table1")
    assert table1.num_levels == 4 and table1.min_side() is None
    assert preset("stylize").steps == 200


def test_latent_presets_probe_eight_lists_where_a_level_runs_top_k():
    """uncond/latent_ann's nprobe 8: a large latent output's top-k levels take it; 'auto' still picks."""
    texture = sidlite.example_image("gravel", 256)
    codec = sidlite.get_codec("pca", texture)
    for name in ("latent", "gigapixel"):
        _, model = sidlite.generation_model(texture, (2048, 2048), latent=codec, config=preset("generate", name),
                                            progress=False)
        levels = model.plan.levels
        assert levels[0].backend == "topk" and levels[0].options["nprobe"] == 8
        assert levels[-1].backend == "attention"  # the coarsest level stays exact
        assert model.denoisers[0].backend.nprobe == 8
    # an explicit backend replaces the preset's, options and all
    _, model = sidlite.generation_model(texture, (2048, 2048), latent=codec, backend="topk:nprobe=3", progress=False)
    assert model.denoisers[0].backend.nprobe == 3


def test_every_preset_is_listed_by_name():
    table = format_presets()
    for application, space in PRESETS:
        name = application if space == "pixels" else f"{application}-{space}"
        assert name in table and by_name(name) == (application, space)
        assert sidlite.preset(name) is sidlite.preset(application, space)  # the listed name works in Python too
    with pytest.raises(SidliteError, match="choose one of"):
        by_name("retarget-latent3")


@pytest.mark.parametrize("changes,message", [
    (dict(eta=1.5), "eta"), (dict(steps=0), "steps"), (dict(patch_size=0), "patch size"),
    (dict(min_short_side="2Q"), "min_short_side"), (dict(memory_budget="lots"), "memory size"),
    (dict(num_levels="deep"), "num_levels"), (dict(backend="warp"), "unknown backend"),
    (dict(steps=2.5), "steps"), (dict(patch_size=True), "patch size"), (dict(seed=2 ** 70), "seed"),
    (dict(seed="x"), "seed"), (dict(memory_budget=float("nan")), "memory size")])
def test_bad_settings_are_one_clear_error(changes, message):
    with pytest.raises(SidliteError, match=message):
        SamplingConfig(**changes)


def test_settings_split_into_fields_and_backend_options():
    config = preset("generate").updated(steps=3, nprobe=4, backend="topk")
    assert config.steps == 3 and isinstance(config.backend, BackendSpec)
    assert config.backend.name == "topk" and config.backend.options == {"nprobe": 4}
    assert preset("generate").steps == 10  # presets are not changed in place
    with pytest.raises(SidliteError, match="no option 'probes'"):  # near no setting: named as a backend option
        preset("generate").updated(probes=3)


@pytest.fixture(scope="module")
def cat():
    return sidlite.example_image("chelsea", 48)


@pytest.mark.parametrize("application,run", [
    ("retarget", lambda img, **s: sidlite.retarget(img, (32, 72), **s)),
    ("symmetric", lambda img, **s: sidlite.symmetric(img, **s)),
    ("tileable", lambda img, **s: sidlite.tileable(img, **s)),
    ("generate", lambda img, **s: sidlite.generate(img, **s)[0]),
    ("upscale", lambda img, **s: sidlite.upscale(img[:, :20, :20], 2.0, **s)),
])
def test_applications_take_a_config_or_its_fields_alike(cat, application, run):
    by_fields = run(cat, patch_size=5, steps=2, progress=False)
    by_config = run(cat, config=preset(application).updated(patch_size=5, steps=2, progress=False))
    assert torch.equal(by_fields, by_config)
    with pytest.raises(SidliteError, match="no option"):
        run(cat, patch_size=5, steps=2, progress=False, nprobes=3)


def test_cli_lists_presets_and_starts_from_one(tmp_path, capsys):
    assert main(["presets"]) == 0
    assert "generate-table1" in capsys.readouterr().out
    out = tmp_path / "t.png"
    assert main(["generate", "example:dots", "-o", str(out), "--preset", "generate-table1", "--patch-size", "5",
                 "--steps", "2", "--max-side", "64", "--plan"]) == 0
    printed = capsys.readouterr().out
    assert printed.count("\n") == 4 + 4  # four levels (Table 1's fixed depth), header, rule, footer, the saving line
    assert main(["generate", "example:dots", "-o", str(out), "--preset", "nope", "--plan"]) == 2
    assert "choose one of" in capsys.readouterr().err


def test_a_misspelt_setting_is_named_as_one():
    with pytest.raises(SidliteError, match="unknown setting 'stpes'; did you mean 'steps'"):
        SamplingConfig().updated(stpes=3)
    assert SamplingConfig().updated(nprobe=4).backend.options == {"nprobe": 4}  # a backend option still is one


def test_numpy_numbers_are_taken_as_python_numbers():
    import numpy as np

    config = SamplingConfig(patch_size=np.int64(7), steps=(np.int32(3), 2), seed=np.int64(4), eta=np.float32(0.5),
                            batch_size=np.int16(2))
    assert config == SamplingConfig(patch_size=7, steps=(3, 2), seed=4, eta=0.5, batch_size=2)
    assert type(config.patch_size) is int and type(config.eta) is float
    with pytest.raises(SidliteError, match="steps must be an integer"):
        SamplingConfig(steps=True)  # a boolean is not a count


def test_a_preset_goes_by_its_commands_name_too():
    assert by_name("tile") == ("tileable", "pixels") and by_name("tile-latent") == ("tileable", "latent")


def test_switches_are_true_or_false():
    import numpy as np

    assert SamplingConfig(progress=np.bool_(False)).progress is False
    with pytest.raises(SidliteError, match="progress is True or False"):
        SamplingConfig(progress="no")  # a non-empty string would have read as True
    image = sidlite.example_image("dots", 24)
    with pytest.raises(SidliteError, match="keep_outside is True or False"):
        sidlite.edit(image, image.flip(2), keep_outside="no", progress=False)
