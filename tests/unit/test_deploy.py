"""What ships in deploy/ is consistent with the code: manifests parse and reference files, Services and ports
that exist; probes hit the paths the app serves; the sidecar's Envoy config validates and is the generator's
output; the dashboard only charts metrics the router exports. No network, no cluster, no docker."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from router_extproc.config import load_config, parse_config
from router_extproc.envoy_config import ROUTER_CLUSTER, render, render_yaml
from router_extproc.metrics import Metrics
from router_extproc.dev.stack import envoy_binary

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "kubernetes"
KUSTOMIZATIONS = sorted(K8S.rglob("kustomization.yaml"))
YAML_FILES = sorted([*DEPLOY.rglob("*.yaml"), *DEPLOY.rglob("*.yml")])
K8S_CONFIG = Path("config/kubernetes.yaml")


def docs(path: Path) -> list[dict]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def objects(kustomize_dir: Path) -> list[dict]:
    """The objects a kustomization lists (without running kustomize)."""
    k = yaml.safe_load((kustomize_dir / "kustomization.yaml").read_text())
    out: list[dict] = []
    for res in k.get("resources", []):
        p = kustomize_dir / res
        out += objects(p) if p.is_dir() else docs(p)
    return out


def find(objs: list[dict], kind: str, name: str | None = None) -> list[dict]:
    return [o for o in objs if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)]


def router_config(kustomize_dir: Path):
    return parse_config(yaml.safe_load((kustomize_dir / "files" / "config.yaml").read_text()),
                        source=ROOT / "config" / "kubernetes.yaml")


def test_there_is_something_to_check():
    assert {p.parent.name for p in KUSTOMIZATIONS} == {"base", "envoy-gateway"}
    assert (DEPLOY / "Dockerfile").exists() and (DEPLOY / "Dockerfile.gpu").exists()


@pytest.mark.parametrize("path", YAML_FILES, ids=lambda p: str(p.relative_to(DEPLOY)))
def test_every_yaml_file_parses(path):
    assert docs(path), f"{path} is empty"


@pytest.mark.parametrize("kdir", [p.parent for p in KUSTOMIZATIONS], ids=lambda p: p.name)
def test_kustomization_references_files_that_exist(kdir):
    k = yaml.safe_load((kdir / "kustomization.yaml").read_text())
    for res in k.get("resources", []):
        assert (kdir / res).exists(), f"{kdir.name}: resource {res} missing"
    for gen in k.get("configMapGenerator", []):
        for entry in gen.get("files", []):
            path = entry.split("=", 1)[-1]
            assert (kdir / path).is_file(), f"{kdir.name}: configMapGenerator {gen['name']}: {path} missing; " \
                                            "run `make deploy-configs`"
    for o in objects(kdir):
        assert {"apiVersion", "kind", "metadata"} <= o.keys(), o


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl not installed")
@pytest.mark.parametrize("kdir", [p.parent for p in KUSTOMIZATIONS], ids=lambda p: p.name)
def test_kustomize_builds_offline(kdir):
    proc = subprocess.run(["kubectl", "kustomize", str(kdir)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    built = [d for d in yaml.safe_load_all(proc.stdout) if d]
    # Generated ConfigMap names get a hash suffix, and kustomize rewrites the Deployment's references.
    cms = {o["metadata"]["name"] for o in built if o["kind"] == "ConfigMap"}
    for dep in [o for o in built if o["kind"] == "Deployment" and o["metadata"]["name"] == "router-extproc"]:
        for vol in dep["spec"]["template"]["spec"]["volumes"]:
            if "configMap" in vol:
                assert vol["configMap"]["name"] in cms


@pytest.mark.parametrize("kdir", [K8S / "base", K8S / "envoy-gateway"], ids=lambda p: p.name)
def test_configmap_copies_are_up_to_date(kdir):
    assert (kdir / "files" / "config.yaml").read_text() == (ROOT / K8S_CONFIG).read_text(), "make deploy-configs"
    assert ((kdir / "files" / "cache" / "milvus-cluster.yaml").read_text()
            == (ROOT / "config" / "cache" / "milvus-cluster.yaml").read_text()), "make deploy-configs"


def test_sidecar_envoy_config_is_the_generator_output(monkeypatch):
    monkeypatch.chdir(ROOT)
    expected = render_yaml(load_config(K8S_CONFIG))
    assert (ROOT / "envoy" / "envoy-kubernetes.yaml").read_text() == expected, "make deploy-configs"
    assert (K8S / "base" / "files" / "envoy.yaml").read_text() == expected, "make deploy-configs"


def test_sidecar_envoy_config_passes_envoy_validate():
    proc = subprocess.run([envoy_binary(), "--mode", "validate", "-c", str(K8S / "base" / "files" / "envoy.yaml"),
                           "--log-level", "error", "--use-dynamic-base-id"], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def _container(objs: list[dict], name: str) -> dict:
    dep = find(objs, "Deployment", "router-extproc")[0]
    return next(c for c in dep["spec"]["template"]["spec"]["containers"] if c["name"] == name)


def _port(container: dict, name: str) -> int:
    return next(p["containerPort"] for p in container["ports"] if p["name"] == name)


@pytest.mark.parametrize("kdir", [K8S / "base", K8S / "envoy-gateway"], ids=lambda p: p.name)
def test_router_probes_and_ports_match_the_router_config(kdir):
    cfg = router_config(kdir)
    objs = objects(kdir)
    router = _container(objs, "router")
    assert _port(router, "grpc") == cfg.server.grpc_port
    assert _port(router, "metrics") == cfg.server.metrics_port
    # kubelet connects to the pod IP: the ops port listens on all interfaces. The ext_proc port has no auth of its
    # own: loopback for the sidecar; the gateway form listens on the Service behind a NetworkPolicy.
    assert cfg.server.metrics_host == "0.0.0.0" and cfg.server.grpc_host == "127.0.0.1"
    if kdir.name == "envoy-gateway":
        assert router["args"][3:] == ["--host", "0.0.0.0"]
    else:
        assert "--host" not in router["args"]
    # Credentials come from a Secret, never from the ConfigMap.
    secrets = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in router["env"] if "valueFrom" in e}
    assert {"ROUTER_EXTPROC_ADMIN_TOKEN", "MILVUS_PASSWORD"} <= set(secrets)
    milvus = yaml.safe_load((kdir / "files" / "cache" / "milvus-cluster.yaml").read_text())
    auth = milvus["connection"]["auth"]
    assert not auth.get("password") and not auth.get("token") and auth["password_env"] == "MILVUS_PASSWORD"
    assert router["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "metrics"}
    assert router["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "metrics"}
    assert router["args"][:3] == ["serve", "--config", "/etc/router-extproc/config.yaml"]
    # The cache backend file lands where the router config's relative backend_config_path points.
    dep = find(objs, "Deployment", "router-extproc")[0]
    pod = dep["spec"]["template"]["spec"]
    mount = next(m for m in router["volumeMounts"] if m["name"] == "config")
    vol = next(v for v in pod["volumes"] if v["name"] == "config")
    paths = {i["path"] for i in vol["configMap"]["items"]}
    rel = yaml.safe_load((kdir / "files" / "config.yaml").read_text())["semantic_cache"]["backend_config_path"]
    assert mount["mountPath"] == "/etc/router-extproc" and {"config.yaml", rel} <= paths
    # Drain fits: preStop sleep + the router's grace period stay under the pod's termination grace.
    pre_stop = int(router["lifecycle"]["preStop"]["exec"]["command"][-1])
    assert pod["terminationGracePeriodSeconds"] > cfg.server.grace_period_s + pre_stop
    for c in pod["containers"]:
        assert c["resources"]["requests"] and c["resources"]["limits"], c["name"]


def test_sidecar_ports_and_service_match_envoy():
    cfg = router_config(K8S / "base")
    objs = objects(K8S / "base")
    envoy = _container(objs, "envoy")
    assert envoy["image"].startswith("envoyproxy/envoy:v1.40")
    assert envoy["args"][:2] == ["-c", "/etc/envoy/envoy.yaml"]
    assert _port(envoy, "http") == cfg.envoy.listen_port == 8801
    assert (cfg.envoy.router_host, cfg.envoy.router_port) == ("127.0.0.1", cfg.server.grpc_port)
    # Envoy outlives the router's drain, so in-flight requests still have a proxy.
    router = _container(objs, "router")
    envoy_sleep = int(envoy["lifecycle"]["preStop"]["exec"]["command"][-1])
    router_sleep = int(router["lifecycle"]["preStop"]["exec"]["command"][-1])
    assert envoy_sleep >= router_sleep + cfg.server.grace_period_s
    svc = find(objs, "Service", "router-extproc")[0]
    assert {p["name"]: p["port"] for p in svc["spec"]["ports"]} == {"http": 8801, "metrics": 9190}
    named = {p["name"] for c in (envoy, router) for p in c["ports"]}
    assert {p["targetPort"] for p in svc["spec"]["ports"]} <= named
    kinds = {o["kind"] for o in objs}
    assert {"Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget"} <= kinds
    hpa = find(objs, "HorizontalPodAutoscaler")[0]
    assert hpa["spec"]["scaleTargetRef"]["name"] == "router-extproc"
    assert hpa["spec"]["metrics"][0]["resource"]["name"] == "cpu"
    pdb = find(objs, "PodDisruptionBudget")[0]
    assert pdb["spec"]["selector"]["matchLabels"] == \
        find(objs, "Deployment", "router-extproc")[0]["spec"]["selector"]["matchLabels"]


def test_envoy_gateway_policy_targets_the_gateway_and_the_router_service():
    objs = objects(K8S / "envoy-gateway")
    cfg = router_config(K8S / "envoy-gateway")
    [policy] = find(objs, "EnvoyExtensionPolicy")
    assert policy["apiVersion"] == "gateway.envoyproxy.io/v1alpha1"
    for ref in policy["spec"]["targetRefs"]:
        assert find(objs, ref["kind"], ref["name"]), f"target {ref} does not exist"
    [ext] = policy["spec"]["extProc"]
    mode = ext["processingMode"]
    assert mode["request"]["body"] == "Buffered" and "response" in mode and mode["allowModeOverride"] is True
    assert ext["failOpen"] is False
    # the gateway's message timeout is the one the router config's cache waits were checked against
    assert ext["messageTimeout"] == f"{cfg.envoy.message_timeout_ms / 1000:g}s"
    for ref in ext["backendRefs"]:
        [svc] = find(objs, "Service", ref["name"])
        assert ref["port"] in {p["port"] for p in svc["spec"]["ports"]}
        assert ref["port"] == cfg.server.grpc_port


def test_envoy_gateway_routes_one_rule_per_model_then_the_default():
    objs = objects(K8S / "envoy-gateway")
    cfg = router_config(K8S / "envoy-gateway")
    [route] = find(objs, "HTTPRoute")
    [gw] = find(objs, "Gateway")
    assert route["spec"]["parentRefs"][0]["name"] == gw["metadata"]["name"]
    assert find(objs, "GatewayClass", gw["spec"]["gatewayClassName"])
    by_model = {}
    for rule in route["spec"]["rules"]:
        for ref in rule["backendRefs"]:
            [svc] = find(objs, "Service", ref["name"])
            assert ref["port"] in {p["port"] for p in svc["spec"]["ports"]}
        headers = rule["matches"][0].get("headers")
        if headers:
            assert headers[0]["name"] == cfg.route_header
            by_model[headers[0]["value"]] = rule["backendRefs"][0]
        else:
            default = rule["backendRefs"][0]
    assert set(by_model) == {m.name for m in cfg.models}
    for m in cfg.models:  # the rule's Service is the endpoint the router config names for that model
        assert (f"{by_model[m.name]['name']}.", by_model[m.name]["port"]) == (m.host.split(".")[0] + ".", m.port)
    assert default == by_model[cfg.default_model]


def _exported_names() -> set[str]:
    """Every series name the registry can expose (labelled families have no samples until first use)."""
    suffixes = {"counter": ("_total", "_created"), "gauge": ("",), "histogram": ("_bucket", "_count", "_sum", "_created"),
                "summary": ("", "_count", "_sum", "_created")}
    return {family.name + sfx for family in Metrics().registry.collect() for sfx in suffixes[family.type]}


def test_grafana_dashboard_only_uses_exported_metrics():
    dash = json.loads((DEPLOY / "grafana" / "router-extproc.json").read_text())
    exported = _exported_names()
    exprs = [t["expr"] for p in dash["panels"] for t in p.get("targets", [])]
    assert len(exprs) >= 15
    used = set()
    for expr in exprs:
        names = set(re.findall(r"([a-zA-Z_:][a-zA-Z0-9_:]*)\s*\{", expr))
        assert names, f"no metric in {expr!r}"
        assert names <= exported, f"{expr!r} uses {names - exported}"
        used |= names
    # The list: requests, cache hit/lookup latency, signals, stream errors, upstream, backend up, reloads.
    for must in ("router_requests_total", "router_cache_lookups_total", "router_cache_lookup_duration_seconds_bucket",
                 "router_signal_duration_seconds_bucket", "router_extproc_stream_errors_total",
                 "router_upstream_responses_total", "router_upstream_time_to_first_byte_seconds_bucket",
                 "router_cache_backend_up", "router_config_reloads_total"):
        assert must in used, must
    assert any("histogram_quantile(0.99" in e for e in exprs) and any("histogram_quantile(0.5" in e for e in exprs)


def test_milvus_compose_runs_standalone_with_its_dependencies():
    compose = yaml.safe_load((DEPLOY / "docker-compose.milvus.yml").read_text())
    services = compose["services"]
    assert set(services) == {"etcd", "minio", "milvus"}
    assert {"19530:19530", "9091:9091"} <= set(services["milvus"]["ports"])
    assert services["milvus"]["command"][-1] == "standalone"


@pytest.mark.parametrize("name", ["Dockerfile", "Dockerfile.gpu"])
def test_dockerfile_copies_paths_that_exist(name):
    text = (DEPLOY / name).read_text()
    for line in text.splitlines():
        if line.startswith("COPY ") and "--from=" not in line:
            for src in line.split()[1:-1]:
                if src.startswith("build/"):
                    continue  # the prebuilt-models context path, documented in the header
                assert (ROOT / src).exists(), f"{name}: COPY {src}"
    assert 'ENTRYPOINT ["router-extproc"]' in text
    if name == "Dockerfile.gpu":
        assert "nvidia/cuda" in text and "onnxruntime-gpu" in text and ".[gpu]" in text


@pytest.mark.parametrize("workers", [1, 3])
def test_the_router_cluster_has_one_endpoint_per_worker(workers):
    cfg = parse_config({"models": [{"name": "m", "endpoint": "127.0.0.1:9000"}], "default_model": "m",
                        "server": {"grpc_listen": "127.0.0.1:50051", "workers": workers},
                        "signals": {"category": False, "complexity": False, "jailbreak": False, "pii": False}},
                       source=Path("inline.yaml"))
    [cluster] = [c for c in render(cfg)["static_resources"]["clusters"] if c["name"] == ROUTER_CLUSTER]
    eps = cluster["load_assignment"]["endpoints"][0]["lb_endpoints"]
    assert [e["endpoint"]["address"]["socket_address"]["port_value"] for e in eps] == \
        [50051 + i for i in range(workers)]
    assert cluster["lb_policy"] == "ROUND_ROBIN"


def test_only_the_gateways_envoy_may_reach_the_router_grpc_port():
    objs = objects(K8S / "envoy-gateway")
    [policy] = find(objs, "NetworkPolicy")
    dep = find(objs, "Deployment", "router-extproc")[0]
    assert policy["spec"]["podSelector"]["matchLabels"] == dep["spec"]["selector"]["matchLabels"]
    grpc_rules = [r for r in policy["spec"]["ingress"] if {"port": "grpc", "protocol": "TCP"} in r["ports"]]
    [rule] = grpc_rules
    assert rule["from"] and all("podSelector" in f for f in rule["from"])


def test_the_gateway_strips_client_route_headers_and_routes_only_api_paths():
    from router_extproc.openai import MODELS_PATH, ROUTED_PATHS

    objs = objects(K8S / "envoy-gateway")
    cfg = router_config(K8S / "envoy-gateway")
    [ctp] = find(objs, "ClientTrafficPolicy")
    assert cfg.route_header in ctp["spec"]["headers"]["earlyRequestHeaders"]["remove"]
    assert ctp["spec"]["path"]["escapedSlashesAction"] == "RejectRequest"
    [route] = find(objs, "HTTPRoute")
    matches = [m for rule in route["spec"]["rules"] for m in rule["matches"]]
    assert {m["path"]["type"] for m in matches} == {"Exact"}
    assert {(m["path"]["value"], m["method"]) for m in matches} == {
        *((p, "POST") for p in ROUTED_PATHS), (MODELS_PATH, "GET")}


def test_the_replicas_compose_runs_two_routers_on_the_shared_milvus():
    from router_extproc.config_cache import load_milvus_config

    compose = yaml.safe_load((DEPLOY / "docker-compose.replicas.yml").read_text())
    services = compose["services"]
    routers = [n for n in services if n.startswith("router-")]
    assert len(routers) >= 2
    for name in routers:
        mounts = {m.split(":")[1]: DEPLOY / m.split(":")[0] for m in services[name]["volumes"]}
        for path in mounts.values():
            assert path.exists(), path
        mc = load_milvus_config(mounts["/etc/router-extproc/cache/milvus-cluster.yaml"])
        assert mc.uri == "http://milvus:19530" and not mc.is_lite and mc.invalidation_poll_s <= 1.0
        assert services[f"envoy-{name.split('-')[1]}"]["network_mode"] == f"service:{name}"  # the sidecar shape
    assert compose["name"] == yaml.safe_load((DEPLOY / "docker-compose.milvus.yml").read_text())["name"]
