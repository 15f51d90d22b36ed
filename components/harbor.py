"""Harbor: the registry, model gallery and air-gap mirror, installed from its chart and then configured through
the Harbor API (pulumiverse-harbor): gallery projects with quotas, scan on push, immutable promotion tags and
retention, robot accounts for serving and publishing, and the projects the air-gap module pushes into. Exposed
through the platform Gateway (the chart's HTTPRoute on the Gateway's Harbor listener, TLS terminated there), or
in-cluster only behind the chart's own TLS proxy."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s
import pulumiverse_harbor as harbor

from components import namespaces
from components.catalog import CATALOG
from components.config import Cluster, Gallery, GalleryProject, HarborConfig, Registry
from components.gateway import parent_ref
from components.kube import RegistryLogin, certificate, helm_release, meta, mirror_pull_secret, platform_namespace
from components.values import chart_images, merge, mirrored

ADMIN_SECRET = "harbor-admin"
ADMIN_PASSWORD_KEY = "HARBOR_ADMIN_PASSWORD"  # the chart's existingSecretAdminPasswordKey default
TLS_SECRET = "harbor-tls"
LISTENER = "harbor"  # the platform Gateway's listener for Harbor
# What each robot may do in the gallery projects (Harbor RBAC resource, action).
PULL_ACCESS = (("repository", "pull"), ("artifact", "read"))
PUSH_ACCESS = (("repository", "pull"), ("repository", "push"), ("artifact", "read"), ("artifact", "list"),
               ("tag", "create"), ("tag", "list"))


@dataclass(frozen=True)
class HarborArgs:
    harbor: HarborConfig
    gallery: Gallery
    cluster: Cluster
    registry: Registry
    host: str
    mirror_project: str
    admin_password: pulumi.Output[str]
    cert_manager: pulumi.Resource | None = None  # the release that installs the Certificate CRD
    gateway_api: pulumi.Resource | None = None  # the release that installs the HTTPRoute CRD
    mirror_login: RegistryLogin | None = None  # the air-gap mirror's account, where the platform makes its Secret


class Harbor(pulumi.ComponentResource):
    """The Harbor Helm release and, through the Harbor provider, the gallery, charts and mirror projects."""

    url: pulumi.Output[str]
    pull_robot_name: pulumi.Output[str]
    pull_robot_secret: pulumi.Output[str]
    push_robot_name: pulumi.Output[str]
    push_robot_secret: pulumi.Output[str]

    def __init__(self, name: str, args: HarborArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("pai:harbor:Harbor", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        ns = platform_namespace(f"{name}-namespace", namespaces.HARBOR, child,
                                enforce=args.cluster.pod_security)
        namespace = ns.metadata["name"]
        admin = k8s.core.v1.Secret(f"{name}-admin", metadata=meta(ADMIN_SECRET, namespace), type="Opaque",
                                   string_data={ADMIN_PASSWORD_KEY: args.admin_password}, opts=child)
        # Behind the Gateway, the Gateway's listener serves pai:harbor.tlsSecret or its own certificate; in-cluster
        # only, the chart's proxy serves pai:harbor.tlsSecret or a certificate of Harbor's own.
        tls_secret = args.harbor.tlsSecret
        if tls_secret is None and args.harbor.expose == "clusterIP":
            depends = [args.cert_manager] if args.cert_manager else []
            certificate(f"{name}-certificate", namespace, TLS_SECRET, [args.host],
                        pulumi.ResourceOptions(parent=self, depends_on=depends))
            tls_secret = TLS_SECRET
        after_gateway_api = [args.gateway_api] if args.gateway_api and args.harbor.expose == "gateway" else []
        pull_secret = mirror_pull_secret(f"{name}-mirror-pull-secret", namespace, args.registry, args.mirror_login,
                                         child)
        release = helm_release(f"{name}-release", "harbor", CATALOG.chart("harbor"), args.registry.mirror,
                                namespace, harbor_values(args, tls_secret, admin.metadata["name"], pull_secret),
                                pulumi.ResourceOptions(parent=self, depends_on=after_gateway_api))
        self.url = pulumi.Output.from_input(f"https://{args.host}")
        provider = harbor.Provider(f"{name}-provider", url=self.url, username="admin",
                                   password=args.admin_password,  # a Pulumi secret already (require_secret)
                                   insecure=not args.harbor.verifyTls,
                                   opts=pulumi.ResourceOptions(parent=self, depends_on=[release]))
        api = pulumi.ResourceOptions(parent=self, provider=provider)
        gallery = args.gallery
        for role, project in (("dev", gallery.dev), ("prod", gallery.prod)):
            gallery_project(f"{name}-{role}", project, gallery, api)
        plain_project(f"{name}-charts", gallery.charts, gallery.chartsQuotaGb, api)
        plain_project(f"{name}-mirror", args.mirror_project, gallery.mirrorQuotaGb, api)
        projects = [gallery.dev.name, gallery.prod.name]
        puller = robot(f"{name}-pull-robot", "gallery-puller", "serving side: pulls models from the gallery",
                       projects, PULL_ACCESS, api)
        pusher = robot(f"{name}-push-robot", "gallery-publisher", "publishing side: pushes and promotes models",
                       projects, PUSH_ACCESS, api)
        self.pull_robot_name = puller.full_name
        self.pull_robot_secret = pulumi.Output.secret(puller.secret)
        self.push_robot_name = pusher.full_name
        self.push_robot_secret = pulumi.Output.secret(pusher.secret)
        self.register_outputs({"url": self.url, "pullRobotName": self.pull_robot_name,
                               "pullRobotSecret": self.pull_robot_secret, "pushRobotName": self.push_robot_name,
                               "pushRobotSecret": self.push_robot_secret})


def expose_values(cfg: HarborConfig, host: str, tls_secret: str | None) -> dict[str, Any]:
    """Behind the Gateway: the chart's HTTPRoute on the Harbor listener, plain HTTP behind it (TLS ends at the
    Gateway). In-cluster only: the chart's proxy Service, serving TLS from the Secret."""
    if cfg.expose == "gateway":
        # The parentRef names the Harbor listener, so the route serves only the listener's hostname even where a
        # chart version renders no hostnames from expose.route.hosts.
        return {"type": "route", "tls": {"enabled": False},
                "route": {"parentRefs": [parent_ref(LISTENER)], "hosts": [host]}}
    return {"type": "clusterIP",
            "tls": {"enabled": True, "certSource": "secret", "secret": {"secretName": tls_secret}}}


def harbor_values(args: HarborArgs, tls_secret: str | None, admin_secret: pulumi.Input[str],
                  pull_secret: pulumi.Input[str] | None) -> dict[str, Any]:
    """Helm values for the harbor chart: how it is exposed, persistence, Trivy, the admin password by reference.
    The external URL is https either way: through the Gateway or the chart's TLS proxy."""
    cfg, mirror = args.harbor, args.registry.mirror
    values: dict[str, Any] = {
        "expose": expose_values(cfg, args.host, tls_secret),
        "externalURL": f"https://{args.host}",
        "persistence": {"enabled": True, "resourcePolicy": "keep",
                        "persistentVolumeClaim": persistence(cfg, args.cluster.storageClass)},
        "existingSecretAdminPassword": admin_secret,
        "existingSecretAdminPasswordKey": ADMIN_PASSWORD_KEY,
        "trivy": trivy_values(mirror),
    }
    if pull_secret:
        values["imagePullSecrets"] = [{"name": pull_secret}]
    return merge(chart_images(CATALOG.chart("harbor").images, mirror), values)


def persistence(cfg: HarborConfig, storage_class: str | None) -> dict[str, Any]:
    """A PVC per stateful part, each on the cluster's storage class (the default class when none is set)."""
    sizes = cfg.storage
    claims = {"registry": sizes.registry, "database": sizes.database, "redis": sizes.redis, "trivy": sizes.trivy}
    klass = storage_class or ""
    values: dict[str, Any] = {part: {"size": size, "storageClass": klass} for part, size in claims.items()}
    values["jobservice"] = {"jobLog": {"size": sizes.jobservice, "storageClass": klass}}
    return values


def trivy_values(mirror: str | None) -> dict[str, Any]:
    """Trivy on; in air-gap mode it scans offline and downloads its databases from the mirror."""
    if not mirror:
        return {"enabled": True}
    databases = CATALOG.chart("harbor").artifacts  # Trivy's databases, OCI artifacts (see catalog.yaml)
    return {"enabled": True, "offlineScan": True,
            **{path.split(".")[-1]: [mirrored(db.repository, mirror)] for path, db in databases.items()}}


def plain_project(name: str, project: str, quota_gb: int, opts: pulumi.ResourceOptions) -> harbor.Project:
    """A private project with a storage quota that scans what is pushed to it."""
    return harbor.Project(f"{name}-project", name=project, public=False, vulnerability_scanning=True,
                          storage_quota=quota_gb, opts=opts)


def gallery_project(name: str, project: GalleryProject, gallery: Gallery, opts: pulumi.ResourceOptions) -> None:
    """A gallery project: quota and scan on push, its promotion tags immutable and always retained, the newest
    `retainLast` artifacts of every repository kept, and its members' groups."""
    created = plain_project(name, project.name, project.quotaGb, opts)
    tags = promotion_pattern(gallery.promotionTags)
    harbor.ImmutableTagRule(f"{name}-immutable", project_id=created.id, repo_matching="**", tag_matching=tags,
                            opts=opts)
    harbor.RetentionPolicy(
        f"{name}-retention",
        scope=created.id,
        schedule=gallery.retentionSchedule,
        rules=[
            harbor.RetentionPolicyRuleArgs(repo_matching="**", tag_matching=tags, always_retain=True),
            harbor.RetentionPolicyRuleArgs(repo_matching="**", tag_matching="**",
                                           most_recently_pushed=gallery.retainLast),
        ],
        opts=opts,
    )
    for i, member in enumerate(project.members):
        harbor.ProjectMemberGroup(f"{name}-member-{i}", project_id=created.id, group_name=member.group,
                                  type=member.type, role=member.role, opts=opts)


def promotion_pattern(tags: list[str]) -> str:
    """Harbor's doublestar tag pattern for a set of tags: `{approved,prod}` (a single tag stands alone)."""
    return tags[0] if len(tags) == 1 else "{" + ",".join(tags) + "}"


def robot(name: str, robot_name: str, description: str, projects: list[str],
          access: tuple[tuple[str, str], ...], opts: pulumi.ResourceOptions) -> harbor.RobotAccount:
    """A system-level robot account limited to `access` in each of `projects`; Harbor generates its secret."""
    accesses = [harbor.RobotAccountPermissionAccessArgs(resource=resource, action=action)
                for resource, action in access]
    return harbor.RobotAccount(
        name,
        name=robot_name,
        description=description,
        level="system",
        permissions=[harbor.RobotAccountPermissionArgs(kind="project", namespace=p, accesses=accesses)
                     for p in projects],
        opts=opts,
    )
