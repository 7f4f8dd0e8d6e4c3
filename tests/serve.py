"""`sie-mcp serve` as a real process on a loopback port, for the tests that need the real server."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

SIE = str(Path(sys.executable).with_name("sie-mcp"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Server:
    url: str
    proc: subprocess.Popen
    log: Path
    port: int

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    def metric(self, line_prefix: str, headers: dict[str, str] | None = None) -> float:
        """The value of the first /metrics sample starting with `line_prefix` (0 when absent)."""
        for line in httpx.get(f"{self.url}/metrics", headers=headers, timeout=5).text.splitlines():
            if line.startswith(line_prefix):
                return float(line.rsplit(" ", 1)[1])
        return 0.0


@contextmanager
def serve(catalog: Path, log_dir: Path, *args: str, env: dict[str, str] | None = None, host: str = "127.0.0.1",
          ready_headers: dict[str, str] | None = None, timeout_s: float = 240) -> Iterator[Server]:
    """Start the server, wait for /readyz, yield it, kill it by PID."""
    port = free_port()
    log = log_dir / f"server-{port}.log"
    full_env = {**os.environ, "SIE_CATALOG": str(catalog), "SIE_DEFAULT_NER_MODEL": "tiny-ner", **(env or {})}
    with open(log, "w") as out:
        proc = subprocess.Popen([SIE, "serve", "--transport", "http", "--host", host, "--port", str(port), *args],
                                stdout=out, stderr=subprocess.STDOUT, env=full_env)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout_s
    try:
        while True:
            try:
                if httpx.get(f"{url}/readyz", timeout=1, headers=ready_headers).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"server did not become ready:\n{log.read_text()}")
            time.sleep(0.2)
        yield Server(url, proc, log, port)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
