"""The benchmark's PostgreSQL cases run end to end: `bash bench/run --postgres --quick` (a few hundred feeds, 1
and 2 `bridge run` workers on one real PostgreSQL, nginx, the Mastodon fake) measures what it says. No timing is
asserted: the full run's numbers are in docs/benchmarks.md.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("bench") / "results-postgres.json"
    proc = subprocess.run(["bash", str(REPO / "bench" / "run"), "--postgres", "--quick", "--json", str(out)], cwd=REPO,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"bench/run --postgres --quick failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    assert "| case | workers |" in proc.stdout, "the benchmark prints its table"
    return json.loads(out.read_text())


def test_the_database_is_durable_as_in_production(results):
    assert (results["postgres"]["fsync"], results["postgres"]["synchronous_commit"]) == ("on", "on")


def test_the_state_starts_with_every_feed_polled_once(results):
    cold = results["cold"]  # the changed set polled cold (20 entries each), the other feeds written as polled
    assert (cold["feeds"], cold["seeded_feeds"], cold["entries"]) == (100, 200, 100 * 20)


def test_every_round_polled_each_of_its_feeds_once_and_recorded_what_changed(results):
    arguments = results["arguments"]
    rounds = results["rounds"]
    assert sorted((row["case"], row["workers"]) for row in rounds) == [("changed", 1), ("changed", 2), ("steady", 1), ("steady", 2)]
    for row in rounds:
        if row["case"] == "steady":
            assert (row["feeds"], row["entries_recorded"]) == (arguments["pg_feeds"], 0)
        else:
            assert row["feeds"] == row["entries_recorded"] == arguments["pg_changed"] == 100


def test_cpu_is_counted_for_the_workers_and_for_postgresql_apart(results):
    for row in results["rounds"]:
        assert row["bridge_cpu_seconds"] > 0 and row["postgres_cpu_seconds"] > 0, row
        per_feed = (row["bridge_cpu_seconds"] + row["postgres_cpu_seconds"]) * 1000 / row["feeds"]
        assert row["cpu_ms_per_feed"] == pytest.approx(per_feed)
        assert row["feeds_per_second"] == pytest.approx(row["feeds"] / row["busy_seconds"])
        assert 0 < row["busy_seconds"] <= row["seconds"]
        assert row["peak_rss_mb_per_worker"] > 20  # a Python process with bridge loaded, read from /proc


def test_the_database_side_is_counted(results):
    for row in results["rounds"]:
        assert row["connections"] >= row["workers"], row  # every worker connected (the benchmark's own left out)
        assert row["commits_per_feed"] >= 1 and row["wal_flushes_per_feed"] > 0, row  # each poll is recorded durably
    assert results["postgres"]["sizes_mb"]["feeds"] > 0


def test_the_medians_are_per_case_and_worker_count(results):
    medians = results["medians"]
    assert set(medians) == {"steady", "changed"}
    assert set(medians["steady"]) == set(medians["changed"]) == {"1", "2"}
