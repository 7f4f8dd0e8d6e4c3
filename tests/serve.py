"""`sie-tools serve` as a real process on a loopback port, for the tests that need the real server."""

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

SIE = str(Path(sys.executable).with_name("sie-tools"))


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


def wait_until_ok(url: str, proc: subprocess.Popen, deadline: float, what: str, log: Path | None = None,
                  headers: dict[str, str] | None = None, poll_s: float = 0.2) -> None:
    """Poll `url` until it answers 200; a RuntimeError naming `what` (with `log`'s text) if `proc` exits first
    or the monotonic `deadline` passes."""
    while True:
        try:
            if httpx.get(url, timeout=1, headers=headers).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"{what}" + (f":\n{log.read_text()}" if log is not None else ""))
        time.sleep(poll_s)


@contextmanager
def serve(catalog: Path | None, log_dir: Path, *args: str, env: dict[str, str] | None = None,
          host: str = "127.0.0.1", port: int | None = None, inherit_sie_env: bool = True, cwd: Path | None = None,
          ready_headers: dict[str, str] | None = None, timeout_s: float = 240, graceful: bool = False
          ) -> Iterator[Server]:
    """Start `sie-tools serve --transport http`, wait for /readyz, yield it, stop it by PID.

    `catalog`: the test catalog (with its tiny NER model as the default), or None for the bundled one.
    `inherit_sie_env`: False drops every SIE_* variable of the test run (the server's own defaults).
    `graceful`: SIGTERM first (the drain path), SIGKILL after 30 s; otherwise SIGKILL at once."""
    port = port or free_port()
    log = log_dir / f"server-{port}.log"
    base = os.environ if inherit_sie_env else {k: v for k, v in os.environ.items() if not k.startswith("SIE_")}
    full_env = {**base, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    if catalog is not None:
        full_env.update(SIE_CATALOG=str(catalog), SIE_DEFAULT_NER_MODEL="tiny-ner")
    full_env.update(env or {})
    with open(log, "w") as out:
        proc = subprocess.Popen([SIE, "serve", "--transport", "http", "--host", host, "--port", str(port), *args],
                                stdout=out, stderr=subprocess.STDOUT, env=full_env, cwd=cwd)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_ok(f"{url}/readyz", proc, time.monotonic() + timeout_s, "server did not become ready", log,
                      ready_headers)
        yield Server(url, proc, log, port)
    finally:
        if proc.poll() is None:
            if graceful:
                proc.terminate()
                try:
                    proc.wait(30)
                except subprocess.TimeoutExpired:
                    proc.kill()
            else:
                proc.kill()
        proc.wait(10)
