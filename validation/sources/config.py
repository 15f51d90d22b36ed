"""The offline source of facts: what a stack's config plans (origin "config").

No cluster is read. The planned GPU nodes are one per product in pai:gpu.products, running the planned driver
(pai:gpu.driver.version, else the operator release's default driver in datacenter mode); the runtime images are
those of the engines that serve a model on GPU, with the CUDA the catalog records for them.
"""

from __future__ import annotations

from components.catalog import CATALOG
from components.config import PlatformConfig, Supervisor
from components.vks_cluster import cluster_variables, pool_variables
from validation.facts import (
    CrdFacts,
    DriverFacts,
    Facts,
    HostFacts,
    KubernetesFacts,
    ModelFacts,
    NodeFacts,
    OperatorFacts,
    Origin,
    RuntimeImageFacts,
    VksPlanFacts,
    VksPoolFacts,
)
from validation.matrix import load_matrix

ORIGIN: Origin = "config"
HOSTS = "pai:gpu.hosts"
CONTROL_PLANE = "control-plane"  # the name of the control plane among VksPlanFacts.pools


def planned_node(product: str) -> str:
    """The name config_facts gives the planned node of a GPU product."""
    return f"planned {product}"


def config_facts(cfg: PlatformConfig, source: str) -> Facts:
    """The facts a config plans; `source` names the stack file for the report."""
    models = [ModelFacts(origin=ORIGIN, name=m.name, engine=m.resolved_engine, format=m.format, gpus=m.gpus,
                         product=m.product) for m in cfg.models]
    facts = Facts(
        sources={ORIGIN: source},
        kubernetes=KubernetesFacts(origin=ORIGIN, version=cfg.cluster.kubernetesVersion),
        models=models,
        runtime_images=_runtime_images(cfg),
        vks=_vks(cfg),
    )
    gpu = cfg.gpu
    if gpu is None:
        return facts
    driver = gpu.driver.version
    if driver is None and gpu.driver.mode == "datacenter":
        driver = CATALOG.chart("gpu-operator").versions[gpu.operator.version].defaultDriver
    release = load_matrix().operator(gpu.operator.version)
    crds = [CrdFacts(origin=ORIGIN, name=name, stored_versions=versions, served_versions=versions)
            for name, versions in ((release.crds or {}) if release else {}).items()]
    hosts = [HostFacts(origin=ORIGIN, name=HOSTS, vgpu_manager_version=gpu.hosts.vgpuManagerVersion)
             ] if gpu.hosts.vgpuManagerVersion else []
    nodes = [NodeFacts(origin=ORIGIN, name=planned_node(p), products={p: 0}, driver_version=driver,
                       mig_mode=gpu.migStrategy) for p in gpu.products]
    return facts.model_copy(update={
        "operator": OperatorFacts(origin=ORIGIN, version=gpu.operator.version),
        "driver": DriverFacts(origin=ORIGIN, mode=gpu.driver.mode, version=driver, image=gpu.driver.image),
        "nodes": nodes, "hosts": hosts, "crds": crds,
    })


def _vks(cfg: PlatformConfig) -> VksPlanFacts | None:
    """The workload cluster pai:supervisor creates: the control plane and each node pool with its VM class."""
    sup = cfg.supervisor
    if sup is None:
        return None
    pools = [VksPoolFacts(name=CONTROL_PLANE, vm_class=sup.controlPlane.vmClass, replicas=sup.controlPlane.replicas)]
    pools += [VksPoolFacts(name=p.name, vm_class=p.vmClass, replicas=p.replicas, gpu=p.gpu) for p in sup.nodePools]
    return VksPlanFacts(origin=ORIGIN, namespace=sup.namespace, cluster=sup.cluster, release=sup.release,
                        cluster_class=sup.clusterClass, cluster_class_namespace=sup.clusterClassNamespace,
                        variables=written_variables(sup), pools=pools,
                        gpu_products=list(cfg.gpu.products) if cfg.gpu else [],
                        node_os=cfg.gpu.driver.os if cfg.gpu else None)


def written_variables(sup: Supervisor) -> list[str]:
    """The names of the topology variables the Cluster sets (cluster-wide and in any pool's overrides), in order."""
    written = [v["name"] for v in cluster_variables(sup, sup.storageClass)]
    written += [v["name"] for pool in sup.nodePools for v in pool_variables(pool)]
    return list(dict.fromkeys(written))


def _runtime_images(cfg: PlatformConfig) -> list[RuntimeImageFacts]:
    engines = sorted({m.resolved_engine for m in cfg.models if m.gpus > 0})
    images = []
    for engine in engines:
        ref = cfg.runtimes.image(engine)
        # A catalog key, or a reference that is a catalog image: the catalog knows its CUDA; else the matrix
        # may know the upstream image.
        pin = next((p for p in CATALOG.images.values() if p.ref == ref), None)
        match = None if pin else load_matrix().runtime_image(ref)
        cuda = pin.cuda if pin else match.row.cuda if match else None
        unverified = pin.unverified if pin else match.row.unverified if match else False
        images.append(RuntimeImageFacts(origin=ORIGIN, engine=engine, image=ref, cuda=cuda, unverified=unverified,
                                        assumed=bool(match and match.assumed)))
    return images
