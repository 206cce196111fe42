"""The systemd units: hardened (systemd-analyze security rates them 1.5 or lower) and clean under verify."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
UNITS = ROOT / "systemd"
MAX_EXPOSURE = 1.5


def _analyze() -> str:
    tool = shutil.which("systemd-analyze")
    if tool is None:
        message = "systemd-analyze is not installed (Debian: apt-get install systemd)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return tool


@pytest.mark.parametrize("unit", ["bridge.service", "bridge-poll.service", "bridge-worker@.service"])
def test_security_exposure_is_ok(unit):
    result = subprocess.run([_analyze(), "security", "--offline=true", "--no-pager", str(UNITS / unit)],
                            capture_output=True, text=True, timeout=60)
    match = re.search(r"Overall exposure level for \S+: (\d+\.\d+) (\w+)", result.stdout)
    assert match, result.stdout + result.stderr
    assert float(match.group(1)) <= MAX_EXPOSURE and match.group(2) == "OK", match.group(0)


def test_units_verify_clean(tmp_path):
    """verify checks that ExecStart exists: point it at this checkout's installed bridge, as an install would."""
    bridge = Path(sys.executable).parent / "bridge"
    assert bridge.exists(), "bridge is not installed in this environment"
    for unit in UNITS.iterdir():
        (tmp_path / unit.name).write_text(unit.read_text().replace("/opt/bridge/bin/bridge", str(bridge)))
    result = subprocess.run([_analyze(), "verify", "--man=no", *sorted(str(p) for p in tmp_path.iterdir())],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and result.stderr.strip() == "", result.stderr


def test_service_is_a_watchdog_supervised_notify_daemon():
    text = (UNITS / "bridge.service").read_text()
    for line in ("Type=notify", "ExecStart=/opt/bridge/bin/bridge run", "Restart=on-failure", "DynamicUser=yes",
                 "StateDirectory=bridge", "ConfigurationDirectory=bridge", "ExecReload=/bin/kill -HUP $MAINPID"):
        assert line in text.splitlines(), line
    assert re.search(r"^WatchdogSec=\S+", text, re.M)
    assert re.search(r"^LoadCredential=\S+:\S+", text, re.M)
