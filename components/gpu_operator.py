"""GpuOperator: the NVIDIA GPU Operator in one of three driver modes (datacenter, vgpu, preinstalled), with the
container toolkit, device plugin, GPU Feature Discovery and the DCGM exporter in every mode."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components import namespaces
from components.catalog import CATALOG, ChartImage
from components.config import Gpu, Registry
from components.kube import meta
from components.values import merge, mirrored, nested

DATACENTER_DRIVER = "nvcr.io/nvidia/driver"
LICENSING_OBJECT = "licensing-config"
# Operator releases whose licensingConfig takes only configMapName (secretName came with v25.10).
CONFIGMAP_LICENSING = {"v25.3.0"}
# The driver container copies these two keys into the guest: gridd.conf and the NLS client configuration token.
GRIDD_CONF = "gridd.conf"
NLS_TOKEN = "client_configuration_token.tok"
# Operands whose values have no imagePullSecrets key: nested driver managers (they run in their operand's pod)
# and the two DCGM blocks (the chart's values.yaml does not offer the key).
NO_PULL_SECRETS = {"dcgm", "dcgmExporter"}
# The bundled Node Feature Discovery subchart: its values, and its image block in the catalog.
NFD = "node-feature-discovery"
NFD_IMAGE = f"{NFD}.image"
# The chart's default tolerations (operands; NFD worker), kept when tolerations are added. v25.3.0's NFD worker
# also tolerated node-role.kubernetes.io/master, a taint Kubernetes stopped setting in 1.25.
GPU_TOLERATION = {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
CONTROL_PLANE_TOLERATION = {"key": "node-role.kubernetes.io/control-plane", "operator": "Equal", "value": "",
                            "effect": "NoSchedule"}


@dataclass(frozen=True)
class GpuOperatorArgs:
    gpu: Gpu
    registry: Registry
    nls_client_token: pulumi.Output[str] | None = None


class GpuOperator(pulumi.ComponentResource):
    """The GPU Operator Helm release in its own privileged namespace, plus the vGPU licensing object."""

    namespace: pulumi.Output[str]

    def __init__(self, name: str, args: GpuOperatorArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("pai:gpu:GpuOperator", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        gpu = args.gpu
        pin = CATALOG.chart("gpu-operator").at(gpu.operator.version)
        ns = k8s.core.v1.Namespace(
            f"{name}-namespace",
            metadata=meta(namespaces.GPU_OPERATOR, labels=namespace_labels()),
            opts=child,
        )
        self.namespace = ns.metadata["name"]
        licensing_name: pulumi.Output[str] | None = None
        if gpu.driver.mode == "vgpu":
            if args.nls_client_token is None:
                raise ValueError("vgpu mode needs the NLS client configuration token")
            licensing_name = licensing_object(
                f"{name}-licensing", pin.version, self.namespace,
                licensing_data(gpu, args.nls_client_token), child,
            ).metadata["name"]
        chart, repo = pin.source_for(args.registry.mirror)
        release = k8s.helm.v3.Release(
            f"{name}-release",
            name="gpu-operator",
            chart=chart,
            version=pin.version,
            repository_opts=k8s.helm.v3.RepositoryOptsArgs(repo=repo) if repo else None,
            namespace=self.namespace,
            # The chart's CRD upgrade hook needs this (see operator.upgradeCRD in the chart's values).
            disable_openapi_validation=True,
            values=operator_values(gpu, args.registry, licensing_name),
            opts=child,
        )
        self.register_outputs({"namespace": self.namespace, "release": release.status})


def namespace_labels() -> dict[str, str]:
    """Platform namespace; privileged Pod Security, as the driver and toolkit daemonsets need host access."""
    psa = "pod-security.kubernetes.io"
    return {namespaces.PLATFORM_LABEL: "true", f"{psa}/enforce": "privileged", f"{psa}/warn": "privileged",
            f"{psa}/audit": "privileged"}


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


def operator_values(gpu: Gpu, registry: Registry, licensing_name: pulumi.Input[str] | None) -> dict[str, Any]:
    """Helm values for the gpu-operator chart at the stack's operator version."""
    values: dict[str, Any] = {
        "operator": {"upgradeCRD": True},
        "driver": driver_values(gpu, registry, licensing_name),
        "vgpuManager": {"enabled": False},  # the vGPU host manager runs on the hypervisor, never in a node
        "toolkit": {"enabled": True},
        "devicePlugin": {"enabled": True},
        "gfd": {"enabled": True},
        "dcgmExporter": {"enabled": True, "serviceMonitor": {"enabled": True}},
        "mig": {"strategy": gpu.migStrategy},
    }
    if gpu.tolerations:
        values["daemonsets"] = {"tolerations": tolerations(gpu, [GPU_TOLERATION])}
    if gpu.tolerations or gpu.nodeSelector:
        values[NFD] = {"worker": nfd_worker(gpu)}
    # A configured driver image is a full reference already: it wins over the mirror rewrite.
    return merge(image_values(gpu.operator.version, registry), values)


def driver_values(gpu: Gpu, registry: Registry, licensing_name: pulumi.Input[str] | None) -> dict[str, Any]:
    """The driver block that decides the mode."""
    driver = gpu.driver
    if driver.mode == "preinstalled":
        return {"enabled": False}
    if driver.mode == "datacenter":
        default = mirrored(DATACENTER_DRIVER, registry.mirror) if registry.mirror else DATACENTER_DRIVER
        repository, image = split_image(driver.image or default)
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


def tolerations(gpu: Gpu, defaults: list[dict[str, str]]) -> list[dict[str, str]]:
    """The chart's default tolerations plus the configured ones (setting the list replaces the defaults)."""
    configured = [t.model_dump(exclude_none=True) for t in gpu.tolerations]
    return [*defaults, *[t for t in configured if t not in defaults]]


def nfd_worker(gpu: Gpu) -> dict[str, Any]:
    """Operands go only to nodes Node Feature Discovery labels as NVIDIA nodes: its worker's nodeSelector
    and tolerations select the GPU nodes."""
    worker: dict[str, Any] = {}
    if gpu.tolerations:
        worker["tolerations"] = tolerations(gpu, [CONTROL_PLANE_TOLERATION, GPU_TOLERATION])
    if gpu.nodeSelector:
        worker["nodeSelector"] = dict(gpu.nodeSelector)
    return worker


def operand_images(version: str) -> dict[str, ChartImage]:
    """The operand images (and NFD's) this operator release deploys, by values path, from the catalog."""
    return CATALOG.chart("gpu-operator").images_at(version)


def image_values(version: str, registry: Registry) -> dict[str, Any]:
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
        if registry.pullSecret and "." not in path and path not in NO_PULL_SECRETS:
            block["imagePullSecrets"] = [registry.pullSecret]
        if block:
            values = merge(values, nested(path, block))
    nfd: dict[str, Any] = {}
    if registry.mirror:
        nfd["image"] = {"repository": mirrored(operand_images(version)[NFD_IMAGE].repository, registry.mirror)}
    if registry.pullSecret:
        nfd["imagePullSecrets"] = [{"name": registry.pullSecret}]
    return merge(values, {NFD: nfd}) if nfd else values


def driver_image(values: dict[str, Any], node_os: str) -> str | None:
    """The driver image the operator pulls for these release values: `<repository>/<image>:<version>-<node OS>`
    (the operator appends the OS it reads from the node, e.g. ubuntu22.04); None where no driver is installed."""
    driver = values.get("driver", {})
    if not driver.get("enabled"):
        return None
    return f"{driver['repository']}/{driver['image']}:{driver['version']}-{node_os}"
