"""`sie-tools router --discover [POOL=]NAMESPACE/SERVICE`: a Service's ready endpoints, from its EndpointSlices
(the `kubernetes` client: list, then watch), written into the pool's `server-template` slots through HAProxy's
runtime API (`set server … addr … port …`, `set server … state ready|maint`): no reload, no DNS TTL.

Why the client and not DNS (the chart's default): a pod turns ready in the EndpointSlice the moment its
readiness probe passes, and leaves it as soon as it starts terminating; DNS holds both back by its TTL and the
resolver's hold times. And a pod keeps its slot for as long as it lives (slots are assigned here, by
address, never reshuffled), so the consistent-hash ring, which places a slot, not an address, only changes
where a pod came or went.

Tested against a small fake API server on loopback that speaks just the EndpointSlice list and watch this
module uses (tests/test_router.py); no real API server runs in the test suite.
"""

from __future__ import annotations

import logging
import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import argparse

    from sie_mcp.router import Pool, RouterConfig

log = logging.getLogger("sie_mcp.router")
WATCH_TIMEOUT_S = 60  # the API server ends a watch after this; we list again and resume


def runtime_api(socket_path: str, command: str, timeout_s: float = 5.0) -> str:
    """One command on HAProxy's runtime API (its stats socket, level admin); the answer's text."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout_s)
        s.connect(socket_path)
        s.sendall(command.encode() + b"\n")
        chunks = []
        while chunk := s.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks).decode(errors="replace")


def ready_endpoints(slices: dict[str, Any]) -> set[tuple[str, int]]:
    """(address, port) of every ready endpoint in a Service's EndpointSlices (the port named http, else the
    first). A terminating pod is not ready: it leaves at once and finishes its calls (the server's drain)."""
    out: set[tuple[str, int]] = set()
    for s in slices.values():
        ports = getattr(s, "ports", None) or []
        port = next((p.port for p in ports if p.name == "http"), ports[0].port if ports else None)
        if port is None:
            continue
        for e in getattr(s, "endpoints", None) or []:
            conditions = e.conditions
            if conditions is not None and conditions.ready is False:
                continue
            if conditions is not None and conditions.terminating:
                continue
            out.update((a, int(port)) for a in e.addresses or [])
    return out


@dataclass
class SlotTable:
    """Which slot of a pool's server-template holds which endpoint. A slot keeps its endpoint while it lives."""

    backend: str
    slots: int
    held: dict[tuple[str, int], int] = field(default_factory=dict)

    def plan(self, wanted: set[tuple[str, int]]) -> list[str]:
        """Runtime API commands that make the slots hold `wanted` (endpoints beyond the slots are left out,
        with a warning)."""
        commands = []
        for endpoint in [e for e in self.held if e not in wanted]:
            slot = self.held.pop(endpoint)
            commands.append(f"set server {self.backend}/r{slot} state maint")
        free = [i for i in range(1, self.slots + 1) if i not in self.held.values()]
        for endpoint in sorted(e for e in wanted if e not in self.held):
            if not free:
                log.warning("%s: %d slots are full; %s:%d gets no traffic (raise --slots)", self.backend,
                            self.slots, *endpoint)
                continue
            slot = free.pop(0)
            self.held[endpoint] = slot
            addr, port = endpoint
            commands += [f"set server {self.backend}/r{slot} addr {addr} port {port}",
                         f"set server {self.backend}/r{slot} state ready"]
        return commands


class Discovery:
    """One watch thread per discovered pool; `stop()` ends them (and they end with the process)."""

    def __init__(self, socket_path: str, kubeconfig: str | None) -> None:
        self.socket_path = socket_path
        self.kubeconfig = kubeconfig
        self.stopping = threading.Event()
        self.threads: list[threading.Thread] = []

    def api(self):  # noqa: ANN201
        import kubernetes

        if self.kubeconfig:
            kubernetes.config.load_kube_config(config_file=self.kubeconfig)
        else:
            try:
                kubernetes.config.load_incluster_config()
            except kubernetes.config.ConfigException:
                kubernetes.config.load_kube_config()
        return kubernetes.client.DiscoveryV1Api()

    def apply(self, table: SlotTable, slices: dict[str, Any]) -> None:
        for command in table.plan(ready_endpoints(slices)):
            answer = runtime_api(self.socket_path, command).strip()
            if answer and not answer.startswith("IP changed") and "no need to change" not in answer:
                log.warning("haproxy: %s -> %s", command, answer)
            else:
                log.info("haproxy: %s", command)

    def watch(self, pool: Pool, namespace: str, service: str) -> None:
        import kubernetes

        table = SlotTable(pool.backend, pool.slots)
        selector = f"kubernetes.io/service-name={service}"
        api = None
        while not self.stopping.is_set():
            try:
                api = api or self.api()
                listed: Any = api.list_namespaced_endpoint_slice(namespace, label_selector=selector)
                slices: dict[str, Any] = {s.metadata.name: s for s in listed.items}
                self.apply(table, slices)
                stream = kubernetes.watch.Watch().stream(
                    api.list_namespaced_endpoint_slice, namespace, label_selector=selector,
                    resource_version=listed.metadata.resource_version, timeout_seconds=WATCH_TIMEOUT_S)
                for raw in stream:
                    event: dict[str, Any] = raw  # type: ignore[assignment]  # the client's watch events are dicts
                    if self.stopping.is_set():
                        return
                    obj = event["object"]
                    if event["type"] == "DELETED":
                        slices.pop(obj.metadata.name, None)
                    elif event["type"] in ("ADDED", "MODIFIED"):
                        slices[obj.metadata.name] = obj
                    else:  # ERROR (e.g. 410 Gone: our resourceVersion is too old): list again
                        break
                    self.apply(table, slices)
            except Exception as e:  # noqa: BLE001 - the API server or the socket went away: retry, keep serving
                log.warning("discovery of %s/%s: %s; retrying in 1 s", namespace, service, e)
                self.stopping.wait(1.0)

    def start(self, targets: list[tuple[Pool, str, str]]) -> Discovery:
        for pool, namespace, service in targets:
            t = threading.Thread(target=self.watch, args=(pool, namespace, service), daemon=True,
                                 name=f"discover-{pool.name}")
            t.start()
            self.threads.append(t)
        return self

    def stop(self) -> None:
        self.stopping.set()


def wait_for_socket(path: str, proc: subprocess.Popen, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            runtime_api(path, "show info", timeout_s=1)
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"haproxy's runtime API did not answer at {path}")


def start_discovery(args: argparse.Namespace, cfg: RouterConfig, proc: subprocess.Popen) -> Discovery:
    assert cfg.admin_socket
    first = cfg.pools[0].name
    targets = []
    for spec in args.discover:
        name, sep, target = spec.rpartition("=")
        namespace, service = target.split("/")
        pool = next(p for p in cfg.pools if p.name == (name if sep else first))
        targets.append((pool, namespace, service))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    wait_for_socket(cfg.admin_socket, proc)
    return Discovery(cfg.admin_socket, args.kubeconfig).start(targets)
