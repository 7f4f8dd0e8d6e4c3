"""`sie-tools router` (`sie-tools router` after issue 25's rename): a stock HAProxy in front of sie-mcp replicas
that sends each model to as few replicas as its traffic needs (docs/deploy.md, "Pools and the router").

The key is the model the call names, read from the request itself:
- REST tool routes (/v1/tools/NAME), OpenAI /v1/embeddings and Cohere /v1/rerank: the JSON body's `model`;
- MCP on /mcp: a `tools/call`'s `params.arguments.model`;
- neither (or a body larger than the buffer): the `X-SIE-Model` header if a client set it, else the default model.

A map file sends the model to its pool (unlisted models: the first pool); within the pool `balance hash` on the
key with `hash-type consistent` and `hash-balance-factor` (bounded load): a model stays on one replica until
its in-flight calls pass the factor times the pool's average, then it spills onto the next replica of the ring.

`render_haproxy` is the one description of that configuration in Python. The chart renders the same text from
charts/sie-mcp/templates/_router.tpl (Go templates cannot run this code); tests/test_chart.py renders both
for the same inputs and requires them to be identical, so they cannot drift apart.

Servers come from one of three places, per pool:
- fixed `HOST:PORT` backends (`--backend`);
- a headless Service's DNS name (`server-template` + `resolvers`: the chart);
- `--discover NAMESPACE/SERVICE`: EndpointSlices watched with the `kubernetes` client, written into
  `server-template` slots through HAProxy's runtime API without a reload (sie_mcp/router_discovery.py).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

# Calls that HAProxy may send again after a connection failure or an empty response: reads whose second run
# returns what the first would have. `search` reads a collection (its annotation says "not idempotent" only
# because another call may index in between; a repeated read is still a read). Writes (index_documents,
# delete_collection, build_ontology) are never retried at layer 7: a lost answer is not a lost call.
RETRYABLE_TOOLS = ("embed", "rerank", "classify", "extract_entities", "search")
RETRYABLE_PATHS = tuple(f"/v1/tools/{t}" for t in RETRYABLE_TOOLS) + ("/v1/embeddings", "/v1/rerank")
MODEL_HEADER = "x-sie-model"
_NAME = re.compile(r"[a-z0-9]([a-z0-9-]{0,40}[a-z0-9])?")
_MODEL = re.compile(r"[A-Za-z0-9._:/@+-]{1,200}")  # a map file key: no white space, no quotes


def _host_port(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"not HOST:PORT: {value!r}")
    return host.strip("[]"), int(port)


@dataclass(frozen=True)
class Pool:
    """Replicas with one catalog subset. `servers`: fixed HOST:PORT; `dns`: HOST:PORT of a headless Service
    (one server per address, `slots` of them at most); neither: `slots` empty slots that discovery fills."""

    name: str
    models: tuple[str, ...] = ()
    servers: tuple[str, ...] = ()
    dns: str | None = None
    slots: int = 0

    def __post_init__(self) -> None:
        if not _NAME.fullmatch(self.name):
            raise ValueError(f"pool name {self.name!r}: lower-case letters, digits and '-' (a DNS label)")
        for m in self.models:
            if not _MODEL.fullmatch(m):
                raise ValueError(f"pool {self.name}: model id {m!r} has characters a map file cannot hold")
        for s in self.servers:
            _host_port(s)
        if self.servers and (self.dns or self.slots):
            raise ValueError(f"pool {self.name}: fixed servers, or a DNS name with slots, or slots; not both")
        if not self.servers and self.slots < 1:
            raise ValueError(f"pool {self.name}: no servers (give backends, or slots for a DNS name or discovery)")

    @property
    def backend(self) -> str:
        return f"pool_{self.name}"


@dataclass(frozen=True)
class RouterConfig:
    """Everything the HAProxy configuration depends on. Timeouts and the body limit are the server's own
    settings (sie_mcp/settings.py), so the router neither cuts a call the server would finish nor lets through
    a body the server would refuse."""

    listen: str
    metrics_listen: str
    pools: tuple[Pool, ...]
    map_path: str
    default_model: str = "all-MiniLM-L6-v2"
    max_body_bytes: int = 16 * 2**20
    request_timeout_s: float = 60.0
    read_timeout_s: float = 30.0
    balance_factor: int = 150
    check_interval_s: float = 2.0
    check_fall: int = 2
    check_rise: int = 2
    max_connections: int = 4096
    buffer_bytes: int = 2**20
    admin_socket: str | None = None
    log_target: str = "stderr"

    def __post_init__(self) -> None:
        _host_port(self.listen)
        _host_port(self.metrics_listen)
        if not self.pools:
            raise ValueError("no pools: give at least one backend")
        names = [p.name for p in self.pools]
        if len(set(names)) != len(names):
            raise ValueError(f"pool names repeat: {names}")
        seen: dict[str, str] = {}
        for p in self.pools:
            for m in p.models:
                if m in seen:
                    raise ValueError(f"model {m!r} is in pools {seen[m]} and {p.name}: a model lives in one pool")
                seen[m] = p.name
        if not _MODEL.fullmatch(self.default_model):
            raise ValueError(f"default model {self.default_model!r}: not a model id")
        if self.balance_factor < 101:
            raise ValueError("balance factor: more than 100 (percent of the pool's average load)")
        if self.buffer_bytes < 16384:
            raise ValueError("buffer bytes: at least 16384 (HAProxy's default)")


def _ms(seconds: float) -> str:
    return f"{round(seconds * 1000)}ms"


def render_map(cfg: RouterConfig) -> str:
    """The model -> pool map file: one `MODEL POOL` line per model; unlisted models go to the first pool."""
    lines = [f"{m} {p.name}" for p in cfg.pools for m in p.models]
    return "\n".join(lines) + ("\n" if lines else "")


def render_haproxy(cfg: RouterConfig) -> str:
    """The HAProxy configuration (HAProxy 2.6 or later: `balance hash` on an expression)."""
    server_timeout = _ms(cfg.request_timeout_s + 5)  # the server answers (or times out) within its request timeout
    retryable = " ".join(RETRYABLE_TOOLS)
    out = f"""\
# Rendered by sie-mcp (sie_mcp/router.py; the chart: templates/_router.tpl). Do not edit: re-render.
global
    maxconn {cfg.max_connections}
    # A request body is read into one buffer to find its model; larger bodies pass through, keyed by the
    # X-SIE-Model header or the default model.
    tune.bufsize {cfg.buffer_bytes}
    hard-stop-after {server_timeout}
    log {cfg.log_target} format raw local0
"""
    if cfg.admin_socket:
        out += f"    stats socket {cfg.admin_socket} mode 600 level admin\n"
    out += f"""\

defaults
    mode http
    log global
    option httplog
    option dontlog-normal
    option forwardfor
    timeout connect 5s
    timeout http-request {_ms(cfg.read_timeout_s)}
    timeout client {server_timeout}
    timeout server {server_timeout}
    timeout http-keep-alive 60s
    timeout check 3s
    # Layer-7 retries (a response never came) for idempotent calls only: the frontend disables them for others.
    # Connection failures are retried for every call (nothing reached the replica).
    retries 2
    retry-on conn-failure empty-response
    option redispatch 1

frontend sie
    bind {cfg.listen}
    option http-buffer-request
    http-request deny deny_status 413 if {{ req.hdr_val(content-length) gt {cfg.max_body_bytes} }}
    acl rest path_beg /v1/tools/
    acl compatible path /v1/embeddings /v1/rerank
    acl mcp path /mcp
    # The model key: the body's model (REST, OpenAI, Cohere), params.arguments.model (MCP tools/call).
    http-request set-var(txn.model) req.body,json_query('$.model') if METH_POST rest || METH_POST compatible
    http-request set-var(txn.tool) req.body,json_query('$.params.name') if METH_POST mcp
    http-request set-var(txn.model) req.body,json_query('$.params.arguments.model') if METH_POST mcp
    http-request set-var(txn.model) req.hdr({MODEL_HEADER}) if !{{ var(txn.model) -m found }} {{ req.hdr({MODEL_HEADER}) -m found }}
    http-request set-var(txn.model) str({cfg.default_model}) if !{{ var(txn.model) -m found }} || {{ var(txn.model) -m len 0 }}
    # Idempotent calls may be retried on another replica; the rest only after a connection failure.
    acl retryable path {" ".join(RETRYABLE_PATHS)}
    acl retryable var(txn.tool) -m str {retryable}
    acl retryable method GET HEAD
    http-request disable-l7-retry if !retryable
    use_backend pool_%[var(txn.model),map({cfg.map_path},{cfg.pools[0].name})]
    default_backend {cfg.pools[0].backend}
"""
    for pool in cfg.pools:
        # Health: /readyz every check interval; after a first failure (a pod that started draining turns 503 at
        # once) the next check comes after `fastinter`, so it leaves within about a second, not 2 x inter.
        out += f"""
backend {pool.backend}
    balance hash var(txn.model)
    hash-type consistent sdbm avalanche
    hash-balance-factor {cfg.balance_factor}
    option httpchk
    http-check send meth GET uri /readyz ver HTTP/1.1 hdr Host localhost
    http-check expect status 200
    default-server check inter {_ms(cfg.check_interval_s)} fastinter {_ms(min(cfg.check_interval_s, 0.5))} fall {cfg.check_fall} rise {cfg.check_rise} observe layer4 error-limit 1 on-error mark-down
"""
        if pool.servers:
            out += "".join(f"    server r{i} {s}\n" for i, s in enumerate(pool.servers, 1))
        elif pool.dns:
            out += (f"    server-template r 1-{pool.slots} {pool.dns} resolvers dns init-addr none "
                    "resolve-prefer ipv4\n")
        else:  # discovery fills the slots through the runtime API
            out += f"    server-template r 1-{pool.slots} 0.0.0.0:0 disabled\n"
    if any(p.dns for p in cfg.pools):
        out += """
resolvers dns
    parse-resolv-conf
    accepted_payload_size 8192
    hold valid 5s
    hold obsolete 5s
    timeout resolve 1s
    timeout retry 1s
"""
    out += f"""
frontend metrics
    bind {cfg.metrics_listen}
    option dontlog-normal
    http-request use-service prometheus-exporter if {{ path /metrics }}
    http-request return status 200 content-type text/plain string "ok\\n" if {{ path /healthz }}
    http-request deny deny_status 404
"""
    return out


# --- the command ------------------------------------------------------------------------------------


def find_haproxy(explicit: str | None = None) -> str:
    """The haproxy binary, or a ValueError that says how to install it."""
    path = explicit or shutil.which("haproxy") or next(
        (p for p in ("/usr/sbin/haproxy", "/usr/local/sbin/haproxy") if os.access(p, os.X_OK)), None)
    if not path or not os.access(path, os.X_OK):
        raise ValueError("haproxy is not installed (2.6 or later is needed): on Debian or Ubuntu, "
                         "`apt-get install haproxy`; elsewhere the official image haproxy:2.6 or your package "
                         "manager's haproxy; or pass --haproxy PATH")
    version = subprocess.run([path, "-v"], capture_output=True, text=True, timeout=10).stdout
    m = re.search(r"version (\d+)\.(\d+)", version)
    if not m or (int(m.group(1)), int(m.group(2))) < (2, 6):
        raise ValueError(f"{path}: HAProxy 2.6 or later is needed (`balance hash` on an expression); found "
                         f"{version.splitlines()[0] if version else 'an unknown version'}")
    return path


def pools_from_args(backends: list[str], pools: list[str], discover: list[str], slots: int) -> tuple[Pool, ...]:
    """--pool NAME=MODEL,… declares pools in order (the first takes unlisted models); --backend [POOL=]HOST:PORT
    and --discover [POOL=]NAMESPACE/SERVICE fill them (no pool named: the first, "default" if none declared)."""
    declared: dict[str, tuple[str, ...]] = {}
    for spec in pools:
        name, sep, models = spec.partition("=")
        if not sep:
            raise ValueError(f"--pool {spec!r}: NAME=MODEL,MODEL…")
        declared[name.strip()] = tuple(m.strip() for m in models.split(",") if m.strip())
    first = next(iter(declared), "default")
    servers: dict[str, list[str]] = {}
    for spec in backends:
        name, sep, addr = spec.rpartition("=")
        servers.setdefault(name.strip() if sep else first, []).append(addr.strip())
    watched: set[str] = set()
    for spec in discover:
        name, sep, target = spec.rpartition("=")
        if target.count("/") != 1:
            raise ValueError(f"--discover {spec!r}: [POOL=]NAMESPACE/SERVICE")
        watched.add(name.strip() if sep else first)
    for name in [*servers, *watched]:
        if name not in declared and (declared or name != "default"):
            raise ValueError(f"backend or discovery for pool {name!r}, which no --pool declares")
    names = list(declared) or ["default"]
    return tuple(Pool(n, declared.get(n, ()), tuple(servers.get(n, ())), slots=slots if n in watched else 0)
                 for n in names)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--listen", default="127.0.0.1:8080", help="address the router serves (HOST:PORT)")
    parser.add_argument("--backend", action="append", default=[], metavar="[POOL=]HOST:PORT",
                        help="a replica (repeatable); POOL= puts it in a declared pool (default: the first)")
    parser.add_argument("--pool", action="append", default=[], metavar="NAME=MODEL,…",
                        help="a pool and its models (repeatable); the first also takes models no pool lists")
    parser.add_argument("--discover", action="append", default=[], metavar="[POOL=]NAMESPACE/SERVICE",
                        help="fill a pool from a Service's EndpointSlices (kubernetes client; runtime API, no "
                             "reload)")
    parser.add_argument("--slots", type=int, default=16, help="server slots of a discovered pool (its most replicas)")
    parser.add_argument("--kubeconfig", default=None, help="kubeconfig for --discover (default: in-cluster "
                                                           "service account, else ~/.kube/config)")
    parser.add_argument("--default-model", default=None, help="the key of calls that name no model (default: "
                                                              "--default-embed-model)")
    parser.add_argument("--metrics-listen", default="127.0.0.1:8405",
                        help="HAProxy's Prometheus exporter at /metrics (and /healthz)")
    parser.add_argument("--balance-factor", type=int, default=150,
                        help="hash-balance-factor: a replica takes a new call of its models while its in-flight "
                             "calls stay under this percent of the pool average (bounded load)")
    parser.add_argument("--check-interval-s", type=float, default=2.0, help="health check (/readyz) interval")
    parser.add_argument("--buffer-bytes", type=int, default=2**20,
                        help="tune.bufsize: bodies up to this size are read for their model")
    parser.add_argument("--max-connections", type=int, default=4096, help="maxconn")
    parser.add_argument("--haproxy", default=None, help="the haproxy binary (default: haproxy on PATH)")
    parser.add_argument("--print-config", action="store_true", help="print the configuration and the map, and exit")


def config_from_args(args: argparse.Namespace, settings, workdir: Path) -> RouterConfig:  # noqa: ANN001
    pools = pools_from_args(args.backend, args.pool, args.discover, args.slots)
    return RouterConfig(
        listen=args.listen, metrics_listen=args.metrics_listen, pools=pools, map_path=str(workdir / "models.map"),
        default_model=args.default_model or settings.default_embed_model, max_body_bytes=settings.max_body_bytes,
        request_timeout_s=settings.request_timeout_s, read_timeout_s=settings.read_timeout_s,
        balance_factor=args.balance_factor, check_interval_s=args.check_interval_s, buffer_bytes=args.buffer_bytes,
        max_connections=args.max_connections, admin_socket=str(workdir / "admin.sock") if args.discover else None)


def run(args: argparse.Namespace, settings) -> int:  # noqa: ANN001
    """Write the configuration to a temporary directory and run haproxy as a supervised child: SIGTERM and
    SIGINT become HAProxy's soft stop (SIGUSR1: in-flight calls finish), its exit status is ours."""
    with tempfile.TemporaryDirectory(prefix="sie-router-") as tmp:
        workdir = Path(tmp)
        cfg = config_from_args(args, settings, workdir)
        text = render_haproxy(cfg)
        if args.print_config:
            print(text + "\n# models.map\n" + render_map(cfg), end="")
            return 0
        haproxy = find_haproxy(args.haproxy)
        if args.discover:
            try:
                import kubernetes  # noqa: F401
            except ImportError as e:
                raise ValueError("--discover needs the kubernetes client: pip install 'sie-agent-tools[router]'") from e
        (workdir / "haproxy.cfg").write_text(text)
        (workdir / "models.map").write_text(render_map(cfg))
        check = subprocess.run([haproxy, "-c", "-q", "-f", str(workdir / "haproxy.cfg")], capture_output=True,
                               text=True, timeout=30)
        if check.returncode != 0:
            print(f"error: haproxy refused the configuration:\n{check.stdout}{check.stderr}", file=sys.stderr)
            return 2
        proc = subprocess.Popen([haproxy, "-db", "-f", str(workdir / "haproxy.cfg")])
        stopping = False

        def stop(signum, frame):  # noqa: ANN001, ARG001
            nonlocal stopping
            stopping = True
            if proc.poll() is None:
                proc.send_signal(signal.SIGUSR1)

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        print(f"router: {cfg.listen} -> {', '.join(f'{p.name} ({len(p.servers) or p.slots})' for p in cfg.pools)}; "
              f"metrics on http://{cfg.metrics_listen}/metrics", file=sys.stderr, flush=True)
        watcher = None
        if args.discover:
            from sie_mcp.router_discovery import start_discovery

            watcher = start_discovery(args, cfg, proc)
        try:
            code = proc.wait()
        finally:
            if watcher is not None:
                watcher.stop()
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        return 0 if stopping else code
