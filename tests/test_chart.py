"""The Helm chart, rendered by a real helm (scripts/install_helm.sh puts it in .tools/bin) and validated:
built-in kinds with kubernetes-validate --strict for Kubernetes 1.33, the KEDA ScaledObject against KEDA's
CRD models (cloudcoil-models-keda, with unknown fields rejected), the HTTP add-on's InterceptorRoute against
its v1beta1 schema (tests/data), then assertions on what the objects must agree on."""

from __future__ import annotations

import copy
import functools
import json
import re
import subprocess
from pathlib import Path

import jsonschema
import kubernetes_validate
import pytest
import yaml

from engine.metrics import EngineMetrics

REPO = Path(__file__).resolve().parent.parent
CHART = REPO / "charts" / "sie-mcp"
HELM = REPO / ".tools" / "bin" / "helm"
K8S_VERSION = "1.33.0"
RELEASE, NAMESPACE = "r", "sie"
FULLNAME = "r-sie-mcp"
VARIANTS = {"default": None, **{p.name.removesuffix("-values.yaml"): p for p in sorted((CHART / "ci").glob("*.yaml"))}}
KEDA_KINDS = {"ScaledObject", "InterceptorRoute"}
CRD_KINDS = KEDA_KINDS | {"ServiceMonitor"}
INTERCEPTOR_ROUTE_SCHEMA = json.loads((REPO / "tests" / "data" / "interceptorroute_v1beta1.schema.json").read_text())


def helm(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    if not HELM.exists():
        pytest.fail("helm is missing: run scripts/install_helm.sh (scripts/test.sh does)")
    return subprocess.run([str(HELM), *args], capture_output=True, text=True, check=check, timeout=60)


def render(values: Path | None = None, *sets: str) -> list[dict]:
    """The rendered objects (a fresh copy: tests may edit them)."""
    return copy.deepcopy(_render(values, sets))


@functools.cache
def _render(values: Path | None, sets: tuple[str, ...]) -> list[dict]:
    args = ["template", RELEASE, str(CHART), "--namespace", NAMESPACE]
    if values:
        args += ["-f", str(values)]
    for s in sets:
        args += ["--set", s]
    return [d for d in yaml.safe_load_all(helm(*args).stdout) if d]


def render_error(*sets: str) -> str:
    args = ["template", RELEASE, str(CHART)]
    for s in sets:
        args += ["--set", s]
    result = helm(*args, check=False)
    assert result.returncode != 0, "the render should have failed"
    return result.stderr


def by_kind(docs: list[dict]) -> dict[str, list[dict]]:
    kinds: dict[str, list[dict]] = {}
    for d in docs:
        kinds.setdefault(d["kind"], []).append(d)
    return kinds


def one(docs: list[dict], kind: str) -> dict:
    found = by_kind(docs).get(kind, [])
    assert len(found) == 1, f"expected one {kind}, got {len(found)}"
    return found[0]


def env_of(deployment: dict) -> dict[str, str]:
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    return {e["name"]: e.get("value") for e in container["env"]}


# --- validation ------------------------------------------------------------------------------------


def unknown_fields(given, dumped, path: str = "") -> list[str]:
    """Fields of `given` that a pydantic model dropped (unknown to it) or changed on the way through."""
    if isinstance(given, dict):
        out = []
        for k, v in given.items():
            if not isinstance(dumped, dict) or k not in dumped:
                out.append(f"{path}.{k}")
            else:
                out += unknown_fields(v, dumped[k], f"{path}.{k}")
        return out
    if isinstance(given, list):
        if not isinstance(dumped, list) or len(dumped) != len(given):
            return [path]
        return [x for i, (a, b) in enumerate(zip(given, dumped, strict=True)) for x in unknown_fields(a, b, f"{path}[{i}]")]
    return [] if given == dumped else [f"{path} ({given!r} became {dumped!r})"]


def validate_keda(doc: dict) -> None:
    if doc["kind"] == "InterceptorRoute":
        jsonschema.validate(doc, INTERCEPTOR_ROUTE_SCHEMA)
        return
    from cloudcoil.models.keda.v1alpha1 import ScaledObject

    assert doc["apiVersion"] == "keda.sh/v1alpha1"
    dumped = ScaledObject.model_validate(doc).model_dump(mode="json", by_alias=True, exclude_unset=True)
    bad = unknown_fields(doc, dumped)
    if bad:
        raise ValueError(f"ScaledObject fields unknown to KEDA's CRD: {bad}")


def validate(doc: dict) -> None:
    if doc["kind"] in KEDA_KINDS:
        validate_keda(doc)
    elif doc["kind"] == "ServiceMonitor":  # no schema here: the fields prometheus-operator reads
        assert doc["apiVersion"] == "monitoring.coreos.com/v1"
        assert set(doc["spec"]) == {"selector", "namespaceSelector", "endpoints"}
    else:
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


@pytest.mark.parametrize("variant", VARIANTS)
def test_helm_lint_strict(variant):
    args = ["lint", "--strict", str(CHART)] + (["-f", str(VARIANTS[variant])] if VARIANTS[variant] else [])
    result = helm(*args, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_rendered_object_validates(variant):
    docs = render(VARIANTS[variant])
    assert {"Deployment", "Service", "PodDisruptionBudget"} <= set(by_kind(docs))
    for doc in docs:
        validate(doc)


def test_the_validators_reject_unknown_fields():
    """The checks above can fail: a misspelled field in each kind of object is caught."""
    docs = render(VARIANTS["http-addon"])
    deployment = one(docs, "Deployment")
    deployment["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGett"] = {"path": "/readyz"}
    with pytest.raises(kubernetes_validate.ValidationError):
        validate(deployment)
    scaled = one(docs, "ScaledObject")
    scaled["spec"]["triggers"][0]["metadataa"] = {}
    with pytest.raises(ValueError, match="metadataa"):
        validate(scaled)
    scaled = one(render(VARIANTS["http-addon"]), "ScaledObject")
    scaled["spec"]["advanced"]["horizontalPodAutoscalerConfig"]["behaviour"] = {}
    with pytest.raises(ValueError, match="behaviour"):
        validate(scaled)
    route = one(docs, "InterceptorRoute")
    route["spec"]["scalingMetric"]["concurrency"]["target"] = 3
    with pytest.raises(jsonschema.ValidationError):
        validate(route)


# --- what the objects must agree on ----------------------------------------------------------------


def exported_series() -> dict[str, set[str]]:
    """Series names the server exports -> their label names, from the engine's own metric objects
    (a histogram as _bucket/_sum/_count, a counter as _total)."""
    from prometheus_client.metrics import MetricWrapperBase

    series: dict[str, set[str]] = {}
    for metric in vars(EngineMetrics()).values():
        if isinstance(metric, MetricWrapperBase):
            kind = str(metric._type)
            suffixes = {"histogram": ["_bucket", "_sum", "_count"], "counter": ["_total"]}.get(kind, [""])
            for suffix in suffixes:
                series[metric._name + suffix] = set(metric._labelnames)
    return series


def test_scaled_object_scales_the_deployment_on_the_exported_queue_depth():
    docs = render(VARIANTS["keda"])
    scaled, deployment = one(docs, "ScaledObject"), one(docs, "Deployment")
    assert "HorizontalPodAutoscaler" not in by_kind(docs)  # KEDA owns the HPA
    ref = scaled["spec"]["scaleTargetRef"]
    assert (ref["apiVersion"], ref["kind"], ref["name"]) == ("apps/v1", "Deployment", deployment["metadata"]["name"])
    assert "replicas" not in deployment["spec"]  # the autoscaler owns the replica count
    (trigger,) = scaled["spec"]["triggers"]
    assert trigger["type"] == "prometheus" and trigger["metricType"] == "AverageValue"
    query = trigger["metadata"]["query"]
    assert query == (f'sum(sie_tool_queue_depth{{model="_all",namespace="{NAMESPACE}",service="{FULLNAME}"}}) '
                     "or vector(0)")
    assert set(re.findall(r"\bsie_[a-z_]+", query)) <= set(exported_series())
    assert trigger["metadata"]["serverAddress"] == "http://prometheus-operated.monitoring.svc:9090"
    assert (trigger["metadata"]["threshold"], trigger["metadata"]["activationThreshold"]) == ("8", "1")
    spec = scaled["spec"]
    assert (spec["minReplicaCount"], spec["maxReplicaCount"]) == (1, 8)
    assert spec["fallback"] == {"failureThreshold": 3, "replicas": 2}
    assert spec["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]["scaleDown"]["stabilizationWindowSeconds"] == 300
    # The ServiceMonitor scrapes the Service's named port at /metrics, and targets get the namespace and
    # service labels the query matches on (prometheus-operator's target labels).
    monitor, service = one(docs, "ServiceMonitor"), one(docs, "Service")
    assert monitor["spec"]["endpoints"][0]["port"] == service["spec"]["ports"][0]["name"] == "http"
    assert monitor["spec"]["endpoints"][0]["path"] == "/metrics"
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": [NAMESPACE]}
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"


def test_probes_ports_and_timeouts_agree():
    from sie_mcp.http_app import create_app
    from sie_mcp.settings import Settings

    docs = render()
    deployment, service = one(docs, "Deployment"), one(docs, "Service")
    pod = deployment["spec"]["template"]["spec"]
    container = pod["containers"][0]
    routes = {getattr(r, "path", None) for r in create_app(Settings.model_validate({})).routes}
    probes = {k: container[k]["httpGet"] for k in ("startupProbe", "readinessProbe", "livenessProbe")}
    assert {k: p["path"] for k, p in probes.items()} == {
        "startupProbe": "/readyz", "readinessProbe": "/readyz", "livenessProbe": "/healthz"}
    assert {p["path"] for p in probes.values()} <= routes
    (port,) = container["ports"]
    env = env_of(deployment)
    assert {p["port"] for p in probes.values()} == {port["name"]}
    assert service["spec"]["ports"][0]["targetPort"] == port["name"]
    assert int(env["SIE_PORT"]) == port["containerPort"] == 8080
    assert service["spec"]["selector"].items() <= deployment["spec"]["template"]["metadata"]["labels"].items()
    # grace period > preStop + drain timeout (+ response flush) > request timeout
    grace = pod["terminationGracePeriodSeconds"]
    pre_stop = container["lifecycle"]["preStop"]["sleep"]["seconds"]
    drain, request = float(env["SIE_DRAIN_TIMEOUT_S"]), float(env["SIE_REQUEST_TIMEOUT_S"])
    assert grace > pre_stop + drain + 5 and drain > request
    # The startup probe's budget covers model loading; liveness only starts after it.
    startup = container["startupProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 300
    # The settings the server reads: bind all interfaces, stateless MCP, metrics open for Prometheus.
    assert env["SIE_HOST"] == "0.0.0.0" and env["SIE_STATELESS_HTTP"] == "true" and env["SIE_TRANSPORT"] == "http"
    assert env["SIE_METRICS_AUTH"] == "false"
    assert env["HF_HOME"] == "/models/hf" and env["SIE_DATA_DIR"] == "/data"
    # Settings accepts what the chart sets for the options it has (drain, request timeout, queue, device…).
    known = {f"SIE_{name.upper()}" for name in Settings.model_fields}
    assert {"SIE_DRAIN_TIMEOUT_S", "SIE_REQUEST_TIMEOUT_S", "SIE_MAX_QUEUE", "SIE_DEVICE", "SIE_HOST", "SIE_PORT",
            "SIE_STATELESS_HTTP", "SIE_TRANSPORT"} <= known
    Settings.model_validate({"drain_timeout_s": drain, "request_timeout_s": request})


def test_auth_and_allowed_hosts():
    docs = render(VARIANTS["ingress"])
    deployment = one(docs, "Deployment")
    env = env_of(deployment)
    hosts = json.loads(env["SIE_ALLOWED_HOSTS"])
    svc = f"{FULLNAME}.{NAMESPACE}.svc.cluster.local"
    assert {FULLNAME, f"{FULLNAME}:8080", svc, f"{svc}:8080", "$(POD_IP):8080", "sie-mcp.example.com"} <= set(hosts)
    names = [e["name"] for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]]
    assert names.index("POD_IP") < names.index("SIE_ALLOWED_HOSTS")  # the kubelet expands $(POD_IP) in order
    # The token is a file from a Secret: generated by the chart by default, or the operator's own.
    secret = one(docs, "Secret")
    assert env["SIE_AUTH_TOKEN_FILE"] == "/etc/sie-mcp/auth/token" and len(secret["data"]["token"]) > 40
    volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
    assert volumes["auth"]["secret"]["secretName"] == secret["metadata"]["name"]
    own = render(None, "auth.existingSecret=mine")
    assert "Secret" not in by_kind(own)
    assert {v["name"]: v for v in one(own, "Deployment")["spec"]["template"]["spec"]["volumes"]}["auth"]["secret"][
        "secretName"] == "mine"
    off = env_of(one(render(None, "auth.enabled=false"), "Deployment"))
    assert "SIE_AUTH_TOKEN_FILE" not in off


def test_http_addon_scale_to_zero():
    docs = render(VARIANTS["http-addon"])
    route, scaled, service = one(docs, "InterceptorRoute"), one(docs, "ScaledObject"), one(docs, "Service")
    assert route["apiVersion"] == "http.keda.sh/v1beta1"
    assert route["spec"]["target"] == {"service": service["metadata"]["name"], "port": service["spec"]["ports"][0]["port"]}
    assert route["spec"]["rules"] == [{"hosts": ["sie-mcp.internal.example.com"]}]
    assert route["spec"]["timeouts"] == {"readiness": "240s", "request": "420s"}
    assert scaled["spec"]["minReplicaCount"] == 0
    triggers = {t["type"]: t for t in scaled["spec"]["triggers"]}
    assert set(triggers) == {"prometheus", "external-push"}
    assert triggers["external-push"]["metadata"] == {"scalerAddress": "keda-add-ons-http-external-scaler.keda:9090",
                                                     "interceptorRoute": route["metadata"]["name"]}
    assert "sie-mcp.internal.example.com" in json.loads(env_of(one(docs, "Deployment"))["SIE_ALLOWED_HOSTS"])
    assert "HTTPScaledObject" not in by_kind(docs)  # deprecated since add-on v0.14


def test_gpu_variant():
    docs = render(VARIANTS["gpu"])
    deployment = one(docs, "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert container["image"].endswith("-cuda")
    assert env_of(deployment)["SIE_DEVICE"] == "cuda"
    assert pod["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
    assert pod["tolerations"][0]["key"] == "nvidia.com/gpu"
    cpu = one(render(), "Deployment")["spec"]["template"]["spec"]["containers"][0]
    assert "nvidia.com/gpu" not in cpu["resources"].get("limits", {}) and not cpu["image"].endswith("-cuda")


def test_model_cache_prefetch_and_catalog():
    docs = render(VARIANTS["cpu"], "catalog.models[0].id=mine", "catalog.models[0].source=hf:org/mine")
    deployment = one(docs, "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    (init,) = pod["initContainers"]
    assert init["args"][:3] == ["download", "all-MiniLM-L6-v2", "bge-small-en-v1.5"]
    assert init["image"] == pod["containers"][0]["image"]
    claim = one(docs, "PersistentVolumeClaim")
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["model-cache"]["persistentVolumeClaim"]["claimName"] == claim["metadata"]["name"]
    catalog = yaml.safe_load(one(docs, "ConfigMap")["data"]["catalog.yaml"])
    assert catalog == {"models": [{"id": "mine", "source": "hf:org/mine"}]}
    assert env_of(deployment)["SIE_CATALOG"] == "/etc/sie-mcp/catalog.yaml"


# (kind, values that enable it): each optional part renders only when enabled.
OPTIONAL = [
    ("ScaledObject", ["autoscaling.keda.enabled=true", "autoscaling.keda.prometheus.serverAddress=http://p:9090"]),
    ("InterceptorRoute", ["autoscaling.httpAddon.enabled=true"]),
    ("ServiceMonitor", ["metrics.serviceMonitor.enabled=true"]),
    ("Ingress", ["ingress.enabled=true"]),
    ("NetworkPolicy", ["networkPolicy.enabled=true"]),
    ("PersistentVolumeClaim", ["data.persistence.enabled=true"]),
    ("ConfigMap", ["grafana.dashboard.enabled=true"]),
]


@pytest.mark.parametrize("kind,sets", OPTIONAL, ids=[k for k, _ in OPTIONAL])
def test_optional_parts_render_only_when_enabled(kind, sets):
    assert kind not in by_kind(render())
    assert len(by_kind(render(None, *sets))[kind]) == 1


def test_cpu_hpa_when_keda_is_off():
    hpa = one(render(), "HorizontalPodAutoscaler")
    assert hpa["spec"]["scaleTargetRef"]["name"] == FULLNAME
    assert hpa["spec"]["metrics"][0]["resource"]["name"] == "cpu"
    fixed = render(None, "autoscaling.hpa.enabled=false", "replicaCount=3")
    assert "HorizontalPodAutoscaler" not in by_kind(fixed) and one(fixed, "Deployment")["spec"]["replicas"] == 3


@pytest.mark.parametrize("sets,message", [
    (["autoscaling.keda.enabled=true"], "needs autoscaling.keda.prometheus.serverAddress"),
    (["autoscaling.minReplicas=0"], "minReplicas 0 needs autoscaling.httpAddon.enabled"),
    (["server.drainTimeoutS=60"], "drainTimeoutS must exceed server.requestTimeoutS"),
    (["terminationGracePeriodSeconds=70"], "terminationGracePeriodSeconds must exceed"),
    (["autoscaling.maxReplicas=1", "autoscaling.minReplicas=2"], "maxReplicas must be at least"),
    (["gpu.enabled=true", "server.device=cpu"], "the GPU would sit idle"),
    (["autoscaling.keda.enabled=yes"], "schema"),  # values.schema.json: a string where a boolean goes
    (["autoscaling.keda.threshhold=8"], "additional properties 'threshhold' not allowed"),
], ids=["keda-no-prometheus", "zero-without-addon", "drain-vs-request", "grace-vs-drain", "min-max", "gpu-cpu",
        "schema-type", "schema-unknown"])
def test_contradictions_fail_the_render(sets, message):
    assert message in render_error(*sets)


def test_every_value_is_documented_in_the_schema():
    schema = json.loads((CHART / "values.schema.json").read_text())
    values = yaml.safe_load((CHART / "values.yaml").read_text())

    def walk(v, s, path):
        if isinstance(v, dict) and "properties" in s:
            assert set(v) == set(s["properties"]), path
            for k, x in v.items():
                walk(x, s["properties"][k], f"{path}.{k}")
        else:
            assert s.get("description"), f"{path} has no description"

    walk(values, schema, "values")


def test_dashboard_uses_only_exported_metrics_and_their_labels():
    dashboard = json.loads((CHART / "dashboards" / "sie-mcp.json").read_text())
    series = exported_series()
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    assert len(exprs) >= 8
    used = set()
    for expr in exprs:
        names = set(re.findall(r"\bsie_[a-z_]+", expr))
        assert names and names <= set(series), f"{expr}: {names - set(series)} not exported"
        used |= names
        labels = set().union(*(series[n] for n in names)) | {"le", "namespace", "service"}
        for group in re.findall(r"by \(([^)]*)\)", expr):
            assert {x.strip() for x in group.split(",")} <= labels, expr
    # The dashboard covers queue depth, latency by phase, batch tokens, loads/evictions, resident bytes, errors.
    assert {"sie_tool_queue_depth", "sie_request_phase_seconds_bucket", "sie_batch_tokens_sum",
            "sie_model_loads_total", "sie_model_evictions_total", "sie_model_resident_bytes",
            "sie_errors_total"} <= used
    rendered = one(render(None, "grafana.dashboard.enabled=true"), "ConfigMap")
    assert json.loads(rendered["data"]["sie-mcp.json"]) == dashboard
    assert rendered["metadata"]["labels"]["grafana_dashboard"] == "1"


def test_the_tools_value_becomes_sie_tools():
    """`server.tools` narrows the tools every replica exposes (sie_mcp/declare.py `--tools`)."""
    (deployment,) = [d for d in render(None, "server.tools={search,index_documents}") if d["kind"] == "Deployment"]
    env = {e["name"]: e.get("value") for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["SIE_TOOLS"] == "search,index_documents"
    (default,) = [d for d in render(None) if d["kind"] == "Deployment"]
    assert "SIE_TOOLS" not in {e["name"] for e in default["spec"]["template"]["spec"]["containers"][0]["env"]}


# --- pools and the router (charts/sie-mcp/ci/router-values.yaml; docs/deploy.md) ---------------------------


def router_config(docs: list[dict]) -> tuple[str, str]:
    data = next(d for d in by_kind(docs)["ConfigMap"] if d["metadata"]["name"] == f"{FULLNAME}-router")["data"]
    return data["haproxy.cfg"], data["models.map"]


def test_each_pool_gets_its_deployment_headless_service_and_scaled_object():
    docs = render(VARIANTS["router"])
    kinds = by_kind(docs)
    deployments = {d["metadata"]["name"]: d for d in kinds["Deployment"]}
    assert set(deployments) == {f"{FULLNAME}-cpu", f"{FULLNAME}-gpu", f"{FULLNAME}-router"}
    services = {s["metadata"]["name"]: s for s in kinds["Service"]}
    scaled = {s["metadata"]["name"]: s for s in kinds["ScaledObject"]}
    assert set(scaled) == {f"{FULLNAME}-cpu", f"{FULLNAME}-gpu"}
    for pool, models, threshold, max_replicas in (("cpu", ["all-MiniLM-L6-v2", "bge-small-en-v1.5"], "8", 4),
                                                  ("gpu", ["bge-m3", "bge-reranker-v2-m3"], "4", 3)):
        name = f"{FULLNAME}-{pool}"
        deployment, service, so = deployments[name], services[name], scaled[name]
        pod = deployment["spec"]["template"]
        assert service["spec"]["clusterIP"] == "None"
        assert service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]
        assert service["spec"]["selector"]["sie-mcp/pool"] == pool
        assert service["spec"]["selector"].items() <= pod["metadata"]["labels"].items()
        assert "replicas" not in deployment["spec"]  # KEDA owns it
        # Its own ScaledObject, on its own pods' queue depth (the pool's Service is the target's service label).
        assert so["spec"]["scaleTargetRef"]["name"] == name and so["spec"]["maxReplicaCount"] == max_replicas
        (trigger,) = so["spec"]["triggers"]
        assert f'service="{name}"' in trigger["metadata"]["query"] and trigger["metadata"]["threshold"] == threshold
        env = env_of(deployment)
        assert env["SIE_STATELESS_HTTP"] == "true"  # any pod of the pool can take any call the router sends
        assert env["SIE_CATALOG"] == "/etc/sie-mcp/catalog.yaml"
        catalog = next(c for c in kinds["ConfigMap"] if c["metadata"]["name"] == f"{name}-catalog")
        assert [m["id"] for m in yaml.safe_load(catalog["data"]["catalog.yaml"])["models"]] == models
        volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
        assert volumes["catalog"]["configMap"]["name"] == f"{name}-catalog"
        assert json.loads(env["SIE_PRELOAD"]) == models[:1]  # the pinned entry
    gpu = deployments[f"{FULLNAME}-gpu"]["spec"]["template"]["spec"]
    assert gpu["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert gpu["containers"][0]["image"].endswith("-cuda")
    assert env_of(deployments[f"{FULLNAME}-gpu"])["SIE_DEVICE"] == "cuda"
    assert gpu["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
    assert gpu["tolerations"][0]["key"] == "nvidia.com/gpu"
    assert gpu["initContainers"][0]["args"][:3] == ["download", "bge-m3", "bge-reranker-v2-m3"]
    assert env_of(deployments[f"{FULLNAME}-gpu"])["SIE_MEMORY_BUDGET"] == "20GiB"
    cpu = deployments[f"{FULLNAME}-cpu"]["spec"]["template"]["spec"]
    assert "initContainers" not in cpu and "nodeSelector" not in cpu
    # Clients keep calling the release's Service, which now selects the router; the ServiceMonitor's selector
    # (the server labels) does not match the router's Service, so HAProxy is never scraped as a server.
    front, router = services[FULLNAME], deployments[f"{FULLNAME}-router"]
    assert front["spec"]["selector"].items() <= router["spec"]["template"]["metadata"]["labels"].items()
    server_selector = one(render(VARIANTS["servicemonitor"]), "ServiceMonitor")["spec"]["selector"]["matchLabels"]
    assert not server_selector.items() <= front["metadata"]["labels"].items()
    for p in ("cpu", "gpu"):
        assert server_selector.items() <= services[f"{FULLNAME}-{p}"]["metadata"]["labels"].items()
    container = router["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "haproxy:2.6"
    assert {p["name"] for p in container["ports"]} == {"http", "metrics"}
    assert "HorizontalPodAutoscaler" not in kinds
    # Without KEDA: a CPU HPA per pool, on the pool's Deployment.
    hpas = by_kind(render(VARIANTS["router"], "autoscaling.keda.enabled=false"))["HorizontalPodAutoscaler"]
    assert {(h["metadata"]["name"], h["spec"]["scaleTargetRef"]["name"], h["spec"]["maxReplicas"]) for h in hpas} == {
        (f"{FULLNAME}-cpu", f"{FULLNAME}-cpu", 4), (f"{FULLNAME}-gpu", f"{FULLNAME}-gpu", 3)}


def test_the_router_configuration_passes_haproxy_check(tmp_path):
    from sie_mcp.router import find_haproxy

    cfg, models_map = router_config(render(VARIANTS["router"]))
    assert models_map == "all-MiniLM-L6-v2 cpu\nbge-small-en-v1.5 cpu\nbge-m3 gpu\nbge-reranker-v2-m3 gpu\n"
    assert "server-template r 1-4 r-sie-mcp-cpu.sie.svc.cluster.local:8080 resolvers dns" in cfg
    assert "server-template r 1-3 r-sie-mcp-gpu.sie.svc.cluster.local:8080 resolvers dns" in cfg
    (tmp_path / "models.map").write_text(models_map)
    local = cfg.replace("/usr/local/etc/haproxy/models.map", str(tmp_path / "models.map"))
    (tmp_path / "haproxy.cfg").write_text(local)
    result = subprocess.run([find_haproxy(), "-c", "-f", str(tmp_path / "haproxy.cfg")], capture_output=True,
                            text=True, timeout=30)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("sets", [
    (),
    ("router.balanceFactor=125", "router.checkIntervalS=1", "router.defaultModel=bge-m3", "router.bufferBytes=65536",
     "router.maxConnections=100", "server.maxBodyBytes=1000000", "server.readTimeoutS=12",
     "server.requestTimeoutS=90", "server.drainTimeoutS=100", "terminationGracePeriodSeconds=120",
     "autoscaling.keda.enabled=false", "autoscaling.hpa.enabled=false", "replicaCount=2", "router.metricsPort=9101",
     "server.port=8081"),
], ids=["defaults", "changed"])
def test_the_chart_and_the_cli_render_the_same_router_configuration(sets):
    """One configuration, two renderers (a Go template cannot run Python): for the same inputs the chart's
    haproxy.cfg and models.map are sie_mcp/router.py's, character for character."""
    from sie_mcp.router import Pool, RouterConfig, render_haproxy, render_map

    docs = render(VARIANTS["router"], *sets)
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    for s in sets:  # the few --set paths above, applied to a copy of the values
        path, _, raw = s.partition("=")
        *parents, leaf = path.split(".")
        node = values
        for p in parents:
            node = node[p]
        node[leaf] = yaml.safe_load(raw)
    pools_values = yaml.safe_load(VARIANTS["router"].read_text())["pools"]
    keda = "autoscaling.keda.enabled=false" not in sets
    port = values["server"]["port"]
    pools = tuple(Pool(p["name"], tuple(m["id"] for m in p["catalog"]),
                       dns=f"{FULLNAME}-{p['name']}.{NAMESPACE}.svc.cluster.local:{port}",
                       slots=p["maxReplicas"] if keda else values["replicaCount"]) for p in pools_values)
    router, server = values["router"], values["server"]
    cfg = RouterConfig(listen=f"0.0.0.0:{port}", metrics_listen=f"0.0.0.0:{router['metricsPort']}", pools=pools,
                       map_path="/usr/local/etc/haproxy/models.map",
                       default_model=router["defaultModel"] or server["defaultEmbedModel"],
                       max_body_bytes=server["maxBodyBytes"], request_timeout_s=server["requestTimeoutS"],
                       read_timeout_s=server["readTimeoutS"], balance_factor=router["balanceFactor"],
                       check_interval_s=router["checkIntervalS"], max_connections=router["maxConnections"],
                       buffer_bytes=router["bufferBytes"], log_target="stdout")
    chart_cfg, chart_map = router_config(docs)
    assert chart_cfg == render_haproxy(cfg)
    assert chart_map == render_map(cfg)
    if sets:
        assert "hash-balance-factor 125" in chart_cfg and "str(bge-m3)" in chart_cfg and "1-2 " in chart_cfg


@pytest.mark.parametrize("sets,message", [
    (["router.enabled=true"], "router.enabled needs pools"),
    (["pools[0].name=a", "pools[0].catalog[0].id=m", "pools[0].catalog[0].source=hf:o/m"], "pools need router.enabled"),
    (["router.enabled=true", "pools[0].name=a", "pools[0].catalog[0].id=m", "pools[0].catalog[0].source=hf:o/m",
      "pools[1].name=b", "pools[1].catalog[0].id=m", "pools[1].catalog[0].source=hf:o/m"], "a model lives in one pool"),
    (["router.enabled=true", "pools[0].name=A_b", "pools[0].catalog[0].id=m", "pools[0].catalog[0].source=hf:o/m"],
     "schema"),
    (["router.enabled=true", "pools[0].name=a", "pools[0].catalog[0].id=m", "pools[0].catalog[0].source=hf:o/m",
      "pools[0].replicaz=2"], "additional properties 'replicaz' not allowed"),
], ids=["router-without-pools", "pools-without-router", "model-in-two-pools", "pool-name", "pool-unknown-field"])
def test_pool_contradictions_fail_the_render(sets, message):
    assert message in render_error(*sets)


def test_graph_store_url_comes_from_a_secret_only_when_set():
    """data.graphStore.existingSecret: SIE_GRAPH_STORE (a PostgreSQL URL with its password) from the Secret;
    unset: no variable, graphs in SQLite in the data directory."""
    default = one(render(), "Deployment")["spec"]["template"]["spec"]["containers"][0]["env"]
    assert "SIE_GRAPH_STORE" not in [e["name"] for e in default]
    env = one(render(None, "data.graphStore.existingSecret=pg-url", "data.graphStore.secretKey=dsn"),
              "Deployment")["spec"]["template"]["spec"]["containers"][0]["env"]
    ref = next(e for e in env if e["name"] == "SIE_GRAPH_STORE")["valueFrom"]["secretKeyRef"]
    assert ref == {"name": "pg-url", "key": "dsn"}
