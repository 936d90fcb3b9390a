"""The README's two set-up commands are the ones CI and the lab really use."""

from __future__ import annotations

import re

from tests.conftest import REPO_ROOT


def _setup_block() -> list[str]:
    readme = (REPO_ROOT / "README.md").read_text()
    section = readme.split("## Set-up: two commands", 1)[1]
    block = re.search(r"```bash\n(.*?)```", section, re.S)
    assert block is not None
    return [line.split("#")[0].strip() for line in block.group(1).splitlines() if line.strip()]


def _make_recipe(target: str) -> str:
    makefile = (REPO_ROOT / "Makefile").read_text()
    match = re.search(rf"^{target}:.*\n((?:\t.*\n)+)", makefile, re.M)
    assert match is not None, target
    return match.group(1)


def test_readme_has_exactly_two_commands() -> None:
    assert _setup_block() == ["make lab", "make test"]


def test_ci_runs_the_readme_test_command() -> None:
    script = (REPO_ROOT / ".ci" / "run").read_text()
    commands = [line.strip() for line in script.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    assert commands[-1] == "make test"


def test_make_lab_runs_the_lab() -> None:
    assert "tokenlabs lab up" in _make_recipe("lab")


def test_make_test_runs_every_gate() -> None:
    makefile = (REPO_ROOT / "Makefile").read_text()
    assert re.search(r"^test: setup$", makefile, re.M)
    recipe = _make_recipe("test").splitlines()
    # The builds run beside the linters, then the suite.
    assert [line.split()[-3:] for line in recipe] == [
        ["bins", "lint", "sanity"],
        ["$(MAKE)", "--no-print-directory", "pytest"],
    ]
    lint = _make_recipe("lint")
    for tool in ("ruff check", "yamllint --strict", "ansible-lint"):
        assert tool in lint
    assert "pytest" in _make_recipe("pytest")
