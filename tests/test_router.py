"""`sie-tools router`: Debian's HAProxy (scripts/install_haproxy.sh) in front of replicas, routing by model.

First against tiny echo backends (no torch; which pool and which replica answered, what is retried), then with
three real `sie-tools serve` replicas and four tiny random BERTs: each model loads on exactly one replica, a hot
model spills over once its in-flight calls pass the balance factor, and killing a replica fails at most a
handful of calls while its models move to the others. Everything binds loopback ports and is stopped by PID."""

from __future__ import annotations

import concurrent.futures
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from sie_mcp.router import RETRYABLE_TOOLS, Pool, RouterConfig, find_haproxy, render_haproxy, render_map
from tests.serve import SIE, free_port, wait_until_ok

MCP_HEADERS = {"accept": "application/json, text/event-stream", "content-type": "application/json"}


def haproxy() -> str:
    try:
        return find_haproxy()
    except ValueError as e:
        pytest.fail(f"{e} (scripts/install_haproxy.sh; scripts/test.sh runs it)")


def haproxy_check(cfg: RouterConfig, tmp_path: Path) -> subprocess.CompletedProcess:
    (tmp_path / "haproxy.cfg").write_text(render_haproxy(cfg))
    Path(cfg.map_path).write_text(render_map(cfg))
    return subprocess.run([haproxy(), "-c", "-f", str(tmp_path / "haproxy.cfg")], capture_output=True, text=True,
                          timeout=30)


@contextmanager
def router(tmp_path: Path, *args: str) -> Iterator[tuple[str, str, subprocess.Popen]]:
    """`sie-tools router` on loopback ports: (its URL, its metrics URL, the process); stopped by PID."""
    port, metrics = free_port(), free_port()
    log = tmp_path / f"router-{port}.log"
    with open(log, "w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "sie_mcp.cli", "router", "--listen", f"127.0.0.1:{port}",
                                 "--metrics-listen", f"127.0.0.1:{metrics}", *args], stdout=out,
                                stderr=subprocess.STDOUT)
    try:
        wait_until_ok(f"http://127.0.0.1:{metrics}/healthz", proc, time.monotonic() + 30, "router did not start",
                      log, poll_s=0.1)
        yield f"http://127.0.0.1:{port}", f"http://127.0.0.1:{metrics}", proc
    finally:
        if proc.poll() is None:
            proc.terminate()  # the command's SIGTERM -> HAProxy's soft stop
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
        proc.wait(5)


def wait_up(metrics_url: str, servers: int, timeout_s: float = 20) -> None:
    """Until HAProxy's exporter shows `servers` servers UP (health checks on /readyz passed)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        text = httpx.get(f"{metrics_url}/metrics", timeout=5).text
        up = sum(1 for line in text.splitlines()
                 if line.startswith("haproxy_server_status{") and 'state="UP"' in line and line.endswith(" 1"))
        if up >= servers:
            return
        time.sleep(0.2)
    raise AssertionError(f"fewer than {servers} servers UP")


# --- the configuration --------------------------------------------------------------------------------


def test_the_configuration_passes_haproxy_check(tmp_path):
    """Fixed servers, DNS server-templates (the chart's shape) and discovery slots: `haproxy -c` accepts each."""
    for pools in [
        (Pool("default", ("m1",), ("127.0.0.1:9001", "127.0.0.1:9002")),
         Pool("gpu", ("m2", "m3"), ("127.0.0.1:9003",))),
        (Pool("a", ("m1",), dns="r-sie-mcp-a.sie.svc.cluster.local:8080", slots=8),
         Pool("b", ("m2",), dns="b:8080", slots=2)),
        (Pool("default", (), slots=16),),
    ]:
        cfg = RouterConfig(listen="127.0.0.1:8080", metrics_listen="127.0.0.1:8405", pools=pools,
                           map_path=str(tmp_path / "models.map"), admin_socket=str(tmp_path / "admin.sock"))
        result = haproxy_check(cfg, tmp_path)
        assert result.returncode == 0, result.stdout + result.stderr


def test_limits_and_timeouts_are_the_servers():
    from sie_mcp.settings import Settings

    s = Settings.model_validate({})
    cfg = RouterConfig(listen="127.0.0.1:1", metrics_listen="127.0.0.1:2", pools=(Pool("p", servers=("h:1",)),),
                       map_path="/m", max_body_bytes=s.max_body_bytes, request_timeout_s=s.request_timeout_s,
                       read_timeout_s=s.read_timeout_s)
    text = render_haproxy(cfg)
    assert f"gt {s.max_body_bytes} }}" in text
    assert f"timeout http-request {round(s.read_timeout_s * 1000)}ms" in text
    assert f"timeout server {round((s.request_timeout_s + 5) * 1000)}ms" in text


def test_the_retryable_tools_are_read_only_tools():
    from sie_mcp.declare import declarations

    tools = {d.name: d for d in declarations()}
    for name in RETRYABLE_TOOLS:
        assert tools[name].annotations.read_only_hint, name


@pytest.mark.parametrize("pools,message", [
    ((Pool("a", ("m1",), ("h:1",)), Pool("b", ("m1",), ("h:2",))), "a model lives in one pool"),
    ((Pool("a", (), ("h:1",)), Pool("a", (), ("h:2",))), "pool names repeat"),
])
def test_contradictions_are_refused(pools, message):
    with pytest.raises(ValueError, match=message):
        RouterConfig(listen="127.0.0.1:1", metrics_listen="127.0.0.1:2", pools=pools, map_path="/m")
    with pytest.raises(ValueError, match="DNS label"):
        Pool("Bad_Name", servers=("h:1",))


def test_a_missing_haproxy_says_how_to_install_it(tmp_path):
    env = {**os.environ, "PATH": str(tmp_path)}  # no haproxy on it
    result = subprocess.run([sys.executable, "-m", "sie_mcp.cli", "router", "--backend", "127.0.0.1:1",
                             "--haproxy", str(tmp_path / "haproxy")], capture_output=True, text=True, env=env,
                            timeout=60)
    assert result.returncode != 0
    assert "haproxy is not installed" in result.stderr and "apt-get install haproxy" in result.stderr


# --- routing, against echo backends ----------------------------------------------------------------------


class Echo(BaseHTTPRequestHandler):
    """Answers with its server's name; closes without an answer when X-Drop-On names it (a replica that died
    mid-call)."""

    def log_message(self, *args) -> None:  # noqa: ANN002
        pass

    def do_GET(self) -> None:  # /readyz and the rest
        self.answer()

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length") or 0))
        if self.headers.get("x-drop-on") == self.server.name:  # type: ignore[attr-defined]
            self.close_connection = True
            return
        self.answer()

    def answer(self) -> None:
        body = json.dumps({"server": self.server.name}).encode()  # type: ignore[attr-defined]
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address) -> None:  # noqa: ANN001
        pass  # HAProxy's health checks close without reading the whole answer: not an error here


@pytest.fixture(scope="module")
def echoes() -> Iterator[list[str]]:
    servers = []
    for i in range(3):
        server = QuietServer(("127.0.0.1", 0), Echo)
        server.name = f"e{i}"  # type: ignore[attr-defined]
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
    yield [f"127.0.0.1:{s.server_address[1]}" for s in servers]
    for s in servers:
        s.shutdown()
        s.server_close()


@pytest.fixture(scope="module")
def echo_router(echoes, tmp_path_factory):
    a1, a2, b1 = echoes
    with router(tmp_path_factory.mktemp("router"), "--backend", a1, "--backend", a2, "--backend", f"b={b1}",
                "--pool", "a=m1,m2", "--pool", "b=m3,m4", "--default-model", "m3", "--max-body-bytes", "100000",
                "--check-interval-s", "0.5") as (url, metrics, _):
        wait_up(metrics, 3)
        yield url, metrics


def answered_by(url: str, path: str, body, **headers: str) -> str:
    r = httpx.post(f"{url}{path}", content=json.dumps(body), headers={"content-type": "application/json", **headers},
                   timeout=10)
    assert r.status_code == 200, r.text
    return r.json()["server"]


def mcp_call(name: str, arguments: dict) -> dict:
    return {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": name, "arguments": arguments}}


def test_the_key_is_read_from_every_surface(echo_router):
    url, _ = echo_router
    # Pool b has one replica (e2): every surface that names m3 or m4 lands there; m1 and m2 never do.
    for model, pool_b in (("m1", False), ("m2", False), ("m3", True), ("m4", True)):
        calls = [("/v1/tools/embed", {"texts": ["x"], "model": model}),
                 ("/v1/embeddings", {"input": ["x"], "model": model}),
                 ("/v1/rerank", {"query": "q", "documents": ["d"], "model": model}),
                 ("/mcp", mcp_call("embed", {"texts": ["x"], "model": model}))]
        for path, body in calls:
            assert (answered_by(url, path, body) == "e2") is pool_b, (path, model)
    # The same model always lands on the same replica of its pool.
    assert len({answered_by(url, "/v1/tools/embed", {"texts": [str(i)], "model": "m1"}) for i in range(10)}) == 1
    # No model: the header a client may add, else the default model (m3, pool b); an unlisted model: pool a.
    assert answered_by(url, "/v1/tools/embed", {"texts": ["x"]}, **{"x-sie-model": "m1"}) != "e2"
    assert answered_by(url, "/v1/tools/embed", {"texts": ["x"]}) == "e2"
    assert answered_by(url, "/mcp", mcp_call("list_models", {})) == "e2"
    assert answered_by(url, "/v1/tools/embed", {"texts": ["x"], "model": "unlisted"}) != "e2"


def test_bodies_over_the_servers_limit_are_refused(echo_router):
    url, _ = echo_router
    r = httpx.post(f"{url}/v1/tools/embed", content=b"x" * 100_001, headers={"content-type": "application/json"})
    assert r.status_code == 413


def test_only_idempotent_calls_are_retried_on_another_replica(echo_router):
    url, metrics = echo_router
    first = answered_by(url, "/v1/tools/embed", {"texts": ["x"], "model": "m1"})
    drop = {"x-drop-on": first}  # the replica that holds m1 closes without answering
    other = answered_by(url, "/v1/tools/embed", {"texts": ["x"], "model": "m1"}, **drop)
    assert other != first
    rerank = mcp_call("rerank", {"query": "q", "documents": ["d"], "model": "m1"})
    assert answered_by(url, "/mcp", rerank, **drop) != first
    for path, body in [("/v1/tools/index_documents", {"collection": "c", "texts": ["x"], "model": "m1"}),
                       ("/mcp", mcp_call("build_ontology", {"texts": ["x"], "model": "m1"}))]:
        r = httpx.post(f"{url}{path}", json=body, headers=drop, timeout=10)
        assert r.status_code == 502, path  # a write that may have happened is not sent twice
    assert answered_by(url, "/v1/tools/embed", {"texts": ["x"], "model": "m1"}) == first  # no eviction
    assert 'haproxy_backend_redispatch_warnings_total{proxy="pool_a"} 2' in httpx.get(f"{metrics}/metrics").text


# --- three real replicas ---------------------------------------------------------------------------------

MODELS = ("m1", "m2", "m3", "m4")


@pytest.fixture(scope="module")
def replicas(make_hf_model, tmp_path_factory) -> Iterator[list[tuple[str, subprocess.Popen]]]:
    """Three `sie-tools serve --stateless-http` replicas with four tiny random BERTs (m1..m4) and a fifth that
    each preloads (warm, the default embed model), started together."""
    log_dir = tmp_path_factory.mktemp("replicas")
    specs = [f"{m}={make_hf_model('BertModel', seed=i + 1)}" for i, m in enumerate(MODELS)]
    specs.append(f"warm={make_hf_model('BertModel', seed=9)}")
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("SIE_")}, "HF_HUB_OFFLINE": "1",
           "TRANSFORMERS_OFFLINE": "1", "SIE_DEFAULT_NER_MODEL": "warm"}
    procs: list[tuple[str, subprocess.Popen]] = []
    logs: list[Path] = []
    with ExitStack() as stack:
        for _ in range(3):
            port = free_port()
            out = stack.enter_context(open(log_dir / f"replica-{port}.log", "w"))  # noqa: SIM115
            args = [SIE, "serve", "--transport", "http", "--port", str(port), "--stateless-http", "--device", "cpu",
                    "--preload", "warm", "--default-embed-model", "warm", "--max-batch-tokens", "2048",
                    "--data-dir", str(log_dir / str(port)), *[x for s in specs for x in ("--model", s)]]
            logs.append(log_dir / f"replica-{port}.log")
            procs.append((f"127.0.0.1:{port}", subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, env=env)))
        try:
            deadline = time.monotonic() + 180
            for (addr, proc), log in zip(procs, logs, strict=True):
                wait_until_ok(f"http://{addr}/readyz", proc, deadline, f"replica {addr} did not become ready", log)
            yield procs
        finally:
            for _, proc in procs:
                if proc.poll() is None:
                    proc.kill()
                proc.wait(10)


def loads(addr: str) -> dict[str, float]:
    """sie_model_loads_total of one replica, summed by model (a dead replica: {})."""
    try:
        text = httpx.get(f"http://{addr}/metrics", timeout=5).text
    except httpx.TransportError:
        return {}
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("sie_model_loads_total{"):
            model = line.split('model="', 1)[1].split('"', 1)[0]
            out[model] = out.get(model, 0) + float(line.rsplit(" ", 1)[1])
    return out


def holders(addrs: list[str], model: str) -> set[str]:
    return {a for a in addrs if loads(a).get(model, 0) > 0}


def call(client: httpx.Client, i: int, model: str, texts: int = 2) -> httpx.Response:
    """Mixed surfaces: REST embed, OpenAI embeddings, MCP tools/call (stateless JSON), REST rerank."""
    words = [f"text {i} {j} " + "word " * (j % 40) for j in range(texts)]
    kind = i % 4
    if kind == 0:
        return client.post("/v1/tools/embed", json={"texts": words, "model": model})
    if kind == 1:
        return client.post("/v1/embeddings", json={"input": words, "model": model})
    if kind == 2:
        return client.post("/mcp", headers=MCP_HEADERS, json=mcp_call("embed", {"texts": words, "model": model}))
    return client.post("/v1/tools/rerank", json={"query": "word", "documents": words, "model": model})


def ok(r: httpx.Response) -> bool:
    if r.status_code != 200:
        return False
    body = r.json()
    return not (isinstance(body, dict) and body.get("result", {}).get("isError"))


@pytest.fixture(scope="module")
def routed(replicas, tmp_path_factory):
    addrs = [a for a, _ in replicas]
    with router(tmp_path_factory.mktemp("routed"), *[x for a in addrs for x in ("--backend", a)],
                "--default-model", "warm", "--check-interval-s", "0.5") as (url, metrics, _):
        wait_up(metrics, 3)
        yield url, addrs, replicas


def test_each_model_is_loaded_on_exactly_one_replica(routed):
    url, addrs, _ = routed
    with httpx.Client(base_url=url, timeout=60) as client:
        for i in range(48):  # every model on every surface, interleaved, one call at a time
            r = call(client, i, MODELS[i % 4] if i % 8 else MODELS[(i // 8) % 4])
            assert ok(r), r.text
    placement = {m: holders(addrs, m) for m in MODELS}
    assert all(len(h) == 1 for h in placement.values()), placement


def test_a_hot_model_spreads_past_the_balance_factor(routed):
    """Twelve clients at once on one model: its replica's in-flight calls pass 150 % of the pool's average per
    replica, and HAProxy's bounded load sends the excess on to the next replica of the ring, which loads it too."""
    url, addrs, _ = routed
    hot = "m2"
    with httpx.Client(base_url=url, timeout=60) as client:
        assert ok(call(client, 0, hot))  # placed (already, when the test above ran)
    assert len(holders(addrs, hot)) == 1

    def client_loop(k: int) -> int:
        with httpx.Client(base_url=url, timeout=60) as client:
            return sum(ok(client.post("/v1/tools/embed", json={"texts": [f"hot {k} {j} " + "word " * 60
                                                                         for j in range(16)], "model": hot}))
                       for _ in range(4))

    with concurrent.futures.ThreadPoolExecutor(12) as pool:
        assert sum(pool.map(client_loop, range(12))) == 48
    assert len(holders(addrs, hot)) >= 2, {a: loads(a) for a in addrs}


def test_killing_a_replica_fails_a_handful_of_calls_and_moves_its_models(routed):
    url, addrs, replicas = routed
    with httpx.Client(base_url=url, timeout=60) as client:
        assert all(ok(call(client, i, m)) for i, m in enumerate(MODELS))  # placed, one call at a time
    placement = {m: holders(addrs, m) for m in MODELS}
    # The replica that holds most of the cold models (m1, m3, m4; m2 was hot) dies.
    victim = max(addrs, key=lambda a: sum(a in placement[m] for m in ("m1", "m3", "m4")))
    moved = [m for m in ("m1", "m3", "m4") if placement[m] == {victim}]
    assert moved, placement  # each cold model lives on one replica (the first test): the victim holds one
    stop = threading.Event()
    results: list[bool] = []

    def client_loop(k: int) -> None:
        with httpx.Client(base_url=url, timeout=60) as client:
            i = k
            while not stop.is_set():
                try:
                    results.append(ok(call(client, i, MODELS[i % 4])))
                except httpx.HTTPError:
                    results.append(False)
                i += 4

    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        futures = [pool.submit(client_loop, k) for k in range(4)]
        time.sleep(2)
        dict(replicas)[victim].send_signal(signal.SIGKILL)
        before_kill = len(results)
        deadline = time.monotonic() + 40  # 40 calls after the kill (the survivors load the moved models first)
        while len(results) - before_kill < 40 and time.monotonic() < deadline:
            time.sleep(0.2)
        stop.set()
        for f in futures:
            f.result()
    failed = results.count(False)
    print(f"killed {victim}: {failed} of {len(results)} calls failed ({len(results) - before_kill} after the kill)")
    assert len(results) - before_kill >= 20, "too few calls after the kill to judge"
    assert failed <= 5, f"{failed} of {len(results)} calls failed"
    survivors = [a for a in addrs if a != victim]
    for m in moved:
        assert holders(survivors, m), f"{m} did not move off the dead replica"


# --- discovery: EndpointSlices through the kubernetes client, against a fake API server ----------------------


class FakeApiServer(BaseHTTPRequestHandler):
    """Just the EndpointSlice list and watch that sie_mcp/router_discovery.py uses (GET …/endpointslices, and
    with watch=true a stream of JSON lines fed from a queue); no real API server runs in the test suite."""

    protocol_version = "HTTP/1.1"  # a watch is a chunked body, one event per line, as the real API server sends

    def log_message(self, *args) -> None:  # noqa: ANN002
        pass

    def do_GET(self) -> None:
        api = self.server.api  # type: ignore[attr-defined]
        if "/apis/discovery.k8s.io/v1/namespaces/sie/endpointslices" not in self.path:
            self.send_error(404)
            return
        if "watch=true" not in self.path.lower():
            with api["lock"]:
                items = list(api["slices"].values())
            body = json.dumps({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSliceList",
                               "metadata": {"resourceVersion": "1"}, "items": items}).encode()
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("transfer-encoding", "chunked")
        self.end_headers()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not api["closed"].is_set():
            try:
                event = api["events"].get(timeout=0.2)
            except Exception:  # noqa: BLE001 - queue.Empty
                continue
            line = json.dumps(event).encode() + b"\n"
            self.wfile.write(b"%x\r\n%s\r\n" % (len(line), line))
            self.wfile.flush()
        self.wfile.write(b"0\r\n\r\n")
        self.close_connection = True


def publish(api: dict, kind: str, obj: dict) -> None:
    """An EndpointSlice change: the state the next list returns, and an event for the open watch."""
    with api["lock"]:
        if kind == "DELETED":
            api["slices"].pop(obj["metadata"]["name"], None)
        else:
            api["slices"][obj["metadata"]["name"]] = obj
    api["events"].put({"type": kind, "object": obj})


def endpoint_slice(name: str, port: int, ready: bool = True) -> dict:
    return {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "addressType": "IPv4",
            "metadata": {"name": name, "namespace": "sie", "resourceVersion": "2",
                         "labels": {"kubernetes.io/service-name": "r-sie-mcp-cpu"}},
            "endpoints": [{"addresses": ["127.0.0.1"], "conditions": {"ready": ready, "serving": ready,
                                                                       "terminating": False}}],
            "ports": [{"name": "http", "port": port, "protocol": "TCP"}]}


def test_discovery_follows_endpoint_slices_without_a_reload(echoes, tmp_path):
    import queue

    ports = [int(e.rsplit(":", 1)[1]) for e in echoes]
    api = {"slices": {"a": endpoint_slice("a", ports[0])}, "events": queue.Queue(), "lock": threading.Lock(),
           "closed": threading.Event()}
    server = QuietServer(("127.0.0.1", 0), FakeApiServer)
    server.api = api  # type: ignore[attr-defined]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": "fake",
        "clusters": [{"name": "fake", "cluster": {"server": f"http://127.0.0.1:{server.server_address[1]}"}}],
        "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "fake"}}],
        "users": [{"name": "fake", "user": {"token": "t"}}]}))
    models = [f"model-{i}" for i in range(24)]

    def answering(url: str) -> set[str]:
        return {answered_by(url, "/v1/tools/embed", {"texts": ["x"], "model": m}) for m in models}

    try:
        with router(tmp_path, "--discover", "sie/r-sie-mcp-cpu", "--slots", "4", "--kubeconfig", str(kubeconfig),
                    "--check-interval-s", "0.5") as (url, metrics, proc):
            wait_up(metrics, 1)
            assert answering(url) == {"e0"}
            publish(api, "ADDED", endpoint_slice("b", ports[1]))  # a pod turned ready
            wait_up(metrics, 2)
            assert answering(url) == {"e0", "e1"}  # the ring has both: each takes part of the models
            publish(api, "MODIFIED", endpoint_slice("a", ports[0], ready=False))
            deadline = time.monotonic() + 10
            while answering(url) != {"e1"}:  # a terminating pod leaves at once
                assert time.monotonic() < deadline, "the unready endpoint still takes calls"
                time.sleep(0.2)
            publish(api, "DELETED", endpoint_slice("b", ports[1]))
            publish(api, "ADDED", endpoint_slice("c", ports[2]))
            deadline = time.monotonic() + 10
            while answering(url) != {"e2"}:
                assert time.monotonic() < deadline, "the new endpoint did not take over"
                time.sleep(0.2)
            assert proc.poll() is None
    finally:
        api["closed"].set()
        server.shutdown()
        server.server_close()


def test_sigterm_stops_haproxy_softly_and_exits_zero(echoes, tmp_path):
    with router(tmp_path, "--backend", echoes[0]) as (url, metrics, proc):
        wait_up(metrics, 1)
        assert answered_by(url, "/v1/tools/embed", {"texts": ["x"]}) == "e0"
        proc.send_signal(signal.SIGTERM)  # -> HAProxy's soft stop (SIGUSR1)
        assert proc.wait(15) == 0
        with pytest.raises(httpx.TransportError):  # the haproxy child is gone with it
            httpx.get(f"{metrics}/healthz", timeout=2)
