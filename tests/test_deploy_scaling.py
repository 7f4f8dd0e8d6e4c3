"""The scaling signal and the drain, for real: Debian's Prometheus (scripts/install_prometheus.sh) scrapes a
running `sie-tools serve --transport http` on loopback and evaluates the exact query of the rendered KEDA
ScaledObject through its HTTP API; `promtool test rules` covers the no-data and threshold cases; SIGTERM
while calls are queued drains the server (readiness 503 at once, listener open, accepted calls finish)."""

from __future__ import annotations

import concurrent.futures
import shutil
import signal
import subprocess
import threading
import time

import httpx
import pytest
import yaml

from tests.serve import free_port, serve
from tests.test_chart import FULLNAME, NAMESPACE, VARIANTS, one, render

OTHER_RELEASE = "other-sie-mcp"


def _binary(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is missing: run scripts/install_prometheus.sh (scripts/test.sh does)")
    return path


@pytest.fixture(scope="module")
def trigger() -> dict:
    """The queue-depth trigger of the ScaledObject the chart renders (namespace sie, release r)."""
    scaled = one(render(VARIANTS["keda"]), "ScaledObject")
    return next(t for t in scaled["spec"]["triggers"] if t["type"] == "prometheus")["metadata"]


def test_promtool_rules_no_data_scope_and_threshold(trigger, tmp_path):
    query, threshold = trigger["query"], float(trigger["threshold"])
    rules = {"groups": [{"name": "keda", "rules": [
        {"record": "keda:sie_queue_depth", "expr": query},
        {"alert": "SieQueueAboveThreshold", "expr": f"({query}) > {threshold:g}"},
    ]}]}
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump(rules))
    pod = f'sie_tool_queue_depth{{model="_all",namespace="{NAMESPACE}",service="{FULLNAME}",pod="%s"}}'
    tests = {"rule_files": ["rules.yaml"], "evaluation_interval": "1m", "tests": [
        {  # no series at all (no pod, nothing scraped): 0, not "no data" (which KEDA would treat as an error)
            "interval": "1m",
            "input_series": [{"series": 'up{job="unrelated"}', "values": "1x5"}],
            "promql_expr_test": [{"expr": "keda:sie_queue_depth", "eval_time": "2m",
                                  "exp_samples": [{"labels": "keda:sie_queue_depth", "value": 0}]}],
            "alert_rule_test": [{"alertname": "SieQueueAboveThreshold", "eval_time": "2m", "exp_alerts": []}],
        },
        {  # two pods of this release: summed; another release's pods and per-model series do not count
            "interval": "1m",
            "input_series": [
                {"series": pod % "a", "values": "0 3 6 2"},
                {"series": pod % "b", "values": "0 4 5 1"},
                {"series": f'sie_tool_queue_depth{{model="_all",namespace="{NAMESPACE}",service="{OTHER_RELEASE}"}}',
                 "values": "50 50 50 50"},
                {"series": f'sie_tool_queue_depth{{model="m0",namespace="{NAMESPACE}",service="{FULLNAME}"}}',
                 "values": "9 9 9 9"},
            ],
            "promql_expr_test": [
                {"expr": "keda:sie_queue_depth", "eval_time": "1m",
                 "exp_samples": [{"labels": "keda:sie_queue_depth", "value": 7}]},
                {"expr": "keda:sie_queue_depth", "eval_time": "2m",
                 "exp_samples": [{"labels": "keda:sie_queue_depth", "value": 11}]},
            ],
            "alert_rule_test": [
                {"alertname": "SieQueueAboveThreshold", "eval_time": "1m", "exp_alerts": []},  # 7 <= 8
                {"alertname": "SieQueueAboveThreshold", "eval_time": "2m", "exp_alerts": [{"exp_labels": {}}]},
                {"alertname": "SieQueueAboveThreshold", "eval_time": "3m", "exp_alerts": []},  # 3 again
            ],
        },
    ]}
    (tmp_path / "tests.yaml").write_text(yaml.safe_dump(tests))
    result = subprocess.run([_binary("promtool"), "test", "rules", "tests.yaml"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout + result.stderr


# --- a real Prometheus scraping a real server -------------------------------------------------------


class Prometheus:
    def __init__(self, url: str, proc: subprocess.Popen) -> None:
        self.url, self.proc = url, proc

    def query(self, expr: str, at: float | None = None) -> list[dict]:
        params = {"query": expr, **({"time": f"{at:.3f}"} if at else {})}
        body = httpx.get(f"{self.url}/api/v1/query", params=params, timeout=5).json()
        assert body["status"] == "success", body
        return body["data"]["result"]

    def wait_for(self, expr: str, predicate, timeout_s: float = 30) -> list[dict]:
        deadline = time.monotonic() + timeout_s
        while True:
            result = self.query(expr)
            if predicate(result):
                return result
            if time.monotonic() > deadline:
                raise AssertionError(f"{expr}: still {result} after {timeout_s} s")
            time.sleep(0.25)


def value(result: list[dict]) -> float:
    (sample,) = result
    return float(sample["value"][1])


@pytest.fixture(scope="module")
def server_port() -> int:
    return free_port()


@pytest.fixture(scope="module")
def prometheus(server_port, tmp_path_factory):
    """Prometheus on loopback scraping the server's port every second, as this release (namespace and service
    labels as prometheus-operator sets them) and, to prove the query's scope, as another release."""
    work = tmp_path_factory.mktemp("prometheus")
    port = free_port()
    target = f"127.0.0.1:{server_port}"
    config = {"global": {"scrape_interval": "1s", "scrape_timeout": "900ms"}, "scrape_configs": [
        {"job_name": job, "metrics_path": "/metrics",
         "static_configs": [{"targets": [target], "labels": {"namespace": NAMESPACE, "service": service}}]}
        for job, service in (("this", FULLNAME), ("other", OTHER_RELEASE))]}
    (work / "prometheus.yml").write_text(yaml.safe_dump(config))
    with open(work / "prometheus.log", "w") as log:
        proc = subprocess.Popen([_binary("prometheus"), f"--config.file={work / 'prometheus.yml'}",
                                 f"--storage.tsdb.path={work / 'data'}", f"--web.listen-address=127.0.0.1:{port}",
                                 "--storage.tsdb.retention.time=1h", "--log.level=warn"],
                                stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/-/ready", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"prometheus did not start:\n{(work / 'prometheus.log').read_text()}")
            time.sleep(0.2)
        yield Prometheus(url, proc)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture(scope="module")
def server(server_port, prometheus, tmp_path_factory):
    """`sie-tools serve --transport http` with the embedded default model; the drain test ends it."""
    with serve(None, tmp_path_factory.mktemp("server"), "--request-timeout-s", "60", "--drain-timeout-s", "70",
               "--max-batch-tokens", "2048", port=server_port, timeout_s=120) as s:
        yield s.url, s.proc, s.log


def embed_call(url: str, n_texts: int, words: int) -> httpx.Response:
    return httpx.post(f"{url}/v1/tools/embed", json={"texts": [f"call {i} " + "word " * words for i in range(n_texts)]},
                      timeout=120)


@pytest.mark.slow
def test_the_scaled_object_query_on_a_real_prometheus(trigger, prometheus, server):
    query = trigger["query"]
    this = f'sie_tool_queue_depth{{model="_all",service="{FULLNAME}"}}'
    # Before the server exists its target is down: no series, and the query reads 0 through `or vector(0)`.
    empty = prometheus.query(query)
    assert value(empty) == 0 and empty[0]["metric"] == {}
    url, _, _ = server
    prometheus.wait_for('up{job="this"}', lambda r: r and value(r) == 1)
    prometheus.wait_for(this, lambda r: len(r) == 1)  # scraped: a real series, at 0
    assert value(prometheus.query(query)) == 0

    # A bounded load: 4 clients, each sending calls back to back until the query has read non-zero.
    stop, statuses = threading.Event(), []

    def client():
        while not stop.is_set():
            statuses.append(embed_call(url, 16, 120).status_code)

    threads = [threading.Thread(target=client) for _ in range(4)]
    for t in threads:
        t.start()
    try:
        busy = prometheus.wait_for(query, lambda r: value(r) > 0, timeout_s=60)
        at = float(busy[0]["value"][0])
        # Scoped to the release: the same pod scraped as another release is not added in.
        assert value(prometheus.query(query, at)) == value(prometheus.query(this, at)) <= 4
    finally:
        stop.set()
        for t in threads:
            t.join(120)
    assert statuses and set(statuses) == {200}
    # After the load: back to zero, read from the live series (not the vector(0) fallback).
    prometheus.wait_for(query, lambda r: value(r) == 0, timeout_s=30)
    assert value(prometheus.query(this)) == 0


@pytest.mark.slow
def test_sigterm_drains_queued_calls(prometheus, server, trigger):
    """SIGTERM while calls are queued: /readyz 503 at once while the listener still answers, new calls are
    refused with a retry hint, every accepted call completes, and the process exits within the grace period.
    Then the target is gone and the query reads 0 with no target."""
    url, proc, log = server
    grace = one(render(), "Deployment")["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    n_calls = 4
    with concurrent.futures.ThreadPoolExecutor(n_calls) as pool:
        calls = [pool.submit(embed_call, url, 8, 200) for _ in range(n_calls)]
        deadline = time.monotonic() + 30
        while True:  # every call admitted (queued or computing) before the signal
            metrics = httpx.get(f"{url}/metrics", timeout=5).text
            depth = next(float(line.split()[-1]) for line in metrics.splitlines()
                         if line.startswith('sie_tool_queue_depth{model="_all"}'))
            if depth == n_calls:
                break
            assert time.monotonic() < deadline and not any(c.done() for c in calls), "calls finished too soon"
            time.sleep(0.01)
        signalled = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        ready = None
        while time.monotonic() - signalled < 5:
            ready = httpx.get(f"{url}/readyz", timeout=5)
            if ready.status_code == 503:
                break
            time.sleep(0.02)
        assert ready is not None and ready.status_code == 503 and ready.json()["status"] == "draining"
        assert time.monotonic() - signalled < 2  # at once, not after the queue empties
        assert not all(c.done() for c in calls), "the drain should still have work"
        assert httpx.get(f"{url}/healthz", timeout=5).status_code == 200  # the listener still answers
        refused = embed_call(url, 1, 3)  # not accepted: a clear 503, so a client retries elsewhere
        assert refused.status_code == 503 and refused.json()["error"]["type"] == "ShuttingDown"
        results = [c.result() for c in calls]
    finished = time.monotonic()
    assert [r.status_code for r in results] == [200] * n_calls, [r.text for r in results]
    assert all(len(r.json()["embeddings"]) == 8 for r in results)  # no accepted call lost
    assert proc.wait(grace) in (0, -signal.SIGTERM)
    exited = time.monotonic()
    assert exited - signalled < grace and exited - finished < 10
    text = log.read_text()
    assert "draining" in text and f"drained: {n_calls} calls finished" in text
    # No target now: the series went stale with the failed scrape, and the query reads 0.
    gone = prometheus.wait_for(trigger["query"], lambda r: r and r[0]["metric"] == {} and value(r) == 0,
                               timeout_s=60)
    assert value(gone) == 0
