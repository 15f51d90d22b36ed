"""The Platform: one component that composes every part of the private-AI platform."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from components.config import PlatformConfig
from components.gpu_operator import GpuOperator, GpuOperatorArgs
from components.kueue import Kueue, KueueArgs
from components.monitoring import Monitoring, MonitoringArgs
from components.tenancy import Tenancy, TenancyArgs


@dataclass(frozen=True)
class PlatformArgs:
    config: PlatformConfig


class Platform(pulumi.ComponentResource):
    """Every part of the platform, each a child component."""

    tenancy: Tenancy
    gpu_operator: GpuOperator | None
    kueue: Kueue | None
    monitoring: Monitoring | None

    def __init__(self, name: str, args: PlatformArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("pai:platform:Platform", name, None, opts)
        cfg = args.config
        child = pulumi.ResourceOptions(parent=self)
        self.tenancy = Tenancy(
            f"{name}-tenancy",
            TenancyArgs(tenants=cfg.tenants, kubernetes_version=cfg.cluster.kubernetesVersion,
                        gpus_queued=cfg.kueue is not None and cfg.gpu is not None),
            child,
        )
        self.kueue = None
        if cfg.kueue is not None:
            self.kueue = Kueue(
                f"{name}-kueue",
                KueueArgs(kueue=cfg.kueue, tenants=cfg.tenants, tenant_namespaces=dict(self.tenancy.namespaces),
                          registry=cfg.registry, gpu=cfg.gpu),
                child,
            )
        self.monitoring = None
        if cfg.monitoring is not None:
            assert cfg.secrets.grafanaAdminPassword is not None  # the config refuses pai:monitoring without it
            self.monitoring = Monitoring(
                f"{name}-monitoring",
                MonitoringArgs(monitoring=cfg.monitoring, registry=cfg.registry,
                               tenant_namespaces=dict(self.tenancy.namespaces),
                               grafana_admin_password=cfg.secrets.grafanaAdminPassword, gpu=cfg.gpu,
                               storage_class=cfg.cluster.storageClass),
                child,
            )
        self.gpu_operator = None
        if cfg.gpu is not None:
            # After the monitoring stack, whose CRDs the operator's DCGM exporter ServiceMonitor needs.
            self.gpu_operator = GpuOperator(
                f"{name}-gpu-operator",
                GpuOperatorArgs(gpu=cfg.gpu, registry=cfg.registry, nls_client_token=cfg.secrets.nlsClientToken,
                                depends_on=[self.monitoring.release] if self.monitoring else []),
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
