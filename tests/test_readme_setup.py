"""The README says what the test command installs and needs: every system package `.ci/run` installs with apt-get,
that it needs root to do so, and how long the PDS install takes as its installer says."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
TESTS_SECTION = README.split("\n## Tests\n", 1)[1].split("\n## ", 1)[0]


def ci_packages() -> set[str]:
    ci = (ROOT / ".ci" / "run").read_text()
    packages = set(re.findall(r"missing\+=\(([a-z0-9.+-]+)\)", ci))
    for group in re.findall(r"for package in ([^;]+);", ci):
        packages.update(group.split())
    return packages


def test_the_readme_names_every_package_ci_installs_and_that_it_needs_root():
    packages = ci_packages()
    assert {"nginx-light", "systemd", "postgresql"} <= packages
    flat = " ".join(TESTS_SECTION.split())
    assert [package for package in sorted(packages) if package not in flat] == []
    assert "apt-get" in flat and "root" in flat and "nginx" in flat


def test_the_readme_gives_the_pds_install_time_its_installer_gives():
    said = re.search(r"Takes (\d+-\d+ s)", (ROOT / "tests" / "install-pds.sh").read_text()).group(1)
    assert said in " ".join(TESTS_SECTION.split())
    assert "about 90 seconds" not in README
