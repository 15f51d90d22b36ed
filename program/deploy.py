"""The Pulumi program's entry point (stacks/__main__.py): the stack config parsed once, the interop preflight, the
VKS workload cluster where pai:supervisor asks for one, then the platform on one Kubernetes provider."""

from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s

from components.config import PlatformConfig, stack_file
from components.platform import Platform, PlatformArgs
from components.vks_cluster import VksCluster, VksClusterArgs
from validation.preflight import preflight


def deploy() -> Platform:
    """The program: parse the stack config once, run the interop preflight, create the workload cluster on the
    Supervisor where the stack has pai:supervisor, then build the platform on one Kubernetes provider (the
    cluster's kubeconfig, else pai:kubeconfig or the ambient one)."""
    cfg = PlatformConfig.from_pulumi()
    preflight(cfg, stack_file())
    kubeconfig = cfg.secrets.kubeconfig
    if cfg.supervisor is not None:
        cluster = workload_cluster(cfg)
        kubeconfig = cluster.kubeconfig
        pulumi.export("vksCluster", cluster.name)
        pulumi.export("vksNamespace", cluster.namespace)
    provider = k8s.Provider(
        "k8s",
        kubeconfig=kubeconfig,
        enable_server_side_apply=True,
    )
    platform = Platform("platform", PlatformArgs(config=cfg), pulumi.ResourceOptions(providers=[provider]))
    pulumi.export("tenantNamespaces", platform.tenancy.namespaces)
    if platform.harbor is not None:
        pulumi.export("harborUrl", platform.harbor.url)
        pulumi.export("galleryPullRobot", platform.harbor.pull_robot_name)
        pulumi.export("galleryPullRobotSecret", platform.harbor.pull_robot_secret)
        pulumi.export("galleryPushRobot", platform.harbor.push_robot_name)
        pulumi.export("galleryPushRobotSecret", platform.harbor.push_robot_secret)
    if platform.mlflow is not None:
        pulumi.export("mlflowTrackingUrl", platform.mlflow.tracking_url)
    return platform


def workload_cluster(cfg: PlatformConfig) -> VksCluster:
    """The VKS cluster pai:supervisor describes, created through the Supervisor's own provider (a vSphere
    namespace user's kubeconfig, pai:supervisorKubeconfig)."""
    assert cfg.supervisor is not None and cfg.secrets.supervisorKubeconfig is not None  # consistency rules
    supervisor = k8s.Provider("supervisor", kubeconfig=cfg.secrets.supervisorKubeconfig,
                              enable_server_side_apply=True)
    return VksCluster("vks", VksClusterArgs(supervisor=cfg.supervisor, provider=supervisor,
                                            default_storage_class=cfg.cluster.storageClass))
