"""Docs that cannot drift: the README names every command and option, its first commands are the real ones."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import click

from bridge.cli import cli

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def _commands(group: click.Group, prefix: str = ""):
    context = click.Context(group)
    for name in sorted(group.list_commands(context)):  # as --help lists them (bridge's are registered on demand)
        command = group.get_command(context, name)
        yield prefix + name, command
        if isinstance(command, click.Group):
            yield from _commands(command, prefix + name + " ")


def test_every_command_and_option_is_in_the_readme():
    for path, command in _commands(cli):
        assert f"bridge {path}" in README, f"`bridge {path}` is not documented in README.md"
        for param in command.params:
            if isinstance(param, click.Option):
                for option in param.opts:
                    if option.startswith("--"):
                        assert option in README, f"{option} of `bridge {path}` is not documented in README.md"
    for param in cli.params:
        for option in getattr(param, "opts", []):
            assert option in README, f"global option {option} is not documented"


def test_every_command_has_help():
    for path, command in _commands(cli):
        result = subprocess.run([sys.executable, "-m", "bridge", *path.split(), "--help"], capture_output=True,
                                text=True, timeout=60, cwd=ROOT)
        assert result.returncode == 0 and "Usage:" in result.stdout, path
        assert command.help, f"`bridge {path}` has no help text"


def test_readme_opens_with_the_two_fresh_machine_commands():
    commands = re.findall(r"^    (\S.*)$", README.split("---", 1)[0], re.M)
    assert commands[0] == ("python3 -m venv .venv && .venv/bin/pip install . && "
                           ".venv/bin/bridge --config config.example.toml status")
    assert commands[1] == "bash tests/run"
    ci = (ROOT / ".ci" / "run").read_text()
    assert "bash tests/run" in ci, ".ci/run must call the README's test command"


def test_readme_quick_start_runs(tmp_path):
    """The run half of the first command (the install half is what `bash tests/run` itself does)."""
    result = subprocess.run([sys.executable, "-m", "bridge", "--config", "config.example.toml", "status"],
                            capture_output=True, text=True, timeout=60, cwd=ROOT,
                            env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})
    assert result.returncode == 0, result.stderr
    assert "blog" in result.stdout and "mastodon-main" in result.stdout
    assert not (tmp_path / ".local").exists()  # status on a fresh machine creates no state


def test_benchmarks_doc_shows_the_recorded_full_run():
    # docs/benchmarks.md's table is the one `bash bench/run` printed for the bench/results.json in the repo, and
    # that run was the full one (not --quick) and met every target. No timing happens here: these are the
    # recorded numbers of the documented command.
    import json

    from bench.__main__ import TARGETS, table

    results = json.loads((ROOT / "bench" / "results.json").read_text(encoding="utf-8"))
    doc = (ROOT / "docs" / "benchmarks.md").read_text(encoding="utf-8")
    assert table(results) in doc, "docs/benchmarks.md does not show the table of bench/results.json"
    arguments = results["arguments"]
    assert not arguments["quick"] and (arguments["large"], arguments["small"], arguments["history"]) == (10_000, 1_000, 1_000)
    # targets added after the recorded run (cold wall time, the 100,000-feed cycle) are checked once a run has them
    missed = {name: results["summary"][name] for name, (limit, _) in TARGETS.items()
              if name in results["summary"] and results["summary"][name] > limit}
    assert not missed, f"the recorded run missed targets: {missed}"
    assert "bash bench/run" in README and "docs/benchmarks.md" in README


def test_benchmarks_doc_shows_the_recorded_postgresql_run():
    # The PostgreSQL workers' table in docs/benchmarks.md is the one `bash bench/run --postgres` printed for the
    # bench/results-postgres.json in the repo: a full run (not --quick) at the sizes (100,000 feeds in the
    # steady cycle, 10,000 changed) with 1, 2 and 4 workers, each measured in more than one run.
    import json

    from bench.workers import table

    results = json.loads((ROOT / "bench" / "results-postgres.json").read_text(encoding="utf-8"))
    doc = (ROOT / "docs" / "benchmarks.md").read_text(encoding="utf-8")
    assert table(results) in doc, "docs/benchmarks.md does not show the table of bench/results-postgres.json"
    arguments = results["arguments"]
    assert not arguments["quick"] and arguments["pg_workers"] == [1, 2, 4]
    assert (arguments["pg_feeds"], arguments["pg_changed"]) == (100_000, 10_000)
    for case in ("steady", "changed"):
        assert all(len(results["medians"][case][str(count)]["runs"]) >= 2 for count in (1, 2, 4)), case
