"""The Platform: one component that composes every part of the private-AI platform."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from components.config import PlatformConfig, harbor_host, harbor_mirror_project
from components.gpu_operator import GpuOperator, GpuOperatorArgs
from components.harbor import Harbor, HarborArgs
from components.mlflow import Credentials, Mlflow, MlflowArgs
from components.tenancy import Tenancy, TenancyArgs


@dataclass(frozen=True)
class PlatformArgs:
    config: PlatformConfig


class Platform(pulumi.ComponentResource):
    """Every part of the platform, each a child component."""

    tenancy: Tenancy
    gpu_operator: GpuOperator | None
    harbor: Harbor | None
    mlflow: Mlflow | None

    def __init__(self, name: str, args: PlatformArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("pai:platform:Platform", name, None, opts)
        cfg = args.config
        child = pulumi.ResourceOptions(parent=self)
        self.tenancy = Tenancy(
            f"{name}-tenancy",
            TenancyArgs(tenants=cfg.tenants, kubernetes_version=cfg.cluster.kubernetesVersion),
            child,
        )
        self.gpu_operator = None
        if cfg.gpu is not None:
            self.gpu_operator = GpuOperator(
                f"{name}-gpu-operator",
                GpuOperatorArgs(gpu=cfg.gpu, registry=cfg.registry, nls_client_token=cfg.secrets.nlsClientToken),
                child,
            )
        # The cert-manager release (the CertManager part) goes into cert_manager below once it is composed here.
        cert_manager: pulumi.Resource | None = None
        self.harbor = None
        if cfg.harbor is not None:
            assert cfg.secrets.harborAdminPassword is not None  # the config check requires it
            self.harbor = Harbor(
                f"{name}-harbor",
                HarborArgs(harbor=cfg.harbor, gallery=cfg.gallery, cluster=cfg.cluster, registry=cfg.registry,
                           host=harbor_host(cfg), mirror_project=harbor_mirror_project(cfg),
                           admin_password=cfg.secrets.harborAdminPassword, cert_manager=cert_manager),
                child,
            )
        self.mlflow = None
        if cfg.mlflow is not None:
            secrets = cfg.secrets
            assert (secrets.mlflowDbPassword and secrets.mlflowAdminPassword and secrets.s3AccessKeyId
                    and secrets.s3SecretAccessKey)  # the config check requires them
            self.mlflow = Mlflow(
                f"{name}-mlflow",
                MlflowArgs(mlflow=cfg.mlflow, cluster=cfg.cluster, registry=cfg.registry, cert_manager=cert_manager,
                           credentials=Credentials(db_password=secrets.mlflowDbPassword,
                                                   admin_password=secrets.mlflowAdminPassword,
                                                   s3_access_key_id=secrets.s3AccessKeyId,
                                                   s3_secret_access_key=secrets.s3SecretAccessKey)),
                child,
            )
        self.register_outputs({"tenantNamespaces": self.tenancy.namespaces})


def deploy() -> Platform:
    """The program: parse the stack config once, then build the platform on one Kubernetes provider."""
    cfg = PlatformConfig.from_pulumi()
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
