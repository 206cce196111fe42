"""The benchmark's PostgreSQL: the state tests' throwaway cluster (tests/postgres_fixture.py: Debian's server, initdb
in a temporary directory, a free loopback port), but durable -- PostgreSQL's defaults for fsync,
synchronous_commit and full_page_writes, which the tests turn off -- so that every commit waits for the disk as
it does in production. On this machine's disk that is about 3 ms (pg_test_fsync: ~310 fdatasync/s).
"""

from __future__ import annotations

from pathlib import Path

from tests.postgres_fixture import USER, PostgresServer


class BenchPostgres(PostgresServer):
    def _start_postgres(self, user: str, *, durable: bool = True) -> None:
        super()._start_postgres(user, durable=durable)

    @property
    def data_dir(self) -> Path:
        return self.run_dir / "pg" / "data"

    def database(self) -> str:
        """The URL (with password) of a new, empty database: the workers' migrations make the schema."""
        return self.new_database(empty=True)

    def __enter__(self) -> "BenchPostgres":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


__all__ = ["BenchPostgres", "USER"]
