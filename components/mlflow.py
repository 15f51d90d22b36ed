"""Mlflow: the MLflow tracking server and model registry with a PostgreSQL backend store, an S3-compatible artifact
store it proxies for its clients, and basic authentication. Every credential is a Pulumi secret put into a
Kubernetes Secret that the chart references by name, so none appears in the Helm values. With a hostname, an
HTTPRoute on the platform Gateway's MLflow listener exposes it (the chart has no Gateway API option)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components import namespaces
from components.catalog import CATALOG
from components.config import Cluster, MlflowConfig, Registry, mlflow_host
from components.gateway import GATEWAY_API, parent_ref
from components.kube import RegistryLogin, helm_release, meta, mirror_pull_secret, platform_namespace
from components.values import chart_images, merge

RELEASE = "mlflow"  # the chart's fullname: the bundled subcharts' Secrets are named after it
SERVICE_PORT = 80  # the chart's service.port
DB_SECRET = "mlflow-db"
S3_SECRET = "mlflow-s3"
ADMIN_SECRET = "mlflow-admin"
LISTENER = "mlflow"  # the platform Gateway's listener for MLflow
# Secrets the chart reads for its bundled subcharts, by fixed name and keys (templates/_helpers.tpl, deployment.yaml).
BUNDLED_DB_SECRET = f"{RELEASE}-postgresql"
BUNDLED_S3_SECRET = f"{RELEASE}-minio"
S3_KEYS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")  # the chart's artifactRoot.s3.existingSecret key defaults


@dataclass(frozen=True)
class Credentials:
    db_password: pulumi.Output[str]
    admin_password: pulumi.Output[str]
    s3_access_key_id: pulumi.Output[str]
    s3_secret_access_key: pulumi.Output[str]


@dataclass(frozen=True)
class MlflowArgs:
    mlflow: MlflowConfig
    cluster: Cluster
    registry: Registry
    credentials: Credentials
    gateway_api: pulumi.Resource | None = None  # the release that installs the HTTPRoute CRD
    mirror_login: RegistryLogin | None = None  # the air-gap mirror's account, where the platform makes its Secret


class Mlflow(pulumi.ComponentResource):
    """The MLflow Helm release, its credential Secrets and, with a hostname, its route through the Gateway."""

    tracking_url: pulumi.Output[str]

    def __init__(self, name: str, args: MlflowArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("pai:mlflow:Mlflow", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        cfg, creds = args.mlflow, args.credentials
        ns = platform_namespace(f"{name}-namespace", namespaces.MLFLOW, child,
                                enforce=args.cluster.pod_security)
        namespace = ns.metadata["name"]

        def secret(role: str, secret_name: str, data: dict[str, pulumi.Input[str]]) -> k8s.core.v1.Secret:
            return k8s.core.v1.Secret(f"{name}-{role}", metadata=meta(secret_name, namespace), type="Opaque",
                                      string_data=data, opts=child)

        if cfg.database.host:
            secret("db", DB_SECRET, {"username": cfg.database.user, "password": creds.db_password})
        else:  # bitnami's keys: the app user's password and the postgres superuser's
            secret("db", BUNDLED_DB_SECRET, {"password": creds.db_password, "postgres-password": creds.db_password})
        if cfg.artifacts.endpoint:
            secret("s3", S3_SECRET, dict(zip(S3_KEYS, (creds.s3_access_key_id, creds.s3_secret_access_key),
                                              strict=True)))
        else:  # the minio chart's existingSecret keys, which the mlflow chart also reads
            secret("s3", BUNDLED_S3_SECRET, {"rootUser": creds.s3_access_key_id,
                                              "rootPassword": creds.s3_secret_access_key})
        secret("admin", ADMIN_SECRET, {"username": cfg.adminUser, "password": creds.admin_password})
        host = mlflow_host(cfg, args.cluster)
        if host:
            k8s.apiextensions.CustomResource(
                f"{name}-route", api_version=f"{GATEWAY_API}/v1", kind="HTTPRoute", metadata=meta(RELEASE, namespace),
                spec=route_spec(host),
                opts=pulumi.ResourceOptions(parent=self, depends_on=[args.gateway_api] if args.gateway_api else []))
        pull_secret = mirror_pull_secret(f"{name}-mirror-pull-secret", namespace, args.registry, args.mirror_login,
                                         child)
        release = helm_release(f"{name}-release", RELEASE, CATALOG.chart("mlflow"), args.registry.mirror, namespace,
                                mlflow_values(cfg, args.cluster, args.registry, pull_secret), child)
        self.tracking_url = pulumi.Output.from_input(tracking_url(cfg, args.cluster))
        self.register_outputs({"trackingUrl": self.tracking_url, "release": release.status})


def route_spec(host: str) -> dict[str, Any]:
    """Every path on the hostname to the tracking Service (the chart's fullname, port service.port)."""
    return {"parentRefs": [parent_ref(LISTENER)], "hostnames": [host],
            "rules": [{"matches": [{"path": {"type": "PathPrefix", "value": "/"}}],
                       "backendRefs": [{"name": RELEASE, "port": SERVICE_PORT}]}]}


def service_hosts() -> list[str]:
    """The in-cluster names of the tracking Service."""
    return [RELEASE, f"{RELEASE}.{namespaces.MLFLOW}", f"{RELEASE}.{namespaces.MLFLOW}.svc",
            f"{RELEASE}.{namespaces.MLFLOW}.svc.cluster.local"]


def tracking_url(cfg: MlflowConfig, cluster: Cluster) -> str:
    host = mlflow_host(cfg, cluster)
    return f"https://{host}" if host else f"http://{service_hosts()[-1]}"


def mlflow_values(cfg: MlflowConfig, cluster: Cluster, registry: Registry,
                  pull_secret: pulumi.Input[str] | None) -> dict[str, Any]:
    """Helm values for the mlflow chart: backend store, proxied artifact store, auth, allowed hosts and images.
    Behind the Gateway the browser's origin is https://<host>, which the chart would only derive from an ingress."""
    host = mlflow_host(cfg, cluster)
    values: dict[str, Any] = {
        **backend_values(cfg, cluster.storageClass),
        **artifact_values(cfg, cluster.storageClass),
        "auth": auth_values(cfg),
        "serverAllowedHosts": [*([host] if host else []), *service_hosts()],
    }
    if host:
        values["corsAllowedOrigins"] = [f"https://{host}"]
    if pull_secret:
        values["imagePullSecrets"] = [{"name": pull_secret}]
    # The bundled MinIO's images only where it runs (no external artifact store).
    images = {path: image for path, image in CATALOG.chart("mlflow").images.items()
              if not path.startswith("minio.") or values.get("minio", {}).get("enabled")}
    return merge(chart_images(images, registry.mirror), values)


def backend_values(cfg: MlflowConfig, storage_class: str | None) -> dict[str, Any]:
    """An external PostgreSQL by host and Secret, or the bundled PostgreSQL on our Secret."""
    db = cfg.database
    store: dict[str, Any] = {"databaseMigration": True, "databaseConnectionCheck": True}
    if db.host:
        store["postgres"] = {"enabled": True, "host": db.host, "port": db.port, "database": db.name}
        store["existingDatabaseSecret"] = {"name": DB_SECRET, "usernameKey": "username", "passwordKey": "password"}
        return {"backendStore": store}
    persistence = {"enabled": True, "size": db.size, **({"storageClass": storage_class} if storage_class else {})}
    return {"backendStore": store, "postgresql": {
        "enabled": True,
        "auth": {"username": db.user, "database": db.name, "existingSecret": BUNDLED_DB_SECRET},
        "primary": {"persistence": persistence},
    }}


def artifact_values(cfg: MlflowConfig, storage_class: str | None) -> dict[str, Any]:
    """The S3 artifact store, served through the tracking server (clients need no S3 credentials): an existing
    endpoint with our Secret, or the bundled MinIO."""
    art = cfg.artifacts
    s3: dict[str, Any] = {"enabled": True, "bucket": art.bucket, "path": art.path}
    root = {"proxiedArtifactStorage": True, "s3": s3}
    if art.endpoint:
        s3["existingSecret"] = {"name": S3_SECRET, "keyOfAccessKeyId": S3_KEYS[0], "keyOfSecretAccessKey": S3_KEYS[1]}
        return {"artifactRoot": root, "extraEnvVars": {"MLFLOW_S3_ENDPOINT_URL": art.endpoint}}
    persistence = {"enabled": True, "size": art.size, **({"storageClass": storage_class} if storage_class else {})}
    return {"artifactRoot": root, "minio": {
        "enabled": True,
        "existingSecret": BUNDLED_S3_SECRET,
        "buckets": [{"name": art.bucket, "policy": "none", "purge": False}],
        "persistence": persistence,
    }}


def auth_values(cfg: MlflowConfig) -> dict[str, Any]:
    """Basic auth with the admin from our Secret; its user store in PostgreSQL beside the backend store."""
    auth: dict[str, Any] = {
        "enabled": True,
        "existingAdminSecret": {"name": ADMIN_SECRET, "usernameKey": "username", "passwordKey": "password"},
        "defaultPermission": cfg.defaultPermission,
    }
    db = cfg.database
    if db.host:
        auth["postgres"] = {"enabled": True, "host": db.host, "port": db.port, "database": db.authName,
                            "existingSecret": {"name": DB_SECRET, "usernameKey": "username",
                                               "passwordKey": "password"}}
    return auth
