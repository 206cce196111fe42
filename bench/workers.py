"""The benchmark on PostgreSQL: N `bridge run` workers sharing one database (`python -m bench --postgres`).

One throwaway PostgreSQL cluster (durable defaults), nginx serving the synthetic feeds (bench/workspace.py), the
Mastodon fake for the one account, and one config whose `[bridge] database` names the cluster. The state starts
with every feed polled once (WorkersBench.prepare); then, for each run and each worker count (1, 2, 4 by
default; the order alternates from run to run, so the machine's drift falls on every count alike):

- start N `bridge run` workers and wait until each has started (its start-up is not measured);
- *steady*: every feed made due in the database (next_poll_at set to now, in one statement), nothing changed:
  the time until every feed has been polled once (the newest last_checked_at minus the moment the statement
  committed), the CPU the workers spent and PostgreSQL's, separately;
- *changed*: the first `changed` feeds gain an entry each (their documents rewritten) and only they are made due
  (the others are put a day ahead, so that nothing else runs): the same, plus the entries recorded;
- the workers' peak RSS (VmHWM), then SIGTERM.

"All due" is reproducible because the workers take due feeds from the database: the benchmark sets next_poll_at
itself before each round, as time passing would. CPU is read from /proc (bench/procstat.py): each worker's own,
and the cluster's (postmaster, live backends and exited ones), without the benchmark's own connection.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from email.utils import formatdate
from pathlib import Path

import psycopg

from bench import synthetic
from bench.measure import median, run_bridge, write_results

from bench.nginx import Nginx
from bench.procstat import cluster_cpu, peak_rss_mb, postmaster_pid, process_cpu
from bench.workspace import MTIME_ORIGIN, FeedSet, write_config

DATABASE_ENV = "BENCH_DATABASE_URL"
READY_LINE = "bridge running"  # bridge/daemon.py logs it once the worker is scheduling
START_TIMEOUT = 300.0
STOP_TIMEOUT = 120.0
PROBE_SECONDS = 0.5
# PostgreSQL 15 publishes an idle backend's counters within 10 s (PGSTAT_IDLE_INTERVAL); a little more.
STATS_IDLE_FLUSH_SECONDS = 11.0
DAY = 86_400.0
# Recorded with the numbers: what the cluster ran with (PostgreSQL's defaults, durable).
POSTGRES_SETTINGS = ("server_version", "fsync", "synchronous_commit", "full_page_writes", "shared_buffers",
                     "max_connections", "max_wal_size")


def nginx_validators(path: Path) -> tuple[str, str]:
    """The ETag and Last-Modified nginx sends for the file (ETag: mtime and size in hex)."""
    stat = path.stat()
    mtime = int(stat.st_mtime)
    return f'"{mtime:x}-{stat.st_size:x}"', formatdate(mtime, usegmt=True)


def write_documents(feeds: FeedSet, changed: int) -> None:
    """The changed set's own documents; for the feeds that only answer 304, a copy of one synthetic document of
    their kind (RSS or Atom), which nginx only stats: generating 90,000 documents takes longer than the benchmark."""
    copies: dict[str, bytes] = {}
    for index in range(feeds.count):
        if index < changed:
            feeds.write(index)
            continue
        path = feeds.path(index)
        if path.suffix not in copies:
            copies[path.suffix] = synthetic.document(index, 0, f"{feeds.nginx.base_url(index)}/site/{index}")
        path.write_bytes(copies[path.suffix])
        os.utime(path, (MTIME_ORIGIN, MTIME_ORIGIN))


class Workers:
    """N `bridge run` processes on one config, each logging to its own file."""

    def __init__(self, bridge: str, config: Path, env: dict, logs: Path, label: str) -> None:
        self.command = [bridge, "--config", str(config), "run"]
        self.env = env
        self.folder = logs
        self.label = label
        self.logs: list[Path] = []
        self.procs: list[subprocess.Popen] = []

    def spawn(self, count: int) -> "Workers":
        for _ in range(count):
            log = self.folder / f"{self.label}-worker{len(self.procs)}.log"
            with open(log, "ab") as handle:
                self.procs.append(subprocess.Popen(self.command, env=self.env, stdout=subprocess.DEVNULL, stderr=handle))
            self.logs.append(log)
        return self

    def wait_started(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        waiting = list(zip(self.procs, self.logs))
        while waiting:
            self.check_alive()
            waiting = [(proc, log) for proc, log in waiting if READY_LINE not in log.read_text(errors="replace")]
            if time.monotonic() > deadline:
                raise RuntimeError(f"{len(waiting)} worker(s) did not start within {START_TIMEOUT:.0f} s: {waiting[0][1]}")
            time.sleep(0.2)

    def check_alive(self) -> None:
        for proc, log in zip(self.procs, self.logs):
            if proc.poll() is not None:
                tail = log.read_text(errors="replace")[-2000:]
                raise RuntimeError(f"a worker exited ({proc.returncode}) during the benchmark; its log ends:\n{tail}")

    def cpu(self) -> float:
        return sum(process_cpu(proc.pid) for proc in self.procs)

    def peak_rss_mb(self) -> list[float]:
        return [peak_rss_mb(proc.pid) for proc in self.procs]

    def stop(self) -> list[int]:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        codes = []
        for proc in self.procs:
            try:
                codes.append(proc.wait(STOP_TIMEOUT))
            except subprocess.TimeoutExpired:
                proc.kill()
                codes.append(proc.wait())
        return codes


class WorkersBench:
    def __init__(self, args: argparse.Namespace, work: Path, feeds: FeedSet, config: Path, env: dict, url: str,
                 data_dir: Path, mastodon_url: str) -> None:
        self.args = args
        self.url = url
        self.mastodon_url = mastodon_url
        self.work = work
        self.feeds = feeds
        self.config = config
        self.env = env
        self.postmaster = postmaster_pid(data_dir)
        self.db = psycopg.connect(url, autocommit=True)
        self.probe_backend = self.db.execute("SELECT pg_backend_pid()").fetchone()[0]
        self.own_transactions = 1
        self.names = [name for name, _ in feeds.feeds()]
        self.results: dict = {"rounds": []}

    def query(self, sql: str, params=()) -> list[tuple]:
        self.own_transactions += 1  # each statement on this autocommit connection is a transaction of its own
        return self.db.execute(sql, params).fetchall()

    def commits_and_flushes(self, settle: float = 1.5) -> tuple[int, int]:
        """Transactions committed in the database (without the benchmark's own) and WAL flushes to disk so far.
        A backend publishes its counters at a commit at most once a second, and when idle within 10 s
        (PostgreSQL 15's PGSTAT_MIN_INTERVAL and PGSTAT_IDLE_INTERVAL): read after `settle` seconds -- after a
        round, longer than the idle interval, or a short round's commits are still unpublished."""
        time.sleep(settle)
        self.db.execute("SELECT pg_stat_clear_snapshot()")
        commits, syncs = self.db.execute(
            "SELECT xact_commit, (SELECT wal_sync FROM pg_stat_wal) FROM pg_stat_database WHERE datname = current_database()"
        ).fetchone()
        self.own_transactions += 2
        return commits - self.own_transactions, syncs

    def pg_cpu(self) -> float:
        return cluster_cpu(self.postmaster, excluding=(self.probe_backend,))

    def check(self, condition: bool, message: str) -> None:
        if not condition:
            raise SystemExit(f"bench: FAILED: {message} (logs in {self.work})")

    # --- one round: make feeds due, wait until each has been polled once --------------------------------------

    def make_due(self, names: list[str] | None) -> float:
        """`names` (every feed when None) due now, the others a day ahead; returns when the statement committed."""
        now = time.time()
        self.own_transactions += 1
        if names is None:
            self.db.execute("UPDATE feeds SET next_poll_at = %s", [now])
        else:
            self.db.execute("UPDATE feeds SET next_poll_at = CASE WHEN name = ANY(%s) THEN %s ELSE %s END",
                            [names, now, now + DAY])
        return time.time()

    def polled_since(self, since: float, names: list[str] | None) -> tuple[int, float | None, float | None]:
        """How many of the feeds have been polled since `since`, the first and the last of those polls."""
        where, params = ("last_checked_at >= %s", [since]) if names is None else \
            ("last_checked_at >= %s AND name = ANY(%s)", [since, names])
        return self.query(f"SELECT COUNT(*), MIN(last_checked_at), MAX(last_checked_at) FROM feeds WHERE {where}", params)[0]

    def wait_polled(self, workers: Workers | None, since: float, names: list[str] | None, expected: int, what: str):
        deadline = time.monotonic() + self.args.pg_round_timeout
        while True:
            time.sleep(PROBE_SECONDS)
            if workers is not None:
                workers.check_alive()
            try:
                count, first, last = self.polled_since(since, names)
            except psycopg.errors.UndefinedTable:  # the first worker is still making the schema
                count, first, last = 0, None, None
            if count >= expected:
                return first, last
            self.check(time.monotonic() < deadline, f"{what}: {count} of {expected} feeds polled within "
                                                    f"{self.args.pg_round_timeout:.0f} s")

    def measured_round(self, workers: Workers, case: str, names: list[str] | None, run: int) -> dict:
        expected = len(names) if names is not None else len(self.names)
        entries_before = self.query("SELECT COUNT(*) FROM entries")[0][0]
        commits_before, flushes_before = self.commits_and_flushes()
        bridge_before, pg_before = workers.cpu(), self.pg_cpu()
        started = time.time()
        committed = self.make_due(names)
        first, last = self.wait_polled(workers, started, names, expected, f"{case} round with {len(workers.procs)} worker(s)")
        bridge_cpu, pg_cpu = workers.cpu() - bridge_before, self.pg_cpu() - pg_before
        # The workers look for due feeds every CLAIM_MAX_SECONDS or so: the wall time counts that wait, the rates
        # are over the span from the first poll to the last.
        seconds, busy = last - committed, max(last - first, 1e-6)
        entries = self.query("SELECT COUNT(*) FROM entries")[0][0] - entries_before
        row = {
            "case": case, "workers": len(workers.procs), "run": run, "feeds": expected, "seconds": seconds,
            "first_poll_after_seconds": first - committed, "busy_seconds": busy,
            "feeds_per_second": expected / busy, "entries_recorded": entries, "entries_per_second": entries / busy,
            "bridge_cpu_seconds": bridge_cpu, "postgres_cpu_seconds": pg_cpu,
            "bridge_cpu_ms_per_feed": 1000 * bridge_cpu / expected, "postgres_cpu_ms_per_feed": 1000 * pg_cpu / expected,
            "cpu_ms_per_feed": 1000 * (bridge_cpu + pg_cpu) / expected,
        }
        commits, flushes = self.commits_and_flushes(settle=STATS_IDLE_FLUSH_SECONDS)
        row |= {
            "commits_per_feed": (commits - commits_before) / expected, "wal_flushes_per_feed": (flushes - flushes_before) / expected,
            "load_average": os.getloadavg()[0],  # the machine may be doing other work: its 1-minute load, at the end
            # The workers' connections (max_connections must hold every worker's, and the CLI's, and an admin's).
            "connections": self.query("SELECT COUNT(*) FROM pg_stat_activity WHERE backend_type = 'client backend' "
                                      "AND pid != pg_backend_pid()")[0][0],
        }
        if case == "steady":
            outcomes = dict(self.query("SELECT last_outcome, COUNT(*) FROM feeds GROUP BY 1"))
            self.check(outcomes.get("not-modified", 0) == expected and entries == 0,
                       f"steady round: not every feed answered 304 ({outcomes}), or {entries} entries recorded")
        else:
            self.check(entries == expected, f"changed round: expected {expected} new entries, recorded {entries}")
        print(f"    {case:7} {len(workers.procs)} worker(s): {seconds:6.1f} s, {row['feeds_per_second']:7.0f} feeds/s, "
              f"CPU bridge {bridge_cpu:6.1f} s + PostgreSQL {pg_cpu:5.1f} s = {row['cpu_ms_per_feed']:.2f} ms/feed", flush=True)
        return row

    # --- the cases ----------------------------------------------------------------------------------------------

    def prepare(self) -> None:
        """The state the rounds start from, every feed polled once: the schema by bridge's migrations; the feeds
        that only take part in the steady cycle written as an unchanged poll leaves them (the validators nginx
        answers 304 to); the changed set polled cold by one `bridge poll` (group commits), recording the 20
        entries of each. Polling 100,000 feeds cold on this machine would take hours and is not a case here."""
        from bridge.state import State

        State.open_postgres(self.url).close()
        changed = self.args.pg_changed
        now = time.time()
        started = time.perf_counter()
        with self.db.cursor().copy("COPY feeds (name, configured_url, url, etag, last_modified, title, baseline_done, "
                                   "last_checked_at, last_success_at, last_status, last_outcome, next_poll_at, "
                                   "entry_count) FROM STDIN") as copy:
            for index, (name, url) in enumerate(self.feeds.feeds()[changed:], start=changed):
                etag, last_modified = nginx_validators(self.feeds.path(index))
                copy.write_row((name, url, url, etag, last_modified, f"Synthetic blog {index}", 1, now, now, 200, "new",
                                now + DAY, synthetic.ENTRIES))
        seeded = time.perf_counter() - started
        cold_config = self.work / "cold.toml"
        write_config(cold_config, None, self.feeds.feeds()[:changed], self.mastodon_url, database_env=DATABASE_ENV)
        run = run_bridge([self.args.bridge, "--config", str(cold_config), "poll"], env=self.env,
                         log_path=self.work / "cold.log")
        entries = self.query("SELECT COUNT(*) FROM entries")[0][0]
        queued = self.query("SELECT COUNT(*) FROM deliveries")[0][0]
        self.check(entries == changed * synthetic.ENTRIES and queued == 0,
                   f"cold poll of the changed set: {entries} entries recorded, {queued} posts queued")
        self.results["cold"] = {"feeds": changed, "seconds": run.seconds, "peak_rss_mb": run.peak_rss_mb, "entries": entries,
                                "seeded_feeds": len(self.names) - changed, "seed_seconds": seeded}
        print(f"  {len(self.names) - changed:,} steady-only feeds written as polled ({seeded:.1f} s); the {changed:,} "
              f"changed-set feeds polled cold by bridge poll: {run.seconds:.1f} s, {entries:,} entries", flush=True)

    def group(self, count: int, run: int) -> None:
        """N workers: a steady round, then a changed round; their peak RSS."""
        workers = Workers(self.args.bridge, self.config, self.env, self.work, f"run{run}-n{count}")
        try:
            workers.spawn(count).wait_started()
            rounds = [self.measured_round(workers, "steady", None, run)]
            self.db.execute("UPDATE feeds SET next_poll_at = %s", [time.time() + DAY])  # none polled before it is due
            self.feeds.change(range(self.args.pg_changed))
            rounds.append(self.measured_round(workers, "changed", self.names[: self.args.pg_changed], run))
            rss = workers.peak_rss_mb()
        finally:
            codes = workers.stop()
        self.check(codes == [0] * count, f"{count} workers did not exit cleanly on SIGTERM: {codes}")
        for row in rounds:
            row["peak_rss_mb_per_worker"] = max(rss)
            self.results["rounds"].append(row)

    def run(self) -> dict:
        args = self.args
        print(f"PostgreSQL: {len(self.names):,} feeds, {args.pg_changed:,} changed per changed round, workers "
              f"{args.pg_workers}, {args.runs} run(s)", flush=True)
        self.prepare()
        for run in range(args.runs):
            order = args.pg_workers if run % 2 == 0 else args.pg_workers[::-1]
            for count in order:
                self.group(count, run)
                self.checkpoint()
        self.results["medians"] = medians(self.results["rounds"])
        return self.results

    def checkpoint(self) -> None:
        """The rounds so far, with their medians, beside the JSON file (NAME.partial.json): a full-size run takes
        hours here, and one stopped early still leaves what it measured."""
        partial = self.args.json.with_name(self.args.json.stem + ".partial.json")
        partial.parent.mkdir(parents=True, exist_ok=True)
        partial.write_text(json.dumps({**self.results, "medians": medians(self.results["rounds"])}, indent=2) + "\n")


MEDIAN_FIELDS = ("seconds", "busy_seconds", "first_poll_after_seconds", "feeds_per_second", "entries_per_second",
                 "bridge_cpu_seconds", "postgres_cpu_seconds", "bridge_cpu_ms_per_feed", "postgres_cpu_ms_per_feed",
                 "cpu_ms_per_feed", "commits_per_feed", "wal_flushes_per_feed")


def medians(rounds: list[dict]) -> dict:
    """Per case and worker count: the median of each figure over the runs (each figure on its own), the largest
    peak RSS of any worker, and the runs' wall times."""
    out: dict = {}
    for case in ("steady", "changed"):
        for count in sorted({row["workers"] for row in rounds}):
            rows = [row for row in rounds if row["case"] == case and row["workers"] == count]
            if rows:
                figures = {field: median([row[field] for row in rows]) for field in MEDIAN_FIELDS if field in rows[0]}
                figures.update(feeds=rows[0]["feeds"], runs=[round(row["seconds"], 2) for row in rows],
                               peak_rss_mb_per_worker=max(row["peak_rss_mb_per_worker"] for row in rows))
                out.setdefault(case, {})[str(count)] = figures
    return out


def table(results: dict) -> str:
    """The Markdown table docs/benchmarks.md shows for the PostgreSQL run."""
    lines = ["| case | workers | wall (median) | feeds/s | bridge CPU | PostgreSQL CPU | CPU per feed | vs 1 worker | peak RSS per worker |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for case, label in (("steady", "steady cycle, {feeds:,} feeds (304)"), ("changed", "changed, {feeds:,} feeds, 1 new entry each")):
        by_count = results["medians"].get(case, {})
        base = by_count.get(min(by_count, key=int)) if by_count else None
        for count, row in sorted(by_count.items(), key=lambda item: int(item[0])):
            lines.append(
                f"| {label.format(feeds=row['feeds'])} | {count} | {row['seconds']:.1f} s | {row['feeds_per_second']:,.0f} "
                f"| {row['bridge_cpu_seconds']:.1f} s | {row['postgres_cpu_seconds']:.1f} s "
                f"| {row['cpu_ms_per_feed']:.2f} ms ({row['bridge_cpu_ms_per_feed']:.2f} + {row['postgres_cpu_ms_per_feed']:.2f}) "
                f"| {row['cpu_ms_per_feed'] / base['cpu_ms_per_feed']:.2f}x | {row['peak_rss_mb_per_worker']:.0f} MB |")
    return "\n".join(lines)


def run_postgres(args: argparse.Namespace, mastodon_url: str, token: str, nginx_binary: str) -> dict:
    """The PostgreSQL cases, end to end; returns the results (also written to args.json)."""
    from bench.pgcluster import BenchPostgres  # the test suite's cluster: not needed to print a recorded table

    work = Path(tempfile.mkdtemp(prefix="bridge-bench-pg-"))
    os.chmod(work, 0o755)  # the cluster runs as the postgres user when the benchmark runs as root
    started = time.perf_counter()
    try:
        docroot = work / "www"
        docroot.mkdir()
        with Nginx(nginx_binary, docroot, work / "nginx", args.hosts) as nginx, BenchPostgres() as cluster:
            feeds = FeedSet(docroot, nginx, args.pg_feeds, corpus=False)
            write_documents(feeds, args.pg_changed)
            config = work / "workers.toml"
            # The claim job looks for due feeds every quarter interval, 15 s at most: the smoke check's short
            # interval keeps its rounds short (the full run keeps the default, 15 min).
            write_config(config, None, feeds.feeds(), mastodon_url, database_env=DATABASE_ENV,
                         interval="8s" if args.quick else "15m")
            url = cluster.database()
            env = {**os.environ, "BENCH_MASTODON_TOKEN": token, DATABASE_ENV: url}
            bench = WorkersBench(args, work, feeds, config, env, url, cluster.data_dir, mastodon_url)
            try:
                results = bench.run()
                results["postgres"] = {name: bench.query(f"SHOW {name}")[0][0] for name in POSTGRES_SETTINGS}
                sizes = {"database": "SELECT pg_database_size(current_database())"}
                sizes |= {table: f"SELECT pg_total_relation_size('{table}')" for table in ("feeds", "entries", "aliases", "deliveries")}
                results["postgres"]["sizes_mb"] = {name: float(bench.query(sql)[0][0]) / 2**20 for name, sql in sizes.items()}
            finally:
                bench.db.close()
    finally:
        if args.keep:
            print(f"work folder kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    write_results(results, args, started, table)
    return results
