"""The Platform: one component that composes every part of the private-AI platform."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from components.config import PlatformConfig
from components.gateway import Gateway, GatewayArgs
from components.gpu_operator import GpuOperator, GpuOperatorArgs
from components.tenancy import Tenancy, TenancyArgs


@dataclass(frozen=True)
class PlatformArgs:
    config: PlatformConfig


class Platform(pulumi.ComponentResource):
    """Every part of the platform, each a child component."""

    tenancy: Tenancy
    gpu_operator: GpuOperator | None
    gateway: Gateway | None

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
        self.gateway = None
        if cfg.models:
            self.gateway = Gateway(
                f"{name}-gateway",
                GatewayArgs(models=cfg.models, ingress=cfg.cluster.ingress, registry=cfg.registry,
                            tenant_namespaces=self.tenancy.namespaces),
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
    return platform
