"""A throwaway PostgreSQL server for tests: initdb in a temporary directory, a free port on
127.0.0.1, trust authentication, stopped and deleted afterwards.

PostgreSQL refuses to run as root, so as root it runs as the `postgres` system user (made by
Debian's package) or `nobody`. Without the binaries the caller skips locally and fails in CI
(`.ci/run` installs them).
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


class PostgresUnavailable(Exception):
    """No PostgreSQL binaries, or the server would not start."""


def find_bin_dir() -> Path | None:
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    if candidates:
        return Path(candidates[-1]).parent
    found = shutil.which("initdb")
    return Path(found).parent if found else None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _run_as(user: str | None, argv: list[str], **kwargs) -> subprocess.CompletedProcess:
    command = ["runuser", "-u", user, "--", *argv] if user else argv
    return subprocess.run(command, capture_output=True, text=True, **kwargs)


class PostgresServer:
    """A running throwaway server that can be stopped and started again on the same port and
    data directory, as an administrator restarting it would."""

    def __init__(self, bin_dir: Path, user: str | None, base: Path, port: int, max_connections: int):
        self.bin_dir, self.user, self.base, self.port = bin_dir, user, base, port
        self.data = base / "data"
        self.options = (
            f"-p {port} -k {base} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections={max_connections}"
        )
        self.url = f"postgresql://postgres@127.0.0.1:{port}/avbench"

    def start(self) -> None:
        pg_ctl = [str(self.bin_dir / "pg_ctl"), "-D", str(self.data), "-o", self.options, "-l", str(self.base / "log")]
        start = _run_as(self.user, [*pg_ctl, "-w", "-t", "60", "start"], timeout=90)
        if start.returncode:
            log = (self.base / "log").read_text(errors="replace") if (self.base / "log").exists() else ""
            raise PostgresUnavailable(f"pg_ctl start failed: {start.stderr.strip()[-300:]} {log[-500:]}")

    def stop(self) -> None:
        """A fast shutdown: the server ends every session ("terminating connection due to
        administrator command") and stops."""
        _run_as(self.user, [str(self.bin_dir / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop"], timeout=60)


@contextmanager
def postgres_server(*, max_connections: int = 50) -> Iterator[str]:
    """Yields a SQLAlchemy URL of a fresh, empty database."""
    with postgres_instance(max_connections=max_connections) as server:
        yield server.url


@contextmanager
def postgres_instance(*, max_connections: int = 50) -> Iterator[PostgresServer]:
    """A fresh server with an empty database `avbench`, deleted afterwards."""
    bin_dir = find_bin_dir()
    if bin_dir is None:
        raise PostgresUnavailable("no PostgreSQL binaries (initdb) found; apt-get install postgresql")
    user = None
    if os.geteuid() == 0:
        for name in ("postgres", "nobody"):
            try:
                user_entry = pwd.getpwnam(name)
                user = name
                break
            except KeyError:
                continue
        if user is None:
            raise PostgresUnavailable("running as root and no 'postgres' or 'nobody' user to run the server as")
    base = Path(tempfile.mkdtemp(prefix="avbench-pg-"))
    if user:
        os.chown(base, user_entry.pw_uid, user_entry.pw_gid)
    server = PostgresServer(bin_dir, user, base, free_port(), max_connections)
    try:
        init = _run_as(
            user,
            [
                str(bin_dir / "initdb"),
                "-D",
                str(server.data),
                "-U",
                "postgres",
                "--auth=trust",
                "--no-sync",
                "-E",
                "UTF8",
            ],
            timeout=120,
        )
        if init.returncode:
            raise PostgresUnavailable(f"initdb failed: {init.stderr.strip()[-500:]}")
        server.start()
        try:
            created = _run_as(
                user,
                [str(bin_dir / "createdb"), "-h", "127.0.0.1", "-p", str(server.port), "-U", "postgres", "avbench"],
                timeout=60,
            )
            if created.returncode:
                raise PostgresUnavailable(f"createdb failed: {created.stderr.strip()}")
            yield server
        finally:
            server.stop()
            time.sleep(0.1)
    finally:
        shutil.rmtree(base, ignore_errors=True)
