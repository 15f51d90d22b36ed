"""Rules that span keys, and the hostnames and registries derived from several keys."""

from __future__ import annotations

from collections import Counter

from components.config.schema import (
    ENGINE_FORMATS,
    Cluster,
    Driver,
    MlflowConfig,
    Model,
    PlatformConfig,
    Registry,
    rule_engine,
)


def consistency_errors(cfg: PlatformConfig, set_keys: set[str]) -> list[str]:
    """Rules that span keys: unique names, references, the engine rule, required secrets."""
    errors: list[str] = []
    for field, values in (
        ("name", [m.name for m in cfg.models]),
        ("routingName", [m.routingName for m in cfg.models]),
    ):
        seen = Counter(values)
        errors += [f"pai:models[{i}].{field}: {v!r} is used by more than one model"
                   for i, v in enumerate(values) if seen[v] > 1 and values.index(v) != i]
    errors += _routing_errors(cfg.models)
    tenant_names = [t.name for t in cfg.tenants]
    errors += [f"pai:tenants[{i}].name: {n!r} is used by more than one tenant"
               for i, n in enumerate(tenant_names) if tenant_names.index(n) != i]
    products = cfg.gpu.products if cfg.gpu else []
    for i, tenant in enumerate(cfg.tenants):
        errors += [f"pai:tenants[{i}].quota.gpus.{p}: {p!r} is not a GPU product in pai:gpu.products "
                   f"({', '.join(products) or 'none configured'})"
                   for p in tenant.quota.gpus if p not in products]
    for i, model in enumerate(cfg.models):
        errors += _model_errors(f"pai:models[{i}]", model, cfg, tenant_names)
    if not [e for e in errors if ".tenant:" in e or ".quota.gpus." in e or ".gpus:" in e]:
        errors += _quota_errors(cfg)
    errors += _s3_errors(cfg, set_keys)
    if cfg.gpu:
        errors += _driver_errors(cfg.gpu.driver, set_keys)
    if cfg.monitoring is not None and "grafanaAdminPassword" not in set_keys:
        errors.append(_needs_secret("grafanaAdminPassword", "pai:monitoring needs the Grafana admin password"))
    errors += _vks_errors(cfg) + _supervisor_errors(cfg, set_keys)
    errors += _harbor_errors(cfg, set_keys) + _mlflow_errors(cfg, set_keys) + _mirror_pull_errors(cfg, set_keys)
    if not [e for e in errors if e.startswith("pai:harbor.host")]:  # harbor_host needs a host or a domain
        errors += _gateway_host_errors(cfg) + _bootstrap_errors(cfg)
    return errors


def _quota_errors(cfg: PlatformConfig) -> list[str]:
    """Endpoints that cannot fit their tenant's GPU quota. With Kueue a replica's pod is admitted on one flavour
    (product) of its tenant's ClusterQueue: at most the quota of that product over the whole cohort (its own plus
    what it may borrow). Without Kueue the namespace's ResourceQuota caps all the tenant's GPU requests together."""
    if cfg.gpu is None:
        return []
    errors = []
    index = {t.name: i for i, t in enumerate(cfg.tenants)}
    if cfg.kueue is not None:
        cohort = {p: sum(t.quota.gpus.get(p, 0) for t in cfg.tenants) for p in cfg.gpu.products}
        for i, model in enumerate(cfg.models):
            usable = {p: n for p, n in cohort.items() if model.product in (None, p)}
            most = max(usable.values(), default=0)
            if model.gpus > most:
                product = max(usable, key=lambda p: usable[p])
                errors.append(f"pai:models[{i}].gpus: model {model.name!r} asks for {model.gpus} GPUs per replica; "
                              f"Kueue admits at most {most} {product} in cohort {cfg.kueue.cohort!r} (the sum of every "
                              f"tenant's pai:tenants[].quota.gpus.{product}): raise a quota or lower gpus")
        return errors
    for tenant in cfg.tenants:
        asked = [(m.name, m.gpus, m.replicas) for m in cfg.models if m.tenant == tenant.name and m.gpus]
        total, cap = sum(g * r for _, g, r in asked), sum(tenant.quota.gpus.values())
        if total > cap:
            parts = ", ".join(f"{name} {g} x {r}" for name, g, r in asked)
            errors.append(f"pai:tenants[{index[tenant.name]}].quota.gpus: tenant {tenant.name!r} may request {cap} "
                          f"GPUs (its ResourceQuota) but its endpoints ask for {total} ({parts}, GPUs x replicas): "
                          "raise the quota or lower gpus or replicas")
    return errors


def _vks_errors(cfg: PlatformConfig) -> list[str]:
    """What a VKS cluster needs that a generic one may not: a storage class for volumes, Ubuntu GPU nodes."""
    if cfg.cluster.target != "vks":
        return []
    errors = []
    stateful = [key for key, part in (("pai:harbor", cfg.harbor), ("pai:mlflow", cfg.mlflow),
                                      ("pai:monitoring", cfg.monitoring)) if part is not None]
    # A cluster the stack creates (pai:supervisor) has a default: its Cluster sets the supervisor's storageClass.
    if stateful and cfg.cluster.storageClass is None and cfg.supervisor is None:
        errors.append(f"pai:cluster.storageClass: target vks with volumes ({', '.join(stateful)}): name the vSphere "
                      "storage class they go on (kubectl get storageclass); a VKS cluster has a default only when its "
                      "Cluster sets vsphereOptions.persistentVolumes.defaultStorageClass")
    if cfg.gpu is not None and not cfg.gpu.driver.os.startswith("ubuntu"):
        errors.append(f"pai:gpu.driver.os: target vks: {cfg.gpu.driver.os!r} is not a VKS node image; VKS GPU nodes "
                      "run the Ubuntu node image (ubuntu20.04, ubuntu22.04, ubuntu24.04)")
    return errors


def _supervisor_errors(cfg: PlatformConfig, set_keys: set[str]) -> list[str]:
    """A workload cluster created on the Supervisor: a VKS target of the release's Kubernetes minor, reached through
    the Supervisor's kubeconfig (its own kubeconfig is read from the Cluster), GPU pools where the stack has GPUs."""
    sup = cfg.supervisor
    if sup is None:
        return []
    errors = []
    if cfg.cluster.target != "vks":
        errors.append(f"pai:cluster.target: {cfg.cluster.target!r}: pai:supervisor creates a VKS cluster; set vks")
    if cfg.cluster.kubernetesVersion != sup.kubernetes_minor:
        errors.append(f"pai:cluster.kubernetesVersion: {cfg.cluster.kubernetesVersion!r} differs from the Kubernetes "
                      f"of pai:supervisor.release {sup.release!r} ({sup.kubernetes_minor}): set the same minor")
    if "supervisorKubeconfig" not in set_keys:
        errors.append(_needs_secret("supervisorKubeconfig", "pai:supervisor creates the cluster through the "
                                    "Supervisor's kubeconfig (a vSphere namespace user's)"))
    if "kubeconfig" in set_keys:
        errors.append("pai:kubeconfig: with pai:supervisor the platform's kubeconfig is read from the Cluster's "
                      f"Secret {sup.cluster}-kubeconfig; remove pai:kubeconfig")
    if cfg.gpu is not None and not sup.gpu_pools:
        errors.append("pai:supervisor.nodePools: pai:gpu is set but no node pool has gpu: true; add a pool whose "
                      "vmClass carries a vGPU profile")
    if cfg.gpu is None and sup.gpu_pools:
        errors.append(f"pai:supervisor.nodePools: {sup.gpu_pools[0].name!r} has gpu: true but pai:gpu is not set; "
                      "set pai:gpu (driver mode vgpu on VKS) or drop gpu: true")
    return errors


def _needs_secret(key: str, why: str) -> str:
    """A required secret that is not set: why it is needed, and how to set it."""
    return f"pai:{key}: {why} (`pulumi config set --secret {key} ...`)"


def _s3_errors(cfg: PlatformConfig, set_keys: set[str]) -> list[str]:
    """A model read from S3 needs the store's endpoint and both keys, as secrets."""
    readers = [m for m in cfg.models if m.source.startswith("s3://")]
    if not readers:
        return []
    first = f"model {readers[0].name!r} reads {readers[0].source}"
    errors = [] if cfg.s3 else [f"pai:s3: {first}: set pai:s3.endpoint (and region, useHttps, verifySsl as needed)"]
    errors += [f"pai:{key}: {first}: set it with `pulumi config set --secret {key} ...`"
               for key in ("s3AccessKeyId", "s3SecretAccessKey") if key not in set_keys]
    return errors


MIRROR_PULL_KEYS = ("mirrorPullUsername", "mirrorPullPassword")


def _mirror_pull_errors(cfg: PlatformConfig, set_keys: set[str]) -> list[str]:
    """The mirror account comes as a pair, and only with the mirror and the name of the Secret made from it."""
    given = [k for k in MIRROR_PULL_KEYS if k in set_keys]
    if not given:
        return []
    both = "pai:mirrorPullUsername and pai:mirrorPullPassword"
    errors = [_needs_secret(k, f"set together with pai:{given[0]}: the mirror's pull Secret needs both")
              for k in MIRROR_PULL_KEYS if k not in set_keys]
    if not cfg.registry.mirror:
        errors.append(f"pai:registry.mirror: {both} are an account on the air-gap mirror: set the mirror "
                      "(host/prefix) too")
    if not cfg.registry.pullSecret:
        errors.append(f"pai:registry.pullSecret: {both} make the platform create the mirror's pull Secret: "
                      "set its name too (e.g. mirror-pull)")
    return errors


def _routing_errors(models: list[Model]) -> list[str]:
    """The gateway names one rule per routing name by its route key."""
    errors = []
    first: dict[str, Model] = {}
    for i, model in enumerate(models):
        other = first.setdefault(model.route_key, model)
        if other is not model and other.routingName != model.routingName:
            errors.append(f"pai:models[{i}].routingName: {model.routingName!r} and {other.routingName!r} give the "
                          f"same gateway rule name {model.route_key!r}; rename one")
    return errors


def _harbor_errors(cfg: PlatformConfig, set_keys: set[str]) -> list[str]:
    if cfg.harbor is None:
        return []
    errors = []
    if "harborAdminPassword" not in set_keys:
        errors.append(_needs_secret("harborAdminPassword", "Harbor needs its admin password"))
    if cfg.harbor.host is None and cfg.cluster.ingress.domain is None:
        errors.append("pai:harbor.host: required when pai:cluster.ingress.domain is not set")
    gallery = cfg.gallery
    names = [("dev.name", gallery.dev.name), ("prod.name", gallery.prod.name), ("charts", gallery.charts),
             ("mirror", harbor_mirror_project(cfg))]
    seen = [n for _, n in names]
    errors += [f"pai:gallery.{key}: {name!r} is used by more than one gallery project"
               for i, (key, name) in enumerate(names) if seen.index(name) != i]
    prefix = f"oci://{harbor_host(cfg)}/"
    projects = [gallery.dev.name, gallery.prod.name]
    for i, model in enumerate(cfg.models):
        project = model.source.removeprefix(prefix).split("/", 1)[0]
        if model.source.startswith(prefix) and project not in projects:
            errors.append(f"pai:models[{i}].source: {project!r} is not a gallery project on this Harbor "
                          f"({', '.join(projects)})")
    return errors


def _mlflow_errors(cfg: PlatformConfig, set_keys: set[str]) -> list[str]:
    if cfg.mlflow is None:
        return []
    needed = ["mlflowDbPassword", "mlflowAdminPassword", "s3AccessKeyId", "s3SecretAccessKey"]
    errors = [_needs_secret(k, "MLflow needs it") for k in needed if k not in set_keys]
    # The bundled MinIO's images are pinned in the catalog and mirrored like the others; the bundled PostgreSQL's
    # image is left to its chart (bitnami, whose source is in no public repository), so it cannot be mirrored.
    if cfg.registry.mirror and cfg.mlflow.database.host is None:
        errors.append("pai:mlflow.database.host: air-gap mode needs an external PostgreSQL (the chart's bundled "
                      "PostgreSQL image is not in the catalog)")
    return errors


def harbor_host(cfg: PlatformConfig) -> str:
    """Harbor's DNS name: pai:harbor.host, else harbor.<ingress domain>."""
    assert cfg.harbor is not None
    return cfg.harbor.host or f"harbor.{cfg.cluster.ingress.domain}"


def mlflow_host(mlflow: MlflowConfig, cluster: Cluster) -> str | None:
    """MLflow's Gateway hostname: pai:mlflow.host, else mlflow.<ingress domain>; None keeps MLflow in-cluster only."""
    return mlflow.host or (f"mlflow.{cluster.ingress.domain}" if cluster.ingress.domain else None)


def gateway_hosts(cfg: PlatformConfig) -> dict[str, str]:
    """Each hostname the platform Gateway listens on, by the config key it comes from."""
    hosts = {}
    if cfg.models and cfg.cluster.ingress.domain:
        hosts["pai:cluster.ingress.domain"] = cfg.cluster.ingress.domain
    if cfg.harbor is not None and cfg.harbor.expose == "gateway":
        hosts["pai:harbor.host"] = harbor_host(cfg)
    mlflow = mlflow_host(cfg.mlflow, cfg.cluster) if cfg.mlflow is not None else None
    if mlflow:
        hosts["pai:mlflow.host"] = mlflow
    return hosts


def _gateway_host_errors(cfg: PlatformConfig) -> list[str]:
    """Two Gateway listeners on one hostname conflict: each service needs its own."""
    seen: dict[str, str] = {}
    errors = []
    for key, host in gateway_hosts(cfg).items():
        if host in seen:
            errors.append(f"{key}: {host!r} is also {seen[host]}; the Gateway needs a hostname per service")
        seen.setdefault(host, key)
    return errors


def _bootstrap_errors(cfg: PlatformConfig) -> list[str]:
    """A mirror on this stack's own Harbor needs a bootstrap registry outside the stack, and only then."""
    mirror, bootstrap = cfg.registry.mirror, cfg.registry.bootstrap
    own = harbor_host(cfg) if cfg.harbor is not None else None
    on_own = mirror_on_own_harbor(cfg)
    if on_own and not bootstrap:
        return [f"pai:registry.mirror: {mirror} is on this stack's own Harbor, which cannot serve its own images, "
                "nor those of cert-manager and the Gateway in front of it, before it runs: set "
                "pai:registry.bootstrap to a registry outside this stack that holds them"]
    if bootstrap and bootstrap.split("/")[0] == own:
        return [f"pai:registry.bootstrap: {bootstrap} is this stack's own Harbor; it must be a registry outside "
                "this stack"]
    if bootstrap and not on_own:
        where = f"({own})" if own else "(pai:harbor is not set)"
        return [f"pai:registry.bootstrap: only for a pai:registry.mirror on this stack's own Harbor {where}; "
                + (f"{mirror} is not" if mirror else "pai:registry.mirror is not set")]
    return []


def mirror_on_own_harbor(cfg: PlatformConfig) -> bool:
    """The air-gap mirror is a project of the Harbor this stack installs."""
    mirror = cfg.registry.mirror
    return cfg.harbor is not None and mirror is not None and mirror.split("/")[0] == harbor_host(cfg)


def harbor_chain_registry(cfg: PlatformConfig) -> Registry:
    """The registry config of Harbor and what serves it (cert-manager, the Gateway): the bootstrap registry in
    place of a mirror on this stack's own Harbor, else the stack's own."""
    if cfg.registry.bootstrap:
        return cfg.registry.model_copy(update={"mirror": cfg.registry.bootstrap})
    return cfg.registry


def harbor_mirror_project(cfg: PlatformConfig) -> str:
    """The Harbor project the air-gap mirror pushes into: the mirror's first path part when the mirror is on
    this Harbor, else `mirror`."""
    mirror = cfg.registry.mirror
    if mirror_on_own_harbor(cfg) and mirror and "/" in mirror:
        return mirror.split("/")[1]
    return "mirror"


def _model_errors(path: str, model: Model, cfg: PlatformConfig, tenants: list[str]) -> list[str]:
    errors = []
    if model.tenant not in tenants:
        errors.append(f"{path}.tenant: {model.tenant!r} is not one of the tenants in pai:tenants "
                      f"({', '.join(tenants) or 'none configured'})")
    if model.gpus and cfg.gpu is None:
        errors.append(f"{path}.gpus: model {model.name!r} asks for {model.gpus} GPU(s) but pai:gpu is not configured")
    if model.product is not None and model.product not in (cfg.gpu.products if cfg.gpu else []):
        errors.append(f"{path}.product: {model.product!r} is not a GPU product in pai:gpu.products")
    if model.product is not None and not model.gpus:
        errors.append(f"{path}.product: model {model.name!r} names a GPU product but asks for no GPUs")
    expected = rule_engine(model)
    engine = model.resolved_engine
    where = "on GPU" if model.gpus else "on CPU"
    if engine != expected:
        article = "an" if model.type[0] in "aeiou" else "a"
        errors.append(f"{path}.engine: model {model.name!r} is {article} {model.type} model {where}: the engine rule "
                      f"serves it with {expected}, not {engine}")
    elif model.format not in ENGINE_FORMATS[engine]:
        hint = " (a completion model with no GPU needs GGUF weights)" if engine == "llamacpp" else ""
        errors.append(f"{path}.format: model {model.name!r}: {engine} serves "
                      f"{', '.join(ENGINE_FORMATS[engine])}, not {model.format}{hint}")
    return errors


def _driver_errors(driver: Driver, set_keys: set[str]) -> list[str]:
    errors = []
    if driver.mode == "vgpu":
        if driver.image is None:
            errors.append("pai:gpu.driver.image: vgpu mode needs the customer-built vGPU guest driver image "
                          "from the private registry")
        if driver.version is None:
            errors.append("pai:gpu.driver.version: vgpu mode needs the guest driver version")
        if driver.licensing is not None and not driver.licensing.nlsEnabled:
            errors.append("pai:gpu.driver.licensing.nlsEnabled: vGPU 15 and later license only through the NVIDIA "
                          "License System; the legacy license server is not supported (set true or omit)")
        if "nlsClientToken" not in set_keys:
            errors.append(_needs_secret("nlsClientToken", "vgpu mode needs the NLS client configuration token"))
    if driver.image is not None and ("@" in driver.image or ":" in driver.image.rsplit("/", 1)[-1]):
        errors.append(f"pai:gpu.driver.image: {driver.image!r}: give the repository without a tag or digest; "
                      "the GPU Operator pulls <image>:<driver.version>-<node OS>, e.g. :580.95.05-ubuntu22.04")
    if driver.mode != "vgpu":
        if driver.licensing is not None:
            errors.append(f"pai:gpu.driver.licensing: only vgpu mode is licensed, not {driver.mode}")
        if driver.mode == "preinstalled" and driver.image is not None:
            errors.append("pai:gpu.driver.image: preinstalled mode installs no driver image")
    return errors
