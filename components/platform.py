"""The Platform: one component that composes every part of the private-AI platform."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

from components import harbor, mlflow, namespaces
from components.cert_manager import CertManager, CertManagerArgs
from components.config import (
    PlatformConfig,
    Registry,
    gateway_hosts,
    harbor_chain_registry,
    harbor_host,
    harbor_mirror_project,
)
from components.gateway import Exposed, Gateway, GatewayArgs
from components.gpu_operator import GpuOperator, GpuOperatorArgs
from components.harbor import Harbor, HarborArgs
from components.kserve import Kserve, KserveArgs
from components.kube import RegistryLogin
from components.kueue import Kueue, KueueArgs
from components.mlflow import Credentials, Mlflow, MlflowArgs
from components.model_endpoints import GalleryPull, ModelEndpoints, ModelEndpointsArgs, S3Access
from components.monitoring import Monitoring, MonitoringArgs
from components.serving_runtimes import ServingRuntimes, ServingRuntimesArgs
from components.tenancy import Tenancy, TenancyArgs


@dataclass(frozen=True)
class PlatformArgs:
    config: PlatformConfig


class Platform(pulumi.ComponentResource):
    """Every part of the platform, each a child component."""

    tenancy: Tenancy
    gpu_operator: GpuOperator | None
    cert_manager: CertManager
    kserve: Kserve
    serving_runtimes: ServingRuntimes
    model_endpoints: ModelEndpoints
    gateway: Gateway | None
    kueue: Kueue | None
    monitoring: Monitoring | None
    harbor: Harbor | None
    mlflow: Mlflow | None

    def __init__(self, name: str, args: PlatformArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("pai:platform:Platform", name, None, opts)
        cfg = args.config
        child = pulumi.ResourceOptions(parent=self)
        login = mirror_login(cfg, cfg.registry)
        gpu_nodes = cfg.gpu_nodes  # pai:gpu with the taints of the GPU pools the stack creates, for what runs there
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
                          registry=cfg.registry, gpu=gpu_nodes, mirror_login=login,
                          pod_security=cfg.cluster.pod_security),
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
                               storage_class=cfg.cluster.storageClass, mirror_login=login),
                child,
            )
        self.gpu_operator = None
        if gpu_nodes is not None:
            # After the monitoring stack, whose CRDs the operator's DCGM exporter ServiceMonitor needs.
            self.gpu_operator = GpuOperator(
                f"{name}-gpu-operator",
                GpuOperatorArgs(gpu=gpu_nodes, registry=cfg.registry, nls_client_token=cfg.secrets.nlsClientToken,
                                depends_on=[self.monitoring.release] if self.monitoring else [],
                                mirror_login=login),
                child,
            )
        # Harbor and what serves it never pull from a mirror on that Harbor: the bootstrap registry instead.
        chain = harbor_chain_registry(cfg)
        chain_login = mirror_login(cfg, chain)
        self.cert_manager = CertManager(f"{name}-cert-manager",
                                        CertManagerArgs(registry=chain, mirror_login=chain_login,
                                                        pod_security=cfg.cluster.pod_security), child)
        self.kserve = Kserve(
            f"{name}-kserve",
            KserveArgs(cluster=cfg.cluster, registry=cfg.registry, cert_manager=self.cert_manager.release,
                       mirror_login=login),
            child,
        )
        self.serving_runtimes = ServingRuntimes(
            f"{name}-serving-runtimes",
            ServingRuntimesArgs(runtimes=cfg.runtimes, registry=cfg.registry, kserve=self.kserve.release),
            child,
        )
        self.gateway = None
        exposed = exposed_services(cfg)
        if cfg.models or exposed:
            self.gateway = Gateway(
                f"{name}-gateway",
                GatewayArgs(models=cfg.models, ingress=cfg.cluster.ingress, registry=chain,
                            tenant_namespaces=self.tenancy.namespaces, cert_manager=self.cert_manager.release,
                            exposed=exposed, mirror_login=chain_login, pod_security=cfg.cluster.pod_security),
                child,
            )
        gateway_api = self.gateway.api if self.gateway else None
        cert_manager = self.cert_manager.release
        self.harbor = None
        if cfg.harbor is not None:
            assert cfg.secrets.harborAdminPassword is not None  # the config check requires it
            self.harbor = Harbor(
                f"{name}-harbor",
                HarborArgs(harbor=cfg.harbor, gallery=cfg.gallery, cluster=cfg.cluster, registry=chain,
                           host=harbor_host(cfg), mirror_project=harbor_mirror_project(cfg),
                           admin_password=cfg.secrets.harborAdminPassword, cert_manager=cert_manager,
                           gateway_api=gateway_api, mirror_login=chain_login),
                child,
            )
        gallery = None
        if self.harbor is not None:  # its pull robot pulls the tenants' models from the gallery
            gallery = GalleryPull(host=harbor_host(cfg), username=self.harbor.pull_robot_name,
                                  password=self.harbor.pull_robot_secret)
        self.model_endpoints = ModelEndpoints(
            f"{name}-model-endpoints",
            ModelEndpointsArgs(models=cfg.models, tenant_namespaces=self.tenancy.namespaces,
                               runtime_names=self.serving_runtimes.names, s3=s3_access(cfg), gallery=gallery,
                               registry=cfg.registry, mirror_login=login,
                               gpu_tolerations=gpu_nodes.tolerations if gpu_nodes else [],
                               # Kueue's webhooks admit the endpoints' pods through their tenant's queue.
                               depends_on=[self.kserve.release, *([self.kueue.release] if self.kueue else [])]),
            child,
        )
        self.mlflow = None
        if cfg.mlflow is not None:
            secrets = cfg.secrets
            assert (secrets.mlflowDbPassword and secrets.mlflowAdminPassword and secrets.s3AccessKeyId
                    and secrets.s3SecretAccessKey)  # the config check requires them
            self.mlflow = Mlflow(
                f"{name}-mlflow",
                MlflowArgs(mlflow=cfg.mlflow, cluster=cfg.cluster, registry=cfg.registry, gateway_api=gateway_api,
                           credentials=Credentials(db_password=secrets.mlflowDbPassword,
                                                   admin_password=secrets.mlflowAdminPassword,
                                                   s3_access_key_id=secrets.s3AccessKeyId,
                                                   s3_secret_access_key=secrets.s3SecretAccessKey),
                           mirror_login=login),
                child,
            )
        self.register_outputs({"tenantNamespaces": self.tenancy.namespaces})


def exposed_services(cfg: PlatformConfig) -> tuple[Exposed, ...]:
    """The web services the platform Gateway exposes: Harbor unless it is in-cluster only, MLflow where it has a
    hostname."""
    hosts = gateway_hosts(cfg)
    found = []
    if cfg.harbor is not None and "pai:harbor.host" in hosts:
        found.append(Exposed(harbor.LISTENER, hosts["pai:harbor.host"], namespaces.HARBOR, cfg.harbor.tlsSecret))
    if "pai:mlflow.host" in hosts:
        found.append(Exposed(mlflow.LISTENER, hosts["pai:mlflow.host"], namespaces.MLFLOW))
    return tuple(found)


def s3_access(cfg: PlatformConfig) -> S3Access | None:
    """The S3 store with its secret keys, where the stack configures one (the config checks they come together)."""
    key_id, secret_key = cfg.secrets.s3AccessKeyId, cfg.secrets.s3SecretAccessKey
    if cfg.s3 is None or key_id is None or secret_key is None:
        return None
    return S3Access(store=cfg.s3, access_key_id=key_id, secret_access_key=secret_key)


def mirror_login(cfg: PlatformConfig, registry: Registry) -> RegistryLogin | None:
    """The account on the registry `registry` pulls from (the mirror, or the bootstrap registry for Harbor's
    chain), where the stack gives one (pai:mirrorPullUsername, pai:mirrorPullPassword): the platform then creates
    the pull Secret pai:registry.pullSecret in every namespace that pulls from it. The host is the registry's,
    without its path."""
    username, password = cfg.secrets.mirrorPullUsername, cfg.secrets.mirrorPullPassword
    mirror = registry.mirror
    if mirror is None or registry.pullSecret is None or username is None or password is None:
        return None
    return RegistryLogin(host=mirror.split("/", 1)[0], username=username, password=password)
