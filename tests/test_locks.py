"""The two locks: ``requirements.lock`` (the image's runtime) and ``requirements-test.lock``
(what CI installs: the runtime, the test toolchain and the build backend). Every dependency,
with the packages its extras bring, is pinned exactly; the two agree on every version they
share; and CI installs the test lock, then the project without resolving again."""

from __future__ import annotations

import importlib.metadata
import re
import tomllib
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

if TYPE_CHECKING:
    from collections.abc import Iterator

ROOT = Path(__file__).resolve().parent.parent
RUNTIME_LOCK = ROOT / "requirements.lock"
TEST_LOCK = ROOT / "requirements-test.lock"
CI = ROOT / ".ci" / "run"


def pins(lock: Path) -> dict[str, str]:
    """The lock's pins by canonical name; every line that is not a comment is ``name==version``."""
    found: dict[str, str] = {}
    for line in lock.read_text().splitlines():
        line = line.split("#", 1)[0].strip()  # noqa: PLW2901
        if not line:
            continue
        match = re.fullmatch(r"([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;]+)", line)
        assert match, f"{lock.name}: not an exact pin: {line!r}"
        found[canonicalize_name(match.group(1))] = match.group(2)
    return found


def _pyproject() -> dict[str, Any]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def _with_extras(specs: list[str]) -> Iterator[Requirement]:
    """Each requirement, and what each of its extras requires (from the installed metadata)."""
    for spec in specs:
        requirement = Requirement(spec)
        yield requirement
        for extra in requirement.extras:
            for line in importlib.metadata.requires(requirement.name) or []:
                brought = Requirement(line)
                marker = brought.marker
                # Brought by this extra on this platform, and not needed without it.
                if (
                    marker is not None
                    and marker.evaluate({"extra": extra})
                    and not marker.evaluate({"extra": ""})
                ):
                    yield brought


def _check(lock: Path, specs: list[str]) -> None:
    locked = pins(lock)
    for requirement in _with_extras(specs):
        name = canonicalize_name(requirement.name)
        assert name in locked, f"{name} is not pinned in {lock.name}"
        assert requirement.specifier.contains(locked[name]), (lock.name, name, locked[name])
    assert "diplofeed" not in locked


def test_the_runtime_lock_pins_every_dependency_and_its_extras() -> None:
    _check(RUNTIME_LOCK, _pyproject()["project"]["dependencies"])
    # uvicorn[standard]: what `diplofeed serve` runs on.
    assert {"uvloop", "httptools"} <= pins(RUNTIME_LOCK).keys()


def test_the_test_lock_pins_the_toolchain_the_dependencies_and_the_build_backend() -> None:
    project = _pyproject()
    _check(
        TEST_LOCK,
        [
            *project["project"]["dependencies"],
            *project["project"]["optional-dependencies"]["test"],
            *project["build-system"]["requires"],
        ],
    )
    assert {"ruff", "mypy", "pytest"} <= pins(TEST_LOCK).keys()


def test_the_locks_agree_on_every_version_they_share() -> None:
    runtime, test = pins(RUNTIME_LOCK), pins(TEST_LOCK)
    assert runtime.keys() <= test.keys(), sorted(runtime.keys() - test.keys())
    assert {name: (version, test[name]) for name, version in runtime.items()} == {
        name: (version, version) for name, version in runtime.items()
    }


def _ci_installs() -> list[str]:
    lines = [line.strip() for line in CI.read_text().splitlines()]
    return [line for line in lines if "pip install" in line and not line.startswith("#")]


def test_ci_installs_the_test_lock_then_the_project_without_resolving() -> None:
    installs = _ci_installs()
    assert any(re.search(r"pip install .*-r requirements-test\.lock\b", c) for c in installs)
    project = [c for c in installs if re.search(r"-e \.(\s|$)", c)]
    assert project, installs
    for command in project:
        assert "--no-deps" in command, command
        # The build backend comes from the lock too.
        assert "--no-build-isolation" in command, command
    assert not [c for c in installs if "[test]" in c], "an install that resolves afresh"


@pytest.mark.parametrize("lock", [RUNTIME_LOCK, TEST_LOCK], ids=lambda p: p.name)
def test_a_lock_names_python_3_11(lock: Path) -> None:
    assert "Python 3.11" in lock.read_text()
