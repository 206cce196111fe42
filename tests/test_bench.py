"""The benchmark's smoke check: `bash bench/run --quick` (the documented command, small sizes) runs end to end
against real nginx and the Mastodon fake, and its numbers are complete and consistent. No timing is asserted
here: the full run and its targets are in docs/benchmarks.md.
"""

from __future__ import annotations

import json
import math
import subprocess
from pathlib import Path

import pytest

from tests.render_corpus import CORPUS_DIR, corpus_available

REPO = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def quick_results(tmp_path_factory) -> dict:
    from bench.nginx import find_nginx, missing_message

    if find_nginx() is None:  # say what is missing before a run that would stop on it
        pytest.fail(missing_message())
    out = tmp_path_factory.mktemp("bench") / "results.json"
    proc = subprocess.run(["bash", str(REPO / "bench" / "run"), "--quick", "--json", str(out)], cwd=REPO,
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, f"bench/run --quick failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    assert "| case" in proc.stdout, "the benchmark prints its table"
    return json.loads(out.read_text())


def test_every_case_has_a_number(quick_results):
    summary = quick_results["summary"]
    for name in ("steady_large_seconds", "change_seconds", "peak_rss_large_mb", "daemon_rss_mb", "growth_steady_ratio",
                 "growth_change_ratio", "cli_help_seconds", "cli_status_seconds", "idle_poll_cpu_seconds"):
        assert math.isfinite(summary[name]) and summary[name] > 0, name


def test_steady_cycle_is_all_conditional_gets(quick_results):
    steady = quick_results["steady_large"]
    assert steady["outcomes"].get("not-modified", 0) >= quick_results["arguments"]["large"]
    assert steady["feeds"] == 200


def test_change_cycle_records_one_new_entry_per_feed_and_queues_it(quick_results):
    change = quick_results["change_small"]
    assert change["new_entries_per_cycle"] == quick_results["arguments"]["small"]
    # every new entry got a delivery for the benchmark's Mastodon account (one may already be posted)
    assert change["queued"] >= quick_results["arguments"]["small"] - 1


def test_cold_poll_recorded_every_synthetic_entry_as_baseline(quick_results):
    cold = quick_results["cold_large"]
    assert cold["entries"] >= quick_results["arguments"]["large"] * 20
    assert cold["queued"] == 0, "a first poll must not flood the timeline"


def test_state_growth_case_ran_on_a_grown_state(quick_results):
    growth = quick_results["growth"]
    assert growth["history_entries"] == quick_results["arguments"]["small"] * quick_results["arguments"]["history"]
    assert quick_results["change_grown"]["entries"] > growth["history_entries"]
    # both states saw the same change cycles, so they hold the same entries apart from the seeded history
    assert quick_results["change_grown"]["entries"] - growth["history_entries"] == quick_results["change_small"]["entries"]


def test_render_throughput_uses_the_corpus(quick_results):
    assert corpus_available(), f"the shared corpus is missing at {CORPUS_DIR}"
    render = quick_results["render"]
    assert render["entries"] > 2000 and render["entries_per_second"] > 0


def test_idle_poll_case_measures_the_corpus_poll_beside_the_floor(quick_results):
    assert corpus_available(), f"the shared corpus is missing at {CORPUS_DIR}"
    idle = quick_results["idle_poll"]
    assert idle["feeds"] >= 70
    for case in ("floor", "nothing_due", "unchanged"):
        assert len(idle[f"{case}_runs"]) >= 3 and idle[f"{case}_cpu_seconds"] > 0, case
