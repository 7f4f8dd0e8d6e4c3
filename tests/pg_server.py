"""A throwaway PostgreSQL server for tests: Debian's `postgresql` binaries (scripts/install_postgres.sh), a
cluster initialised in a temp dir, listening on a free loopback port, stopped by its PID.

initdb and postgres refuse to run as root: as root, the cluster belongs to `nobody` and the server runs as it.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path


def pg_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/postgres"))
    return Path(found[-1]).parent if found else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PostgresServer:
    def __init__(self) -> None:
        bindir = pg_bin()
        if bindir is None:
            raise RuntimeError("no PostgreSQL server binaries: run scripts/install_postgres.sh")
        self.dir = Path(tempfile.mkdtemp(prefix="sie-pg-"))
        self.port = _free_port()
        user = None
        if os.geteuid() == 0:
            user = pwd.getpwnam("nobody").pw_uid
            os.chmod(self.dir, 0o777)
        data = self.dir / "data"
        subprocess.run([str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres", "--no-sync",
                        "-E", "UTF8", "--locale", "C"], check=True, capture_output=True, user=user)
        self.proc = subprocess.Popen(
            [str(bindir / "postgres"), "-D", str(data), "-p", str(self.port), "-k", str(self.dir),
             "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "max_connections=100"],
            stdout=subprocess.DEVNULL, stderr=open(self.dir / "log", "wb"), user=user)  # noqa: SIM115
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        deadline = time.time() + 30
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    pass
                import psycopg

                psycopg.connect(self.url).close()
                break
            except Exception:  # noqa: BLE001 - starting
                if self.proc.poll() is not None or time.time() > deadline:
                    log = (self.dir / "log").read_text(errors="replace")[-2000:]
                    self.stop()
                    raise RuntimeError(f"PostgreSQL did not start: {log}") from None
                time.sleep(0.2)

    def database(self, name: str) -> str:
        """A fresh database on the server (one per test keeps tests apart); its URL."""
        import psycopg

        with psycopg.connect(self.url, autocommit=True) as c:
            c.execute(f'CREATE DATABASE "{name}"')
        return f"postgresql://postgres@127.0.0.1:{self.port}/{name}"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)  # fast shutdown, by PID
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)
