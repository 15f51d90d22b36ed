"""Monitoring: kube-prometheus-stack values (Prometheus selecting every namespace's monitors and rules, retention
and storage from config, Grafana's admin password from an existing Secret), the serving PodMonitor and its
relabelling, the KServe ServiceMonitor, the DCGM exporter pickup, images pinned and on the mirror in air-gap
mode, and the Grafana password never in the plan."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import HARBOR_CHAIN_NAMESPACES, Program, minimal, of_kind, releases
from promql import exporters
from schemas import chart_defaults, validate_helm_values, validate_object

from components import namespaces
from components.catalog import CATALOG
from components.monitoring import GRAFANA_ADMIN_SECRET, NODE_EXPORTER_IMAGE, label_source
from paictl.cli import main
from program.offline import Registered

PASSWORD = "Gr4fana-S3cret-xyz"
MIRROR = "harbor.example.com/mirror"
PIN = CATALOG.chart("kube-prometheus-stack")
PUBLIC_REGISTRIES = ("docker.io", "quay.io", "ghcr.io", "registry.k8s.io", "nvcr.io", "us-central1-docker.pkg.dev")
SUBCHARTS = ("grafana.", "kube-state-metrics.", "prometheus-node-exporter.")
Runner = Callable[[str], list[Registered]]


def plan(run_program: Program, registry: dict[str, Any] | None = None, **overrides: Any) -> list[Registered]:
    values = minimal(**{"monitoring": {}, "tenants": [{"name": "team-a"}, {"name": "team-b"}],
                        **({"registry": registry} if registry else {}), **overrides})
    return run_program(values, {"grafanaAdminPassword": PASSWORD})


def stack_release(records: list[Registered]) -> dict[str, Any]:
    (found,) = [r for r in releases(records) if r["chart"].endswith("kube-prometheus-stack")]
    return found


def custom(records: list[Registered], kind: str) -> dict[str, Any]:
    (found,) = [r for r in records if r.type == f"kubernetes:monitoring.coreos.com/v1:{kind}"]
    assert "kubernetes:helm.sh/v3:Release::platform-monitoring-release" in found.dependencies
    validate_object(found.inputs, "1.33")
    return found.inputs


def at(values: dict[str, Any], path: str) -> Any:
    for key in path.split("."):
        values = values[key]
    return values


def strings(value: Any) -> list[str]:
    if isinstance(value, dict):
        return [s for v in value.values() for s in strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in strings(v)]
    return [value] if isinstance(value, str) else []


def test_values_exist_in_the_reference_chart(run_program: Program) -> None:
    release = stack_release(plan(run_program, registry={"mirror": MIRROR, "pullSecret": "mirror-pull"}))
    assert (release["version"], release["namespace"]) == (PIN.version, namespaces.MONITORING)
    validate_helm_values("kube-prometheus-stack", release["version"], release["values"])


def test_prometheus_selects_monitors_and_rules_of_every_namespace(run_program: Program) -> None:
    """The DCGM exporter's ServiceMonitor (made by the GPU Operator, without the chart's release label) and
    our PodMonitor and rules are all picked up."""
    spec = stack_release(plan(run_program))["values"]["prometheus"]["prometheusSpec"]
    defaults = chart_defaults("kube-prometheus-stack", PIN.version)["prometheus"]["prometheusSpec"]
    for kind in ("serviceMonitor", "podMonitor", "rule", "probe", "scrapeConfig"):
        assert defaults[f"{kind}SelectorNilUsesHelmValues"] is True
        assert spec[f"{kind}SelectorNilUsesHelmValues"] is False, kind
        assert f"{kind}NamespaceSelector" not in spec and defaults[f"{kind}NamespaceSelector"] == {}
        assert f"{kind}Selector" not in spec


def test_dcgm_exporter_service_monitor_is_on_and_keeps_workload_labels(run_stack: Runner) -> None:
    records = run_stack("vks-prod")
    (operator,) = [r for r in releases(records) if r["chart"].endswith("gpu-operator")]
    monitor = operator["values"]["dcgmExporter"]["serviceMonitor"]
    assert {k: monitor[k] for k in ("enabled", "honorLabels")} == {"enabled": True, "honorLabels": True}
    # The node label the dashboards and alerts group by is set on every DCGM series, from the pod's node.
    (relabeling,) = monitor["relabelings"]
    assert relabeling["targetLabel"] == exporters()["dcgm-exporter"]["host_label"]
    assert relabeling["sourceLabels"] == ["__meta_kubernetes_pod_node_name"]
    assert stack_release(records)["values"]["prometheus"]["prometheusSpec"][
        "serviceMonitorSelectorNilUsesHelmValues"] is False


def test_node_exporter_keeps_its_charts_tolerations_on_tainted_gpu_pools(run_stack: Runner) -> None:
    """The node exporter runs on every node, GPU pools tainted nvidia.com/gpu:NoSchedule included, through its
    chart's default toleration of every NoSchedule taint (prometheus-community/helm-charts@
    prometheus-node-exporter-4.56.1, the subchart of kube-prometheus-stack 88.5.3: charts/prometheus-node-exporter/
    values.yaml `tolerations: [{effect: NoSchedule, operator: Exists}]`); the platform must not replace it."""
    values = stack_release(run_stack("vks-cluster"))["values"]
    assert "tolerations" not in values.get("prometheus-node-exporter", {})


def test_retention_and_storage_come_from_config(run_program: Program) -> None:
    records = plan(run_program, monitoring={"retention": "30d", "storageSize": "200Gi"},
                   cluster={"target": "vks", "kubernetesVersion": "1.33", "storageClass": "vsan-default"})
    spec = stack_release(records)["values"]["prometheus"]["prometheusSpec"]
    assert spec["retention"] == "30d"
    assert spec["storageSpec"]["volumeClaimTemplate"]["spec"] == {
        "accessModes": ["ReadWriteOnce"], "storageClassName": "vsan-default",
        "resources": {"requests": {"storage": "200Gi"}}}


def test_grafana_admin_password_comes_from_an_existing_secret_and_never_shows(run_program: Program) -> None:
    records = plan(run_program)
    grafana = stack_release(records)["values"]["grafana"]
    assert grafana["admin"] == {"existingSecret": GRAFANA_ADMIN_SECRET, "userKey": "admin-user",
                                "passwordKey": "admin-password"}
    assert "adminPassword" not in grafana
    (secret,) = [s for s in of_kind(records, "Secret") if s["metadata"]["name"] == GRAFANA_ADMIN_SECRET]
    assert secret["metadata"]["namespace"] == namespaces.MONITORING
    assert secret["stringData"]["admin-password"] == "[secret]"
    assert PASSWORD not in json.dumps([r.inputs for r in records])


def test_password_never_in_paictl_plan_output_or_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A stack file's encrypted Grafana password stands in as a placeholder that `paictl plan` never prints or
    writes: stdout and every rendered file (objects and Helm values) show it masked."""
    config_file = tmp_path / "Pulumi.grafana.yaml"
    config_file.write_text(yaml.safe_dump({"config": {
        "pai:cluster": {"target": "generic", "kubernetesVersion": "1.33"}, "pai:tenants": [{"name": "team-a"}],
        "pai:monitoring": {}, "pai:grafanaAdminPassword": {"secure": "v1:AAAAencryptedgrafana"}}}))
    out = tmp_path / "out"
    assert main(["plan", "--config-file", str(config_file), "--format", "json", "--out", str(out)]) == 0
    texts = [capsys.readouterr().out] + [p.read_text() for p in out.rglob("*") if p.is_file()]
    assert len(texts) > 10
    for text in texts:
        assert "placeholder" not in text and "AAAA" not in text
    secret = yaml.safe_load((out / "monitoring" / f"secret-{GRAFANA_ADMIN_SECRET}.yaml").read_text())
    assert secret["stringData"] == {"admin-user": "[secret]", "admin-password": "[secret]"}


def test_serving_pod_monitor_labels_series_with_model_engine_and_routing_name(run_program: Program) -> None:
    spec = custom(plan(run_program), "PodMonitor")["spec"]
    assert spec["namespaceSelector"] == {"matchNames": ["team-a", "team-b"]}
    assert spec["selector"] == {"matchExpressions": [{"key": namespaces.ENGINE_LABEL, "operator": "Exists"}]}
    (endpoint,) = spec["podMetricsEndpoints"]
    assert (endpoint["port"], endpoint["path"]) == (namespaces.SERVING_PORT_NAME, "/metrics")
    relabel = {r["targetLabel"]: r["sourceLabels"] for r in endpoint["relabelings"]}
    assert relabel == {"model": ["__meta_kubernetes_pod_label_pai_io_model"],
                       "engine": ["__meta_kubernetes_pod_label_pai_io_engine"],
                       "routing_name": ["__meta_kubernetes_pod_annotation_pai_io_routing_name"]}
    assert label_source(namespaces.MODEL_LABEL) == "__meta_kubernetes_pod_label_pai_io_model"


def test_kserve_controller_is_scraped(run_program: Program) -> None:
    spec = custom(plan(run_program), "ServiceMonitor")["spec"]
    assert spec["namespaceSelector"] == {"matchNames": [namespaces.KSERVE]}
    assert spec["selector"]["matchLabels"] == {"control-plane": "kserve-controller-manager"}
    (endpoint,) = spec["endpoints"]
    assert (endpoint["port"], endpoint["scheme"], endpoint["path"]) == ("https", "https", "/metrics")


def test_monitoring_namespace_is_a_privileged_platform_namespace(run_program: Program) -> None:
    (ns,) = [n for n in of_kind(plan(run_program), "Namespace") if n["metadata"]["name"] == namespaces.MONITORING]
    assert ns["metadata"]["labels"][namespaces.PLATFORM_LABEL] == "true"
    assert ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "privileged"


def test_no_monitoring_without_its_key(run_program: Program) -> None:
    assert not [r for r in run_program(minimal()) if "monitoring" in r.type.lower()]


def test_catalog_images_match_the_reference_values() -> None:
    """Each pinned image block exists in the chart's values with that registry and repository, and its tag is
    the chart's (an empty tag there means the chart's appVersion). A subchart's values are not in the reference
    data: its tag is the one scripts/verify-charts.py found in the render of the pinned chart and its subcharts."""
    defaults = chart_defaults("kube-prometheus-stack", PIN.version)
    app_version = "v0.93.1"
    for path, image in PIN.images.items():
        if path.startswith(SUBCHARTS):
            assert image.verified == f"rendered kube-prometheus-stack@{PIN.version}", path
            continue
        block = at(defaults, path)
        assert (block["registry"], block["repository"]) == (image.registry, image.path), path
        assert image.tag == (block["tag"] or app_version), path
        assert not image.unverified, path


def test_images_are_pinned_from_the_catalog(run_program: Program) -> None:
    values = stack_release(plan(run_program))["values"]
    for path, image in PIN.images.items():
        tag = {} if image.unverified else {"tag": image.tag}  # unverified subchart tags: the subchart's default
        whole = {"distroless": False} if path == NODE_EXPORTER_IMAGE else {}  # the tag has -distroless already
        assert at(values, path) == {"registry": image.registry, "repository": image.path, **tag, **whole}, path
    assert "global" not in values


def test_air_gap_puts_every_image_and_the_chart_on_the_mirror(run_program: Program) -> None:
    release = stack_release(plan(run_program, registry={"mirror": MIRROR, "pullSecret": "mirror-pull"}))
    values = release["values"]
    assert release["chart"] == f"oci://{MIRROR}/charts/kube-prometheus-stack"
    for path, image in PIN.images.items():
        block = at(values, path)
        assert f"{block['registry']}/{block['repository']}" == f"{MIRROR}/{image.path}", path
    assert values["global"] == {"imageRegistry": MIRROR, "imagePullSecrets": [{"name": "mirror-pull"}]}
    assert not [s for s in strings(values) if s.startswith(PUBLIC_REGISTRIES)]


def test_airgap_stack_keeps_kueue_and_monitoring_on_the_mirror(run_stack: Runner) -> None:
    records = run_stack("airgap")
    mirror = "harbor.pai.prod.example.internal/mirror"
    for release in releases(records):
        if release["namespace"] in HARBOR_CHAIN_NAMESPACES:
            continue  # Harbor and what serves it come from pai:registry.bootstrap (tests/test_harbor.py)
        assert release["chart"].startswith(f"oci://{mirror}/charts/"), release["chart"]
        assert not [s for s in strings(release["values"]) if s.startswith(PUBLIC_REGISTRIES)], release["chart"]
    charts = {r["chart"].rsplit("/", 1)[-1] for r in releases(records)}
    assert {"kueue", "kube-prometheus-stack"} <= charts


def test_gpu_operator_waits_for_the_monitoring_crds(run_stack: Runner) -> None:
    release = "kubernetes:helm.sh/v3:Release::platform-gpu-operator-release"
    (operator,) = [r for r in run_stack("vks-prod") if r.key == release]
    assert "kubernetes:helm.sh/v3:Release::platform-monitoring-release" in operator.dependencies
