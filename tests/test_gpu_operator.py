"""GpuOperator: the values that decide each driver mode, air-gap rewrites, licensing secrets, and the reference
chart values of every catalog version. No allow= is passed to validate_helm_values: every path set here is in
the chart's values.yaml itself, except dcgmExporter.config, which the chart documents in comments
(schemas.DOCUMENTED_IN_COMMENTS)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from conftest import Program, at, minimal, of_kind, releases, strings
from operator_releases import has_reference, operator_chart
from schemas import chart_defaults, validate_helm_values, validate_object

from components.catalog import CATALOG
from components.config import ConfigError, Gpu
from components.gpu_operator import (
    DATACENTER_DRIVER,
    GRIDD_CONF,
    NFD_IMAGE,
    NLS_TOKEN,
    gridd_conf,
    operand_images,
)
from program.offline import Registered
from validation.matrix import load_matrix

PIN = CATALOG.chart("gpu-operator")
MATRIX = load_matrix()
VERSIONS = sorted(PIN.versions)
# Releases with reference chart facts (tests/reference): the tests that need the chart's whole values run on these.
REFERENCED = [v for v in VERSIONS if has_reference(v)]
TOKEN = "TOKEN-XYZ"
PRIVATE = "harbor.example.com/nvidia/vgpu-guest-driver"
MIRROR = "harbor.example.com/mirror"
DATACENTER = {"mode": "datacenter"}
VGPU = {"mode": "vgpu", "version": "580.95.05", "image": PRIVATE, "licensing": {"featureType": 4}}
PREINSTALLED = {"mode": "preinstalled"}
MODES: dict[str, dict[str, Any]] = {"datacenter": DATACENTER, "vgpu": VGPU, "preinstalled": PREINSTALLED}
# In a vGPU VM GPU Feature Discovery labels the vGPU type, not the board (the vgpu-products check).
PRODUCTS = {"datacenter": "NVIDIA-L40S", "vgpu": "GRID-L40S-48C", "preinstalled": "NVIDIA-L40S"}


def gpu(driver: dict[str, Any], version: str = PIN.version, **fields: Any) -> dict[str, Any]:
    return {"operator": {"version": version}, "driver": driver, "products": [PRODUCTS[driver["mode"]]], **fields}


def plan(run_program: Program, driver: dict[str, Any], version: str = PIN.version,
         registry: dict[str, Any] | None = None, **fields: Any) -> list[Registered]:
    # A Kubernetes version the release supports, or the interop preflight refuses the stack (v25.3.0: 1.29-1.32).
    release = MATRIX.operator(version)
    assert release is not None
    cluster = {"target": "generic", "kubernetesVersion": release.kubernetes.max}
    values = minimal(cluster=cluster, gpu=gpu(driver, version, **fields),
                     **({"registry": registry} if registry else {}))
    secrets = {"nlsClientToken": TOKEN} if driver["mode"] == "vgpu" else None
    return run_program(values, secrets)


def release(records: list[Registered]) -> dict[str, Any]:
    """The GPU Operator's release (a stack installs others too)."""
    (found,) = [r for r in releases(records) if r["chart"].rsplit("/", 1)[-1] == "gpu-operator"]
    return found


def repositories(defaults: dict[str, Any], prefix: str = "") -> dict[str, str]:
    """Every non-empty `repository` in a chart's default values, by dotted path of its block."""
    found: dict[str, str] = {}
    for key, value in defaults.items():
        if key == "repository" and value:
            found[prefix.rstrip(".")] = value
        elif isinstance(value, dict) and key != "node-feature-discovery":
            found |= repositories(value, f"{prefix}{key}.")
    return found


# --- every mode --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("version", REFERENCED)
@pytest.mark.parametrize("mode", sorted(MODES))
def test_values_exist_in_the_reference_chart(run_program: Program, mode: str, version: str) -> None:
    records = plan(run_program, MODES[mode], version, registry={"mirror": MIRROR, "pullSecret": "mirror-pull"},
                   nodeSelector={"pai.io/gpu": "true"}, tolerations=[{"key": "gpu-only"}])
    found = release(records)
    assert (found["chart"], found["version"], found["namespace"]) == (
        f"oci://{MIRROR}/charts/gpu-operator", version, "gpu-operator")
    validate_helm_values("gpu-operator", version, found["values"])
    for obj in of_kind(records, "Namespace") + of_kind(records, "Secret") + of_kind(records, "ConfigMap"):
        validate_object(obj, "1.33")


@pytest.mark.parametrize("mode", sorted(MODES))
def test_every_mode_installs_the_rest_of_the_stack(run_program: Program, mode: str) -> None:
    found = release(plan(run_program, MODES[mode], migStrategy="mixed"))
    values = found["values"]
    for operand in ("toolkit", "devicePlugin", "gfd", "dcgmExporter"):
        assert values[operand]["enabled"] is True, operand
    # Each series gets its node as `hostname` whatever the exporter version calls it (v25.3.0's says `Hostname`).
    assert values["dcgmExporter"]["serviceMonitor"] == {"enabled": True, "honorLabels": True, "relabelings": [
        {"sourceLabels": ["__meta_kubernetes_pod_node_name"], "targetLabel": "hostname", "action": "replace"}]}
    assert values["mig"] == {"strategy": "mixed"}
    assert values["operator"]["upgradeCRD"] is True
    assert found["disableOpenapiValidation"] is True  # the chart's CRD upgrade hook asks for it
    assert (found["chart"], found["repositoryOpts"]) == ("gpu-operator", {"repo": "https://helm.ngc.nvidia.com/nvidia"})


def test_tolerations_keep_the_chart_defaults_and_node_selection_goes_to_discovery(run_program: Program) -> None:
    extra = {"key": "dedicated", "operator": "Equal", "value": "gpu", "effect": "NoSchedule"}
    values = release(plan(run_program, DATACENTER, nodeSelector={"pai.io/gpu": "true"},
                          tolerations=[extra]))["values"]
    defaults = chart_defaults("gpu-operator", PIN.version)
    assert values["daemonsets"]["tolerations"] == [*defaults["daemonsets"]["tolerations"], extra]
    worker = values["node-feature-discovery"]["worker"]
    assert worker["tolerations"] == [*defaults["node-feature-discovery"]["worker"]["tolerations"], extra]
    assert worker["nodeSelector"] == {"pai.io/gpu": "true"}


def test_chart_default_tolerations_stay_when_none_are_configured(run_program: Program) -> None:
    values = release(plan(run_program, DATACENTER))["values"]
    assert "daemonsets" not in values and "node-feature-discovery" not in values


def test_namespace_is_a_privileged_platform_namespace(run_program: Program) -> None:
    namespaces = of_kind(plan(run_program, PREINSTALLED), "Namespace")
    (ns,) = [n for n in namespaces if n["metadata"]["name"] == "gpu-operator"]
    labels = ns["metadata"]["labels"]
    assert labels["pai.io/platform"] == "true"
    assert labels["pod-security.kubernetes.io/enforce"] == "privileged"


def test_no_gpu_config_no_gpu_operator(run_stack: Callable[[str], list[Registered]]) -> None:
    records = run_stack("dev")
    assert not [r for r in records if r.type == "pai:gpu:GpuOperator" or "gpu-operator" in json.dumps(r.inputs)]


@pytest.mark.parametrize("stack", ["vks-prod", "airgap"])
def test_vgpu_stacks_plan_the_operator(run_stack: Callable[[str], list[Registered]], stack: str) -> None:
    records = run_stack(stack)
    assert [r.name for r in records if r.type == "pai:gpu:GpuOperator"] == ["platform-gpu-operator"]
    driver = release(records)["values"]["driver"]
    assert (driver["repository"], driver["image"]) == ("harbor.pai.prod.example.internal/nvidia", "vgpu-guest-driver")


# --- vgpu --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("version", VERSIONS)
def test_vgpu_uses_the_private_guest_driver_and_never_a_datacenter_driver(run_program: Program, version: str) -> None:
    records = plan(run_program, VGPU, version, registry={"mirror": MIRROR})
    values = release(records)["values"]
    driver = values["driver"]
    assert driver["enabled"] is True
    assert (driver["repository"], driver["image"], driver["version"]) == (
        "harbor.example.com/nvidia", "vgpu-guest-driver", "580.95.05")
    assert values["vgpuManager"]["enabled"] is False
    # The data-center driver is nvcr.io/nvidia + driver (or its mirrored path): neither appears in any form.
    assert f"{driver['repository']}/{driver['image']}" == PRIVATE
    assert not [s for s in strings(values) if s.endswith("/nvidia/driver") or s.startswith("nvcr.io")]


def test_vgpu_licensing_is_a_secret_named_in_licensing_config(run_program: Program) -> None:
    records = plan(run_program, VGPU)
    (secret,) = of_kind(records, "Secret")
    assert secret["metadata"] == {"name": "licensing-config", "namespace": "gpu-operator",
                                  "labels": {"app.kubernetes.io/part-of": "pai"}}
    assert secret["stringData"] == {GRIDD_CONF: "[secret]", NLS_TOKEN: "[secret]"}
    assert release(records)["values"]["driver"]["licensingConfig"] == {"secretName": "licensing-config",
                                                                        "nlsEnabled": True}
    assert of_kind(records, "ConfigMap") == []


def test_v25_takes_the_licensing_config_map(run_program: Program) -> None:
    """v25.3.0's licensingConfig has configMapName only (secretName came later): the token goes in a ConfigMap,
    still a Pulumi secret."""
    assert "configMapName" in chart_defaults("gpu-operator", "v25.3.0")["driver"]["licensingConfig"]
    records = plan(run_program, VGPU, "v25.3.0")
    (config_map,) = of_kind(records, "ConfigMap")
    assert config_map["data"][NLS_TOKEN] == "[secret]"
    assert release(records)["values"]["driver"]["licensingConfig"] == {"configMapName": "licensing-config",
                                                                        "nlsEnabled": True}
    assert of_kind(records, "Secret") == []


@pytest.mark.parametrize("version", VERSIONS)
def test_licensing_key_matches_the_chart(version: str, run_program: Program) -> None:
    key = next(iter(release(plan(run_program, VGPU, version))["values"]["driver"]["licensingConfig"]))
    assert key in operator_chart(version).licensing


def test_gridd_conf_carries_the_feature_type() -> None:
    conf = gridd_conf(Gpu.model_validate(gpu(VGPU)))
    assert [line for line in conf.splitlines() if not line.startswith("#")] == ["FeatureType=4"]


@pytest.mark.parametrize("version", VERSIONS)
def test_the_token_never_appears_in_the_plan(run_program: Program, version: str) -> None:
    records = plan(run_program, VGPU, version)
    text = json.dumps([r.inputs for r in records])
    assert TOKEN not in text
    assert "[secret]" in text


# --- datacenter --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("version", VERSIONS)
def test_datacenter_pins_the_catalog_default_driver(run_program: Program, version: str) -> None:
    driver = release(plan(run_program, DATACENTER, version))["values"]["driver"]
    assert driver == {"enabled": True, "repository": "nvcr.io/nvidia", "image": "driver",
                      "version": PIN.versions[version].defaultDriver}


@pytest.mark.parametrize("version", VERSIONS)
def test_catalog_default_driver_is_the_charts(version: str) -> None:
    assert PIN.versions[version].defaultDriver == operator_chart(version).driver


def test_datacenter_pins_a_configured_driver_and_image(run_program: Program) -> None:
    driver = release(plan(run_program, {**DATACENTER, "version": "580.95.05",
                                        "image": "registry.example.com/nv/driver"}))["values"]["driver"]
    assert (driver["repository"], driver["image"], driver["version"]) == ("registry.example.com/nv", "driver",
                                                                          "580.95.05")
    assert of_kind(plan(run_program, DATACENTER), "Secret") == []


def test_datacenter_driver_comes_from_the_mirror_in_air_gap_mode(run_program: Program) -> None:
    driver = release(plan(run_program, DATACENTER, registry={"mirror": MIRROR}))["values"]["driver"]
    assert (driver["repository"], driver["image"]) == (f"{MIRROR}/nvidia", "driver")


# --- preinstalled ------------------------------------------------------------------------------------------


def test_preinstalled_disables_only_the_driver(run_program: Program) -> None:
    records = plan(run_program, PREINSTALLED)
    values = release(records)["values"]
    assert values["driver"] == {"enabled": False}
    assert all(values[o]["enabled"] for o in ("toolkit", "devicePlugin", "gfd", "dcgmExporter"))
    assert of_kind(records, "Secret") == of_kind(records, "ConfigMap") == []


# --- air gap -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("version", VERSIONS)
def test_catalog_operand_images_match_the_chart(version: str) -> None:
    """The catalog's operand images are the chart's values.yaml, block by block, repository, image name and tag;
    the driver (its tag is built per node OS) comes from DATACENTER_DRIVER and the catalog's default driver."""
    catalog = {path: f"{image.repository}:{image.tag}" for path, image in operand_images(version).items()
               if path != NFD_IMAGE}
    catalog["driver"] = f"{DATACENTER_DRIVER}:{PIN.versions[version].defaultDriver}"
    assert catalog == operator_chart(version).operands


@pytest.mark.parametrize("version", VERSIONS)
def test_catalog_nfd_image_is_the_bundled_subcharts_release(version: str) -> None:
    """NFD's image tag defaults to its chart's appVersion, which NFD releases equal to the chart version that the
    operator's Chart.yaml depends on."""
    image = operand_images(version)[NFD_IMAGE]
    assert image.repository == "registry.k8s.io/nfd/node-feature-discovery"
    assert image.tag == operator_chart(version).nfd


@pytest.mark.parametrize("version", REFERENCED)
def test_air_gap_moves_every_operand_to_the_mirror(run_program: Program, version: str) -> None:
    values = release(plan(run_program, PREINSTALLED, version,
                          registry={"mirror": MIRROR, "pullSecret": "mirror-pull"}))["values"]
    defaults = chart_defaults("gpu-operator", version)
    for path, upstream in repositories(defaults).items():
        if path == "driver":
            continue  # preinstalled: no driver (datacenter and vgpu drivers are tested above)
        assert at(values, path)["repository"] == f"{MIRROR}/{upstream.split('/', 1)[1]}", path
        block = at(defaults, path)
        if "imagePullSecrets" in block and path != "draDriver":  # the DRA driver: in the GPUCluster CR, not deployed
            assert at(values, path)["imagePullSecrets"] == ["mirror-pull"], path
    for path in ("driver", "dcgm", "dcgmExporter"):  # read by the ClusterPolicy template (verify-charts.py check d)
        assert values[path]["imagePullSecrets"] == ["mirror-pull"], path
    nfd = values["node-feature-discovery"]
    assert nfd["image"]["repository"] == f"{MIRROR}/nfd/node-feature-discovery"
    assert nfd["imagePullSecrets"] == [{"name": "mirror-pull"}]
    assert not [s for s in strings(values) if s.startswith(("nvcr.io", "registry.k8s.io"))]


def test_without_a_mirror_repositories_stay_upstream(run_program: Program) -> None:
    values = release(plan(run_program, PREINSTALLED))["values"]
    assert "repository" not in values.get("toolkit", {}) and "imagePullSecrets" not in values["toolkit"]


# --- config errors -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("driver", "message"), [
    ({**VGPU, "licensing": {"nlsEnabled": False}},
     "pai:gpu.driver.licensing.nlsEnabled: vGPU 15 and later license only through the NVIDIA License System; "
     "the legacy license server is not supported (set true or omit)"),
    ({**VGPU, "image": f"{PRIVATE}:580.95.05"},
     f"pai:gpu.driver.image: '{PRIVATE}:580.95.05': give the repository without a tag or digest; the GPU Operator "
     "pulls <image>:<driver.version>-<node OS>, e.g. :580.95.05-ubuntu22.04"),
])
def test_driver_config_errors(run_program: Program, driver: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as raised:
        plan(run_program, driver)
    assert str(raised.value) == f"stacks/Pulumi.test.yaml: {message}"
