"""GpuOperator: the NVIDIA GPU Operator in one of three driver modes (datacenter, vgpu, preinstalled), with the
container toolkit, device plugin, GPU Feature Discovery and the DCGM exporter in every mode."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components import namespaces
from components.catalog import CATALOG, ChartImage
from components.config import Gpu, Registry
from components.kube import (
    GPU_TOLERATION,
    RegistryLogin,
    helm_release,
    meta,
    mirror_pull_secret,
    platform_namespace,
    tolerations,
)
from components.values import merge, mirrored, nested, on_mirror

DATACENTER_DRIVER = "nvcr.io/nvidia/driver"
LICENSING_OBJECT = "licensing-config"
# Operator releases whose licensingConfig takes only configMapName (secretName came with v25.10).
CONFIGMAP_LICENSING = {"v25.3.0"}
# The driver container copies these two keys into the guest: gridd.conf and the NLS client configuration token.
GRIDD_CONF = "gridd.conf"
NLS_TOKEN = "client_configuration_token.tok"
# Every DCGM series carries its node as `hostname`, the label dashboards and alerts group by: dcgm-exporter
# 4.6.0-4.8.3 (operator v26.7.0) names it so itself, older ones (4.1.1-4.0.4, operator v25.3.0) call it `Hostname`;
# this target label fills it in from the pod's node for both (with honorLabels, the exporter's own value wins).
DCGM_NODE_RELABELING = {"sourceLabels": ["__meta_kubernetes_pod_node_name"], "targetLabel": "hostname",
                        "action": "replace"}
# The bundled Node Feature Discovery subchart: its values, and its image block in the catalog.
NFD = "node-feature-discovery"
NFD_IMAGE = f"{NFD}.image"
# The DCGM exporter's metrics: the counters the operator's exporter publishes by default (dcgm-exporter's
# etc/dcp-metrics-included.csv, which the operator selects) plus the ECC and throttling counters that file leaves
# commented out, which the platform's GPU fault alerts need. The chart creates the ConfigMap
# (dcgmExporter.config, documented in the chart's values.yaml comments).
DCGM_CONFIG_MAP = "pai-dcgm-metrics"
DCGM_DEFAULT_FIELDS = (
    ("DCGM_FI_DEV_SM_CLOCK", "gauge", "SM clock frequency (in MHz)."),
    ("DCGM_FI_DEV_MEM_CLOCK", "gauge", "Memory clock frequency (in MHz)."),
    ("DCGM_FI_DEV_MEMORY_TEMP", "gauge", "Memory temperature (in C)."),
    ("DCGM_FI_DEV_GPU_TEMP", "gauge", "GPU temperature (in C)."),
    ("DCGM_FI_DEV_POWER_USAGE", "gauge", "Power draw (in W)."),
    ("DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION", "counter", "Total energy consumption since boot (in mJ)."),
    ("DCGM_FI_DEV_PCIE_REPLAY_COUNTER", "counter", "Total number of PCIe retries."),
    ("DCGM_FI_DEV_GPU_UTIL", "gauge", "GPU utilization (in %)."),
    ("DCGM_FI_DEV_MEM_COPY_UTIL", "gauge", "Memory utilization (in %)."),
    ("DCGM_FI_DEV_ENC_UTIL", "gauge", "Encoder utilization (in %)."),
    ("DCGM_FI_DEV_DEC_UTIL", "gauge", "Decoder utilization (in %)."),
    ("DCGM_FI_DEV_XID_ERRORS", "gauge", "Value of the last XID error encountered."),
    ("DCGM_FI_DEV_FB_FREE", "gauge", "Framebuffer memory free (in MiB)."),
    ("DCGM_FI_DEV_FB_USED", "gauge", "Framebuffer memory used (in MiB)."),
    ("DCGM_FI_DEV_FB_RESERVED", "gauge", "Framebuffer memory reserved (in MiB)."),
    ("DCGM_FI_DEV_RETIRED_SBE", "counter", "Total number of retired pages due to single-bit errors."),
    ("DCGM_FI_DEV_RETIRED_DBE", "counter", "Total number of retired pages due to double-bit errors."),
    ("DCGM_FI_DEV_NVLINK_BANDWIDTH_TOTAL", "counter", "Total number of NVLink bandwidth counters for all lanes."),
    ("DCGM_FI_DEV_VGPU_LICENSE_STATUS", "gauge", "vGPU License status"),
    ("DCGM_FI_DEV_UNCORRECTABLE_REMAPPED_ROWS", "counter", "Number of remapped rows for uncorrectable errors"),
    ("DCGM_FI_DEV_CORRECTABLE_REMAPPED_ROWS", "counter", "Number of remapped rows for correctable errors"),
    ("DCGM_FI_DEV_ROW_REMAP_FAILURE", "gauge", "Whether remapping of rows has failed"),
    ("DCGM_FI_DRIVER_VERSION", "label", "Driver Version"),
    ("DCGM_FI_PROF_GR_ENGINE_ACTIVE", "gauge", "Ratio of time the graphics engine is active."),
    ("DCGM_FI_PROF_PIPE_TENSOR_ACTIVE", "gauge", "Ratio of cycles the tensor (HMMA) pipe is active."),
    ("DCGM_FI_PROF_DRAM_ACTIVE", "gauge", "Ratio of cycles the device memory interface is active."),
    ("DCGM_FI_PROF_PCIE_TX_BYTES", "gauge", "The rate of data transmitted over the PCIe bus in bytes per second."),
    ("DCGM_FI_PROF_PCIE_RX_BYTES", "gauge", "The rate of data received over the PCIe bus in bytes per second."),
)
DCGM_EXTRA_FIELDS = (
    ("DCGM_FI_DEV_ECC_SBE_VOL_TOTAL", "counter", "Total number of single-bit volatile ECC errors."),
    ("DCGM_FI_DEV_ECC_DBE_VOL_TOTAL", "counter", "Total number of double-bit volatile ECC errors."),
    ("DCGM_FI_DEV_THERMAL_VIOLATION", "counter", "Throttling duration due to thermal constraints (in ns)."),
    ("DCGM_FI_DEV_POWER_VIOLATION", "counter", "Throttling duration due to power constraints (in ns)."),
)
CONTROL_PLANE_TOLERATION = {"key": "node-role.kubernetes.io/control-plane", "operator": "Equal", "value": "",
                            "effect": "NoSchedule"}


@dataclass(frozen=True)
class GpuOperatorArgs:
    gpu: Gpu
    registry: Registry
    nls_client_token: pulumi.Output[str] | None = None
    depends_on: list[pulumi.Resource] = field(default_factory=list)  # e.g. the release with ServiceMonitor's CRD
    mirror_login: RegistryLogin | None = None  # the air-gap mirror's account, where the platform makes its Secret


class GpuOperator(pulumi.ComponentResource):
    """The GPU Operator Helm release in its own privileged namespace, plus the vGPU licensing object."""

    namespace: pulumi.Output[str]

    def __init__(self, name: str, args: GpuOperatorArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("pai:gpu:GpuOperator", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        gpu = args.gpu
        pin = CATALOG.chart("gpu-operator").at(gpu.operator.version)
        # Privileged Pod Security: the driver and toolkit daemonsets need host access.
        ns = platform_namespace(f"{name}-namespace", namespaces.GPU_OPERATOR, child, privileged=True)
        self.namespace = ns.metadata["name"]
        pull_secret = mirror_pull_secret(f"{name}-mirror-pull-secret", self.namespace, args.registry,
                                         args.mirror_login, child)
        licensing_name: pulumi.Output[str] | None = None
        if gpu.driver.mode == "vgpu":
            if args.nls_client_token is None:
                raise ValueError("vgpu mode needs the NLS client configuration token")
            licensing_name = licensing_object(
                f"{name}-licensing", pin.version, self.namespace,
                licensing_data(gpu, args.nls_client_token), child,
            ).metadata["name"]
        release = helm_release(
            f"{name}-release", "gpu-operator", pin, args.registry.mirror, self.namespace,
            operator_values(gpu, args.registry, pull_secret, licensing_name),
            pulumi.ResourceOptions(parent=self, depends_on=args.depends_on),
            # The chart's CRD upgrade hook needs this (see operator.upgradeCRD in the chart's values).
            disable_openapi_validation=True,
        )
        self.register_outputs({"namespace": self.namespace, "release": release.status})


def licensing_object(name: str, version: str, namespace: pulumi.Input[str], data: dict[str, Any],
                     opts: pulumi.ResourceOptions) -> k8s.core.v1.Secret | k8s.core.v1.ConfigMap:
    """A Secret where the chart takes `driver.licensingConfig.secretName`; a ConfigMap for releases that only take
    `configMapName` (v25.3.0). Either way the token is a Pulumi secret: masked in plans, encrypted in state."""
    metadata = meta(LICENSING_OBJECT, namespace)
    if licensing_key(version) == "secretName":
        return k8s.core.v1.Secret(name, metadata=metadata, type="Opaque", string_data=data, opts=opts)
    return k8s.core.v1.ConfigMap(name, metadata=metadata, data=data, opts=opts)


def licensing_key(version: str) -> str:
    """The licensingConfig key naming the licensing object in this chart version."""
    return "configMapName" if version in CONFIGMAP_LICENSING else "secretName"


def licensing_data(gpu: Gpu, token: pulumi.Output[str]) -> dict[str, Any]:
    return {GRIDD_CONF: gridd_conf(gpu), NLS_TOKEN: token}


def gridd_conf(gpu: Gpu) -> str:
    """The vGPU guest licensing config: the licensed feature; the NLS token file is found at its default path."""
    licensing = gpu.driver.licensing
    feature = licensing.featureType if licensing else 1
    return ("# Licensed feature: 1 NVIDIA vGPU, 2 NVIDIA RTX Virtual Workstation, 4 NVIDIA Virtual Compute Server\n"
            f"FeatureType={feature}\n")


def operator_values(gpu: Gpu, registry: Registry, pull_secret: pulumi.Input[str] | None,
                    licensing_name: pulumi.Input[str] | None) -> dict[str, Any]:
    """Helm values for the gpu-operator chart at the stack's operator version."""
    values: dict[str, Any] = {
        "operator": {"upgradeCRD": True},
        "driver": driver_values(gpu, registry, licensing_name),
        "vgpuManager": {"enabled": False},  # the vGPU host manager runs on the hypervisor, never in a node
        "toolkit": {"enabled": True},
        "devicePlugin": {"enabled": True},
        "gfd": {"enabled": True},
        # honorLabels keeps the exporter's pod/namespace labels (the GPU's workload) instead of exported_pod.
        "dcgmExporter": {"enabled": True, "serviceMonitor": {"enabled": True, "honorLabels": True,
                                                             "relabelings": [DCGM_NODE_RELABELING]},
                         "config": {"name": DCGM_CONFIG_MAP, "create": True, "data": dcgm_metrics_csv()}},
        "mig": {"strategy": gpu.migStrategy},
    }
    if gpu.tolerations:
        # The chart's default tolerations (GPU_TOLERATION for operands, and the control plane's for the NFD
        # worker) are kept: setting the list replaces them. v25.3.0's NFD worker also tolerated
        # node-role.kubernetes.io/master, a taint Kubernetes stopped setting in 1.25.
        values["daemonsets"] = {"tolerations": tolerations([GPU_TOLERATION], gpu.tolerations)}
    if gpu.tolerations or gpu.nodeSelector:
        values[NFD] = {"worker": nfd_worker(gpu)}
    # A configured driver image is a full reference already: it wins over the mirror rewrite.
    return merge(image_values(gpu.operator.version, registry, pull_secret), values)


def dcgm_metrics_csv() -> str:
    """The exporter's metrics file: DCGM field, Prometheus type, help."""
    rows = [f"{field}, {kind}, {text}" for field, kind, text in (*DCGM_DEFAULT_FIELDS, *DCGM_EXTRA_FIELDS)]
    return "# DCGM FIELD, Prometheus metric type, help message\n" + "\n".join(rows) + "\n"


def driver_values(gpu: Gpu, registry: Registry, licensing_name: pulumi.Input[str] | None) -> dict[str, Any]:
    """The driver block that decides the mode."""
    driver = gpu.driver
    if driver.mode == "preinstalled":
        return {"enabled": False}
    if driver.mode == "datacenter":
        repository, image = split_image(driver.image or on_mirror(DATACENTER_DRIVER, registry.mirror))
        version = driver.version or CATALOG.chart("gpu-operator").versions[gpu.operator.version].defaultDriver
        return {"enabled": True, "repository": repository, "image": image, "version": version}
    assert driver.image is not None and driver.version is not None and licensing_name is not None
    repository, image = split_image(driver.image)
    return {"enabled": True, "repository": repository, "image": image, "version": driver.version,
            "licensingConfig": {licensing_key(gpu.operator.version): licensing_name, "nlsEnabled": True}}


def split_image(image: str) -> tuple[str, str]:
    """registry/path/name -> (registry/path, name): the operator appends `:<version>-<node OS>` itself."""
    repository, _, name = image.rpartition("/")
    return repository, name


def nfd_worker(gpu: Gpu) -> dict[str, Any]:
    """Operands go only to nodes Node Feature Discovery labels as NVIDIA nodes: its worker's nodeSelector
    and tolerations select the GPU nodes."""
    worker: dict[str, Any] = {}
    if gpu.tolerations:
        worker["tolerations"] = tolerations([CONTROL_PLANE_TOLERATION, GPU_TOLERATION], gpu.tolerations)
    if gpu.nodeSelector:
        worker["nodeSelector"] = dict(gpu.nodeSelector)
    return worker


def operand_images(version: str) -> dict[str, ChartImage]:
    """The operand images (and NFD's) this operator release deploys, by values path, from the catalog."""
    return CATALOG.chart("gpu-operator").images_at(version)


def image_values(version: str, registry: Registry, pull_secret: pulumi.Input[str] | None) -> dict[str, Any]:
    """Air-gap mode: every operand repository on the mirror; with a pull secret, every operand uses it. An operand
    block names its repository without the image name (`nvcr.io/nvidia/k8s` + `container-toolkit`); only the
    repository moves, image names and tags stay the chart's."""
    values: dict[str, Any] = {}
    for path, image in operand_images(version).items():
        if path == NFD_IMAGE:
            continue
        block: dict[str, Any] = {}
        if registry.mirror:
            block["repository"] = mirrored(split_image(image.repository)[0], registry.mirror)
        # Every operand section's pods take its imagePullSecrets (nested driver managers run in their section's
        # pods); the chart's ClusterPolicy template reads the key for every section, DCGM's too, though its
        # values.yaml does not list it there (scripts/verify-charts.py check d).
        if pull_secret and "." not in path and path != "draDriver":  # DRA: in the GPUCluster CR, not deployed
            block["imagePullSecrets"] = [pull_secret]
        if block:
            values = merge(values, nested(path, block))
    if pull_secret:  # the driver pod: its driver manager init container comes from the mirror
        values = merge(values, {"driver": {"imagePullSecrets": [pull_secret]}})
    nfd: dict[str, Any] = {}
    if registry.mirror:
        nfd["image"] = {"repository": mirrored(operand_images(version)[NFD_IMAGE].repository, registry.mirror)}
    if pull_secret:
        nfd["imagePullSecrets"] = [{"name": pull_secret}]
    return merge(values, {NFD: nfd}) if nfd else values


# ClusterPolicy sections whose image tag the operator completes with `-<node OS>` unless the version is a digest
# (resolveDriverTag in NVIDIA/gpu-operator@v26.7.0:controllers/object_controls.go).
OS_SUFFIXED = ("driver", "vgpuManager", "gds", "gdrcopy")


def driver_image(values: dict[str, Any], node_os: str) -> str | None:
    """The driver image the operator pulls for these release values: `<repository>/<image>:<version>-<node OS>`
    (the operator appends the OS it reads from the node, e.g. ubuntu22.04); None where no driver is installed."""
    driver = values.get("driver", {})
    if not driver.get("enabled"):
        return None
    return f"{driver['repository']}/{driver['image']}:{driver['version']}-{node_os}"
