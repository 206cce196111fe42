"""A quiet test run (`pytest -q`, the README's test command) prints dots and failures, not reports."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests import mastodon_cassettes

ROOT = Path(__file__).resolve().parent.parent
SUMMARY_TEST = "tests/test_mastodon_conformance.py::test_zz_conformance_summary"


def run_pytest(*args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "pytest", SUMMARY_TEST, "-p", "no:cacheprovider", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout


def test_the_conformance_summary_goes_to_a_file_and_to_the_screen_only_with_verbose():
    summary_file = mastodon_cassettes.cache_dir() / "mastodon-conformance-summary.json"
    summary_file.unlink(missing_ok=True)
    quiet = run_pytest("-q")
    assert "conformance summary" not in quiet and "{" not in quiet, quiet
    assert json.loads(summary_file.read_text())["recorded_server"].startswith("Mastodon ")
    assert "Mastodon conformance summary (also in" in run_pytest("-v")
