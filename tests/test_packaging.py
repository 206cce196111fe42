"""What a fresh install gets: every library bridge and its tests import is declared in pyproject.toml, and the
package metadata names its license the way current setuptools wants it, without a warning."""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
import tomllib
from email.parser import Parser
from importlib.metadata import packages_distributions
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
OWN_PACKAGES = {"bridge", "tests", "bench"}
# Runs inside Takahē's own virtualenv (tests/install-takahe.sh), importing Takahē's Django apps, not ours.
FOREIGN_FILES = {ROOT / "tests" / "takahe_admin.py"}


def imported_modules(directory: Path) -> dict[str, list[str]]:
    """Top-level third-party module name -> the files importing it (absolute imports, stdlib and ours left out)."""
    found: dict[str, list[str]] = {}
    for path in sorted(directory.rglob("*.py")):
        label = str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)
        if path in FOREIGN_FILES or "node_modules" in path.parts:
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top not in sys.stdlib_module_names and top not in OWN_PACKAGES:
                    found.setdefault(top, []).append(label)
    return found


def declared(*extras: str) -> set[str]:
    requirements = list(PROJECT["dependencies"])
    for extra in extras:
        requirements += PROJECT["optional-dependencies"][extra]
    return {canonicalize_name(Requirement(text).name) for text in requirements}


def undeclared(directory: Path, allowed: set[str]) -> list[str]:
    distributions = packages_distributions()
    problems = []
    for module, files in sorted(imported_modules(directory).items()):
        providers = {canonicalize_name(name) for name in distributions.get(module, [])}
        if not providers & allowed:
            problems.append(f"{module} (from {', '.join(sorted(providers)) or 'no installed distribution'}), "
                            f"imported by {files[0]}")
    return problems


def test_every_library_bridge_imports_is_a_declared_dependency():
    assert undeclared(ROOT / "bridge", declared()) == []


def test_every_library_the_tests_import_is_declared_with_the_test_extra():
    assert undeclared(ROOT / "tests", declared("test")) == []


def test_the_check_itself_sees_an_undeclared_import(tmp_path):
    (tmp_path / "module.py").write_text("import json\nimport yaml\nfrom bridge import config\n")
    assert list(imported_modules(tmp_path)) == ["yaml"]  # PyYAML: in the test extra only
    assert len(undeclared(tmp_path, declared())) == 1 and undeclared(tmp_path, declared("test")) == []


def test_the_license_is_an_spdx_expression_with_its_file_and_the_build_does_not_warn(tmp_path):
    assert (ROOT / "LICENSE").read_text().startswith(f"{PROJECT['license']} License\n")
    # Every warning is an error here: setuptools deprecates `license = {text = ...}` with a warning.
    script = textwrap.dedent(f"""
        import warnings
        warnings.simplefilter("error")
        from setuptools import build_meta
        print(build_meta.prepare_metadata_for_build_wheel({str(tmp_path)!r}))
    """)
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    dist_info = tmp_path / done.stdout.strip().splitlines()[-1]
    metadata = Parser().parsestr((dist_info / "METADATA").read_text())
    assert metadata["License-Expression"] == "MIT" and metadata.get_all("License-File") == ["LICENSE"]
    assert (dist_info / "licenses" / "LICENSE").read_text() == (ROOT / "LICENSE").read_text()
