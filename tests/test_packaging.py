"""The wheel carries what the checkout has: every package under webapp/, the templates and static
files (mapped from the top-level templates/ and static/), the migrations and the license.

A wheel that lacks a package installs fine and then fails with ImportError (webapp.store once
did), and the test suite, which runs against the checkout, does not notice."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # builds a wheel: about 5 s

ROOT = Path(__file__).resolve().parent.parent
# Not copied into the build: setuptools puts whatever is left in build/lib into the wheel, so a
# build in the checkout could pass with files that the configuration no longer names.
SKIPPED_AT_TOP = {".git", ".venv", "build", "dist", ".hypothesis", ".pytest_cache", "instance", "node_modules"}


def _skipped(directory: str, names: list[str]) -> set[str]:
    skipped = {name for name in names if name == "__pycache__" or name.endswith(".egg-info")}
    if Path(directory) == ROOT:
        skipped |= SKIPPED_AT_TOP.intersection(names)
    return skipped


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> set[str]:
    """The names of the files in a wheel built from a clean copy of the checkout."""
    tmp = tmp_path_factory.mktemp("wheel")
    source = tmp / "src"
    shutil.copytree(ROOT, source, ignore=_skipped, symlinks=True)
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(tmp / "dist"), str(source)],
        capture_output=True, text=True, timeout=600,
    )
    if built.returncode != 0:
        pytest.fail(f"pip wheel failed ({built.returncode}):\n{built.stdout}\n{built.stderr}")
    wheels = list((tmp / "dist").glob("taskstore-*.whl"))
    assert len(wheels) == 1, wheels
    with zipfile.ZipFile(wheels[0]) as archive:
        return set(archive.namelist())


def on_disk(folder: Path, pattern: str = "*") -> list[Path]:
    """Files under ``folder`` matching ``pattern`` at any depth, without __pycache__."""
    found = [path for path in folder.rglob(pattern) if path.is_file() and "__pycache__" not in path.parts]
    assert found, f"nothing matches {pattern} under {folder}: the check below would be empty"
    return sorted(found)


def test_every_package_under_webapp_is_in_the_wheel(wheel):
    packages = [init.parent.relative_to(ROOT).as_posix() for init in on_disk(ROOT / "webapp", "__init__.py")]
    assert [package for package in packages if f"{package}/__init__.py" not in wheel] == []


def test_every_module_under_webapp_is_in_the_wheel(wheel):
    # Also catches a folder of modules without an __init__.py: importable from the checkout as a
    # namespace package, but package discovery (namespaces = false) does not ship it.
    modules = [path.relative_to(ROOT).as_posix() for path in on_disk(ROOT / "webapp", "*.py")]
    assert [module for module in modules if module not in wheel] == []


def test_templates_and_static_files_are_inside_the_package(wheel):
    for folder in ("templates", "static"):
        expected = [f"webapp/{path.relative_to(ROOT).as_posix()}" for path in on_disk(ROOT / folder)]
        assert [name for name in expected if name not in wheel] == []
    assert any(name.startswith("webapp/templates/") and name.endswith(".html") for name in wheel)
    assert "webapp/static/app.css" in wheel
    htmx = [path.name for path in (ROOT / "static").glob("htmx-*.min.js")]
    assert htmx, "no static/htmx-*.min.js in the checkout"
    assert [name for name in htmx if f"webapp/static/{name}" not in wheel] == []


def test_migrations_and_their_data_files_are_in_the_wheel(wheel):
    expected = ["webapp/migrations/alembic.ini", "webapp/migrations/script.py.mako", "webapp/migrations/env.py"]
    expected += [path.relative_to(ROOT).as_posix() for path in on_disk(ROOT / "webapp/migrations/versions", "*.py")]
    assert [name for name in expected if name not in wheel] == []


def test_the_wheel_has_the_license_and_nothing_beside_the_package(wheel):
    licenses = [name for name in wheel if name.endswith(".dist-info/licenses/LICENSE")]
    assert len(licenses) == 1, licenses
    top_level = {name.split("/")[0] for name in wheel}
    assert {name for name in top_level if not name.endswith(".dist-info")} == {"webapp"}
