"""The install: `make demo` gets the main environment only, the pinned files are exact and
complete closures, and pyproject.toml takes its dependencies from them (no second list to drift).

The closures are walked through the metadata of the packages installed here (`make test` installs
all three files), so a pin that pulls in an unlisted package, or a Spark, fuzzing or test package
that creeps into the main environment, fails here.
"""

from __future__ import annotations

import importlib.metadata
import re
import subprocess
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from pipeline.settings import REPO_ROOT

FILES = ("requirements.txt", "requirements-spark.txt", "requirements-dev.txt")
NOT_IN_THE_DEMO = ("pyspark", "dbt-spark", "atheris", "pytest", "dagster-dg-cli", "hypothesis")
PIN = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)==(?P<version>[A-Za-z0-9.+!-]+)$")


def pins(file: str) -> dict[str, str]:
    """The file's ``name==version`` lines, by canonical name; any other non-comment line fails."""
    found = {}
    for line in (REPO_ROOT / file).read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        match = PIN.match(line)
        assert match, f"{file}: not an exact name==version pin: {line!r}"
        found[canonicalize_name(match["name"])] = match["version"]
    return found


def closure(roots: list[Requirement]) -> set[str]:
    """Every distribution the roots need on this interpreter, extras followed."""
    seen: set[tuple[str, frozenset[str]]] = set()
    names: set[str] = set()
    todo = [(canonicalize_name(r.name), frozenset(r.extras)) for r in roots]
    while todo:
        name, extras = todo.pop()
        if (name, extras) in seen:
            continue
        seen.add((name, extras))
        names.add(name)
        for text in importlib.metadata.requires(name) or []:
            requirement = Requirement(text)
            wanted = requirement.marker is None or any(
                requirement.marker.evaluate({"extra": extra}) for extra in (extras or {""})
            )
            if wanted:
                todo.append((canonicalize_name(requirement.name), frozenset(requirement.extras)))
    return names


def top_level(file: str) -> list[Requirement]:
    lines = (REPO_ROOT / file).read_text().splitlines()
    return [Requirement(line) for line in lines if line.strip() and not line.startswith("#")]


def test_every_requirements_file_is_a_list_of_exact_pins_without_addresses() -> None:
    for file in FILES:
        assert pins(file)
        assert "://" not in (REPO_ROOT / file).read_text()


def test_the_main_environment_is_a_complete_closure_without_spark_fuzzers_or_test_tools() -> None:
    main = pins("requirements.txt")
    needed = closure(top_level("requirements.in")) | closure(
        [Requirement(f"{name}=={version}") for name, version in main.items()]
    )
    assert needed - set(main) == set(), "installed with --no-deps: every dependency is pinned"
    assert sorted(set(NOT_IN_THE_DEMO) & (needed | set(main))) == []


@pytest.mark.parametrize("extra", ["spark", "dev"])
def test_each_extra_file_completes_the_main_one_and_repeats_none_of_it(extra: str) -> None:
    main, added = pins("requirements.txt"), pins(f"requirements-{extra}.txt")
    assert set(main) & set(added) == set()
    needed = closure(top_level("requirements.in") + top_level(f"requirements-{extra}.in"))
    assert needed - set(main) - set(added) == set()


def test_the_pins_satisfy_the_top_level_requirements_and_are_what_is_installed() -> None:
    every = {name: version for file in FILES for name, version in pins(file).items()}
    for file in ("requirements.in", "requirements-spark.in", "requirements-dev.in"):
        for requirement in top_level(file):
            version = every[canonicalize_name(requirement.name)]
            assert requirement.specifier.contains(version, prereleases=True), (file, requirement)
    for name, version in every.items():
        assert importlib.metadata.version(name) == version, name


def test_pyproject_reads_its_dependencies_and_extras_from_the_requirements_files() -> None:
    pyproject = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    assert "dependencies" not in pyproject["project"]
    assert "optional-dependencies" not in pyproject["project"]
    assert set(pyproject["project"]["dynamic"]) >= {"dependencies", "optional-dependencies"}
    dynamic = pyproject["tool"]["setuptools"]["dynamic"]
    assert dynamic["dependencies"] == {"file": ["requirements.txt"]}
    assert dynamic["optional-dependencies"] == {
        "spark": {"file": ["requirements-spark.txt"]},
        "dev": {"file": ["requirements-dev.txt"]},
    }


def _make_dry_run(target: str, venv: Path) -> str:
    result = subprocess.run(
        ["make", "--dry-run", "--always-make", target, f"VENV={venv}"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return result.stdout


def test_make_demo_on_a_fresh_clone_installs_the_main_file_only(tmp_path: Path) -> None:
    commands = _make_dry_run("demo", tmp_path / "venv")
    assert "-r requirements.txt" in commands
    assert "requirements-spark.txt" not in commands
    assert "requirements-dev.txt" not in commands


def test_make_test_installs_every_file(tmp_path: Path) -> None:
    commands = _make_dry_run("test", tmp_path / "venv")
    for file in FILES:
        assert f"-r {file}" in commands
