"""Kserve: the CRD chart, then the controller chart after it and cert-manager, in Standard (raw Deployment) mode
with no Knative and no Istio, the configured ingress class, modelcars on, and every image from the catalog (on
the mirror in air-gap mode). No allow= is passed to validate_helm_values: every path is in the chart's
values.yaml itself."""

from __future__ import annotations

import json
from typing import Any

from conftest import Program, minimal, releases
from schemas import chart_defaults, validate_helm_values

from components import namespaces
from components.catalog import CATALOG
from components.kserve import DEPLOYMENT_MODE
from program.offline import Registered

PIN = CATALOG.chart("kserve-resources")
MIRROR = "harbor.example.com/mirror"
RELEASE = "kubernetes:helm.sh/v3:Release::"


def by_chart(records: list[Registered]) -> dict[str, dict[str, Any]]:
    return {r["chart"].rsplit("/", 1)[-1]: r for r in releases(records)}


def at(values: dict[str, Any], path: str) -> Any:
    for key in path.split("."):
        values = values[key]
    return values


def chart_images(defaults: dict[str, Any], prefix: str = "") -> dict[str, str]:
    """Every image the chart's defaults name, by values path: `image` keys of blocks and `*Image` strings;
    the local-model cache blocks are left out (kserve.localmodel.enabled is false)."""
    found: dict[str, str] = {}
    for key, value in defaults.items():
        path = f"{prefix}{key}"
        if path == "kserve.localmodel":
            continue
        if isinstance(value, dict):
            if isinstance(value.get("image"), str):
                found[path] = value["image"]
            found |= chart_images(value, f"{path}.")
        elif key.endswith("Image") and isinstance(value, str):
            found[path] = value
    return found


def test_crds_then_controller_from_the_pinned_charts(run_program: Program) -> None:
    records = run_program(minimal())
    charts = by_chart(records)
    crds, controller = charts["kserve-crd"], charts["kserve-resources"]
    assert (crds["chart"], crds["version"]) == ("oci://ghcr.io/kserve/charts/kserve-crd", "v0.20.0")
    assert (controller["chart"], controller["version"]) == ("oci://ghcr.io/kserve/charts/kserve-resources", "v0.20.0")
    assert crds["namespace"] == controller["namespace"] == namespaces.KSERVE
    (record,) = [r for r in records if r.name == "platform-kserve-release"]
    assert f"{RELEASE}platform-kserve-crds" in record.dependencies
    assert f"{RELEASE}platform-cert-manager-release" in record.dependencies
    assert "kserve-runtime-configs" not in charts  # our ClusterServingRuntimes replace the defaults


def test_standard_mode_without_knative_or_istio(run_program: Program) -> None:
    values = by_chart(run_program(minimal()))["kserve-resources"]["values"]
    validate_helm_values("kserve-resources", PIN.version, values)
    controller = values["kserve"]["controller"]
    assert chart_defaults("kserve-resources", PIN.version)["kserve"]["controller"]["deploymentMode"] == "Knative"
    assert controller["deploymentMode"] == DEPLOYMENT_MODE == "Standard"
    gateway = controller["gateway"]
    assert gateway["disableIstioVirtualHost"] is True
    assert gateway["localGateway"] == {"gateway": "", "gatewayService": ""}
    assert controller["knativeAddressableResolver"] == {"enabled": False}
    assert values["kserve"]["storage"]["enableModelcar"] is True
    assert "certManager" not in values["kserve"]  # a no-op while createSharedResources is on (the default)
    assert chart_defaults("kserve-resources", PIN.version)["kserve"]["createSharedResources"] is True


def test_ingress_class_and_domain_come_from_the_cluster_config(run_program: Program) -> None:
    cluster = {"target": "generic", "kubernetesVersion": "1.33",
               "ingress": {"className": "internal-gw", "domain": "ai.example.com"}}
    gateway = by_chart(run_program(minimal(cluster=cluster)))["kserve-resources"]["values"]["kserve"]["controller"][
        "gateway"]
    assert gateway["ingressGateway"] == {"enableGatewayApi": False, "className": "internal-gw"}
    assert gateway["disableIngressCreation"] is True  # the AI gateway routes to each predictor Service
    assert gateway["domain"] == "ai.example.com"


def test_catalog_lists_every_image_of_the_chart() -> None:
    defaults = chart_defaults("kserve-resources", PIN.version)
    upstream = chart_images(defaults)
    assert set(PIN.images) == set(upstream)
    version = defaults["kserve"]["version"]
    for path, image in PIN.images.items():
        if ":" in upstream[path]:  # a full `repository:tag` default
            assert f"{image.repository}:{image.tag}".endswith(upstream[path]), path
        else:  # `kserve/<name>` on Docker Hub, an empty tag meaning kserve.version
            assert (image.repository, image.tag) == (f"docker.io/{upstream[path]}", version), path


def test_images_are_the_catalogs_without_a_mirror(run_program: Program) -> None:
    values = by_chart(run_program(minimal()))["kserve-resources"]["values"]
    assert at(values, "kserve.controller")["image"] == "docker.io/kserve/kserve-controller"
    assert at(values, "kserve.controller")["tag"] == "v0.20.0"
    assert at(values, "kserve.servingruntime.art") == {"image": "docker.io/kserve/art-explainer",
                                                       "defaultVersion": "v0.20.0"}
    assert "imagePullSecrets" not in at(values, "kserve.router")


def test_air_gap_puts_every_image_and_both_charts_on_the_mirror(run_program: Program) -> None:
    records = run_program(minimal(registry={"mirror": MIRROR, "pullSecret": "mirror-pull"}))
    charts = by_chart(records)
    assert {c["chart"] for c in charts.values() if "kserve" in c["chart"]} == {
        f"oci://{MIRROR}/charts/kserve-crd", f"oci://{MIRROR}/charts/kserve-resources"}
    values = charts["kserve-resources"]["values"]
    validate_helm_values("kserve-resources", PIN.version, values)
    for path, image in PIN.images.items():
        moved = f"{MIRROR}/{image.repository.split('/', 1)[1]}"
        rendered = at(values, path)
        assert (rendered if isinstance(rendered, str) else rendered["image"]).startswith(moved), path
    assert at(values, "kserve.controller")["imagePullSecrets"] == [{"name": "mirror-pull"}]
    # pasted with %v into the router's JSON config (inferenceservice-config): a JSON list as a string
    assert json.loads(at(values, "kserve.router")["imagePullSecrets"]) == ["mirror-pull"]
