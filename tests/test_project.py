"""Project hygiene: the two set-up commands, CI, and the dependency lists agreeing."""
import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def requirement_names(lines):
    return {re.split(r"[<>=!~\[ ]", line.strip(), maxsplit=1)[0].lower() for line in lines if line.strip()}


def test_environment_yml_lists_the_pyproject_dependencies():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = set(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        wanted |= set(extra)
    env_lines = [line.strip()[2:] for line in (ROOT / "environment.yml").read_text().splitlines()
                 if line.startswith("      - ") and not line.strip().startswith("- -e")]
    assert requirement_names(wanted) == requirement_names(env_lines)
    assert set(wanted) == {line.strip() for line in env_lines}  # same version ranges too


def test_readme_commands_and_ci():
    readme = (ROOT / "README.md").read_text()
    assert "make demo" in readme and "make test" in readme
    assert "make test" in (ROOT / ".ci" / "run").read_text()
    makefile = (ROOT / "Makefile").read_text()
    for target in ("demo:", "test:", "lab:", "book:", "help:", "student:", "bench:"):
        assert target in makefile
