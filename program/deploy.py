"""The Pulumi program's entry point (stacks/__main__.py): the stack config parsed once, the interop preflight, then
the platform on one Kubernetes provider."""

from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s

from components.config import PlatformConfig, stack_file
from components.platform import Platform, PlatformArgs
from validation.preflight import preflight


def deploy() -> Platform:
    """The program: parse the stack config once, run the interop preflight, then build the platform on one
    Kubernetes provider."""
    cfg = PlatformConfig.from_pulumi()
    preflight(cfg, stack_file())
    provider = k8s.Provider(
        "k8s",
        kubeconfig=cfg.secrets.kubeconfig,
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
