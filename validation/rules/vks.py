"""VKS workload clusters (pai:supervisor): VM classes and their vGPU profiles, the ESXi hosts that serve them, the
release against the GPU Operator, the node OS, the namespace's memory limits, the ClusterClass's variables.

The release and node OS checks run offline on the config; the others need the Supervisor (and vCenter for the
hosts) and skip, saying what would run them, when it was not read.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import replace

from components.config import release_minor
from components.vks_cluster import topology_version
from validation.facts import Facts, HostFacts, KubernetesFacts, Record, VksPlanFacts, VksPoolFacts, VmClassFacts
from validation.matrix import Matrix, Row, vgpu_type_name
from validation.rules.helpers import _operator_release, _skip, _sources, _unverified
from validation.rules.operator import _operator_kubernetes
from validation.rules.registry import NOT_APPLICABLE, Check, Rule, rule

SUPERVISOR = "supervisor"
READ_SUPERVISOR = ("the Supervisor was not read (paictl validate --live --supervisor-kubeconfig PATH; pulumi up "
                   "reads it through pai:supervisorKubeconfig)")
READ_VCENTER = "vCenter was not read (paictl validate --live --vcenter HOST --vcenter-user USER)"
GIB = 2**30
NO_VGPU_CLASS = "none is offered: a vSphere admin creates one with an NVIDIA vGPU device and adds it to the namespace"
# vm-operator locks a VM's memory reservation to its full memory when it has a PCI passthrough device (a vGPU is
# one): the namespace's limits must hold the whole memory of every GPU VM.
FULL_RESERVATION_SOURCE = ("vmware-tanzu/vm-operator@506dc5dc:pkg/util/devices.go (RequiresMemoryReservationLock: "
                           "VirtualPCIPassthrough devices require ConfigSpec.MemoryReservationLockedToMax)")


VksRule = Callable[[Facts, VksPlanFacts, Matrix], list[Check]]


def vks_rule(check_id: str, live: str | None = None) -> Callable[[VksRule], Rule]:
    """Register a rule over the planned VKS cluster: not applicable without pai:supervisor; `live`: the subject
    (formatted with the plan's fields) of the skip when the Supervisor was not read."""
    def register(fn: VksRule) -> Rule:
        @functools.wraps(fn)
        def checked(facts: Facts, m: Matrix) -> list[Check]:
            vks = facts.vks
            if vks is None:
                return [Check(check_id, "skip", "VKS cluster", f"{NOT_APPLICABLE}: no pai:supervisor (the cluster is "
                              "not created on a Supervisor)")]
            if live is not None and not _supervisor_read(facts):
                return _skip(check_id, live.format(**vks.model_dump()), READ_SUPERVISOR)
            return fn(facts, vks, m)
        return rule(check_id)(checked)
    return register


def _supervisor_read(facts: Facts) -> bool:
    return SUPERVISOR in facts.sources


def _pool_key(vks: VksPlanFacts, pool: VksPoolFacts) -> str:
    """The config key of a pool's VM class (the control plane comes first in VksPlanFacts.pools)."""
    index = vks.pools.index(pool)
    return f"pai:supervisor.nodePools[{index - 1}].vmClass" if index else "pai:supervisor.controlPlane.vmClass"


def _class_of(facts: Facts, vks: VksPlanFacts, pool: VksPoolFacts) -> VmClassFacts | None:
    return next((c for c in facts.vm_classes if c.name == pool.vm_class and c.namespace == vks.namespace), None)


def _vgpu_type(profile: str) -> str:
    """The vGPU type of a vSphere profile: nvidia_h100xm-80c and grid_a100-40c are H100XM-80C and A100-40C."""
    return profile.split("_", 1)[-1].upper()


@vks_rule("vks-vm-class", live="VM classes in {namespace}")
def vks_vm_class(facts: Facts, vks: VksPlanFacts, m: Matrix) -> list[Check]:
    """Every pool's VM class is offered in the vSphere namespace; a GPU pool's carries a vGPU profile."""
    offered = sorted(c.name for c in facts.vm_classes if c.namespace == vks.namespace)
    with_vgpu = ", ".join(sorted(c.name for c in facts.vm_classes if c.namespace == vks.namespace
                                 and c.vgpu_profiles)) or NO_VGPU_CLASS
    checks = []
    for pool in vks.pools:
        found = _class_of(facts, vks, pool)
        subject = f"VirtualMachineClass {vks.namespace}/{pool.vm_class}"
        what = f"{'GPU pool' if pool.gpu else 'pool'} {pool.name}"
        if found is None:
            checks.append(Check("vks-vm-class", "fail", subject, f"{what} names VM class {pool.vm_class}, which the "
                                f"vSphere namespace {vks.namespace} does not offer (it offers: "
                                f"{', '.join(offered) or 'none'})",
                                f"a vSphere admin adds {pool.vm_class} to the namespace's VM classes (vCenter: "
                                f"Workload Management > Namespaces > {vks.namespace} > VM Service), or set "
                                f"{_pool_key(vks, pool)} to one it offers", _sources(facts, [vks])))
        elif pool.gpu and not found.vgpu_profiles:
            checks.append(Check("vks-vm-class", "fail", subject, f"{what}'s VM class {pool.vm_class} carries no vGPU "
                                "profile (none in spec.hardware.devices.vgpuDevices nor in spec.configSpec)",
                                f"set {_pool_key(vks, pool)} to a VM class with a vGPU profile "
                                f"({with_vgpu})", _sources(facts, [vks, found])))
        elif not pool.gpu and found.vgpu_profiles:
            checks.append(Check("vks-vm-class", "warn", subject, f"{what} is not a GPU pool, but its VM class "
                                f"{pool.vm_class} carries vGPU profile {', '.join(found.vgpu_profiles)}: its nodes "
                                "get no nvidia.com/gpu taint and hold a vGPU each",
                                "set gpu: true on the pool, or give it a VM class without a vGPU",
                                _sources(facts, [vks, found])))
        else:
            profile = f" with vGPU profile {', '.join(found.vgpu_profiles)}" if found.vgpu_profiles else ""
            checks.append(Check("vks-vm-class", "pass", subject, f"{what}: the namespace offers VM class "
                                f"{pool.vm_class}{profile}", "", _sources(facts, [vks, found])))
    return checks


def _gpu_classes(facts: Facts, vks: VksPlanFacts) -> list[tuple[VksPoolFacts, VmClassFacts]]:
    """The GPU pools whose VM class was read and carries a vGPU profile."""
    pairs = [(p, _class_of(facts, vks, p)) for p in vks.pools if p.gpu]
    return [(p, c) for p, c in pairs if c is not None and c.vgpu_profiles]


@vks_rule("vks-vgpu-profile", live="vGPU profiles")
def vks_vgpu_profile(facts: Facts, vks: VksPlanFacts, m: Matrix) -> list[Check]:
    """The GPU pools' vGPU profiles are the vGPU types pai:gpu.products names (GFD labels the nodes with them)."""
    if not vks.gpu_products:
        return _skip("vks-vgpu-profile", "vGPU profiles", "pai:gpu.products is empty")
    pairs = _gpu_classes(facts, vks)
    if not pairs:
        return _skip("vks-vgpu-profile", "vGPU profiles", "no GPU pool's VM class with a vGPU profile was read "
                     "(see vks-vm-class)")
    named = {vgpu_type_name(p).upper(): p for p in vks.gpu_products}
    wanted = ", ".join(f"nvidia_{t.lower()}" for t in named)
    checks = []
    for pool, vm_class in pairs:
        for profile in vm_class.vgpu_profiles:
            vgpu_type = _vgpu_type(profile)
            row = m.vgpu_type(vgpu_type)
            board = f"{row.gpu} board, {row.framebuffer_gb} GB" if row else "a board the matrix does not know"
            subject = f"vGPU profile {profile} of {vks.namespace}/{vm_class.name}"
            rows: list[Row | None] = [row]
            sources = _sources(facts, [vks, vm_class], rows)
            product = named.get(vgpu_type)
            if product is None:
                boards = sorted({r.gpu for r in map(m.vgpu_type, named) if r is not None})
                checks.append(Check(
                    "vks-vgpu-profile", "fail", subject,
                    f"GPU pool {pool.name}'s VM class {vm_class.name} carries vGPU profile {profile} (type "
                    f"{vgpu_type}, {board}), but pai:gpu.products names {', '.join(vks.gpu_products)} "
                    f"({', '.join(boards) or 'no known board'}): GPU Feature Discovery labels these nodes "
                    f"NVIDIA-{vgpu_type}, which nothing the stack plans selects{_unverified(rows)}",
                    f"add NVIDIA-{vgpu_type} to pai:gpu.products, or set {_pool_key(vks, pool)} to a VM class "
                    f"whose profile is {wanted}", sources))
            elif row is None:
                checks.append(Check("vks-vgpu-profile", "warn", subject, f"profile {profile} matches "
                                    f"pai:gpu.products {product}, but {vgpu_type} is not a vGPU type of the matrix",
                                    "add its board to validation/data/vgpu.yaml (types)", sources))
            else:
                checks.append(Check("vks-vgpu-profile", "pass", subject, f"profile {profile} is vGPU type "
                                    f"{vgpu_type} ({board}), named in pai:gpu.products as {product}"
                                    f"{_unverified(rows)}", "", sources))
    return checks


@vks_rule("vks-host-profile", live="ESXi hosts")
def vks_host_profile(facts: Facts, vks: VksPlanFacts, m: Matrix) -> list[Check]:
    """Some ESXi host offers each GPU pool's vGPU profile (config.sharedPassthruGpuTypes), in the graphics mode
    vGPU needs, with the NVIDIA vGPU manager installed (its branch against the guest driver: vgpu-host-guest)."""
    hosts = [h for h in facts.hosts if h.origin == "vcenter"]
    if not hosts:
        return _skip("vks-host-profile", "ESXi hosts", READ_VCENTER)
    profiles = dict.fromkeys(p for _, c in _gpu_classes(facts, vks) for p in c.vgpu_profiles)
    if not profiles:
        return _skip("vks-host-profile", "ESXi hosts", "no GPU pool's VM class with a vGPU profile was read "
                     "(see vks-vm-class)")
    mode = m.vgpu_host_graphics
    rows: list[Row | None] = [mode]
    checks = []
    for profile in profiles:
        offering = [h for h in hosts if profile in h.vgpu_profiles]
        ready = [h for h in offering if _shared_direct(h, mode.value) and h.vgpu_manager_version]
        subject = f"vGPU profile {profile} on ESXi hosts"
        if ready:
            managers = ", ".join(sorted({str(h.vgpu_manager_version) for h in ready}))
            checks.append(Check("vks-host-profile", "pass", subject, f"{_offer(ready)} {profile} in graphics "
                                f"mode {mode.value} with vGPU manager {managers} (against the guest driver: "
                                f"vgpu-host-guest){_unverified(rows)}", "", _sources(facts, ready, rows)))
        elif not offering:
            seen = "; ".join(f"{h.name}: {', '.join(h.vgpu_profiles) or 'none'}" for h in hosts[:5])
            checks.append(Check("vks-host-profile", "fail", subject, f"no ESXi host offers vGPU profile {profile} "
                                f"(config.sharedPassthruGpuTypes: {seen})",
                                "install the GPU and the NVIDIA vGPU manager on hosts of the Supervisor's cluster, or "
                                "use a VM class whose profile the hosts offer", _sources(facts, hosts)))
        else:
            checks.append(Check("vks-host-profile", "fail", subject, f"{_offer(offering)} {profile}, but "
                                + "; ".join(_unready(h, mode.value) for h in offering) + _unverified(rows),
                                f"set the hosts' default graphics type to Shared Direct ({mode.value}: vCenter > host "
                                "> Configure > Graphics) and install the NVIDIA vGPU manager VIB, then reboot them",
                                _sources(facts, offering, rows)))
    return checks


def _shared_direct(host: HostFacts, mode: str) -> bool:
    return mode in (host.graphics_mode or "").split(",")


def _unready(host: HostFacts, mode: str) -> str:
    wrong = [] if _shared_direct(host, mode) else [f"its graphics mode is {host.graphics_mode or 'unknown'}, not "
                                                   f"{mode}"]
    missing = [] if host.vgpu_manager_version else ["no NVIDIA vGPU manager VIB is installed"]
    return f"{host.name}: {' and '.join(wrong + missing)}"


def _offer(hosts: list[HostFacts]) -> str:
    """"esx-01 offers", "esx-01, esx-02 offer", "esx-01, esx-02, esx-03 and 2 more offer"."""
    names = [h.name for h in hosts]
    shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
    return f"{shown} {'offers' if len(names) == 1 else 'offer'}"


@vks_rule("vks-release")
def vks_release(facts: Facts, vks: VksPlanFacts, m: Matrix) -> list[Check]:
    """The VKS release's Kubernetes minor against the GPU Operator's range, and its VKS range where it has one."""
    operator = facts.operator_version
    if operator is None:
        return [Check("vks-release", "skip", f"VKS release {vks.release}", f"{NOT_APPLICABLE}: no GPU Operator is "
                      "planned (pai:gpu)")]
    minor = release_minor(vks.release)
    if minor is None:
        return _skip("vks-release", f"VKS release {vks.release}", f"{vks.release} is not a VKS release name")
    said = f"pai:supervisor.release {vks.release} is Kubernetes {minor}; "
    check = _operator_kubernetes("vks-release", facts, operator, KubernetesFacts(origin=vks.origin, version=minor), m)
    check = replace(check, subject=f"VKS release {vks.release} with gpu-operator {operator.version}",
                    message=said + check.message, sources=(*_sources(facts, [vks]), *check.sources))
    release = m.operator(operator.version)
    span = release.vks.kubernetes if release and release.vks else None
    if check.status != "pass" or release is None or release.vks is None or span is None:
        return [check]
    vks_row = f"matrix: {release.label} vks: {release.vks.source}"
    if span.contains(minor):
        return [replace(check, message=f"{check.message}, on VKS {span.min}-{span.max}",
                        sources=(*check.sources, vks_row))]
    return [replace(check, status="fail", message=f"{said}gpu-operator {operator.version} is validated on VKS "
                    f"with Kubernetes {span.min}-{span.max} only",
                    fix=f"use a VKS release of Kubernetes {span.min}-{span.max} (pai:supervisor.release and "
                    "pai:cluster.kubernetesVersion)",
                    sources=(*check.sources, vks_row))]


@vks_rule("vks-node-os")
def vks_node_os(facts: Facts, vks: VksPlanFacts, m: Matrix) -> list[Check]:
    """The GPU nodes' OS (pai:gpu.driver.os; GPU pools run the release's Ubuntu image) is one the GPU Operator
    release is validated with on VKS; live, the namespace serves an Ubuntu image of that version for the release."""
    release = _operator_release(facts, m)
    if vks.node_os is None or facts.operator_version is None:
        return [Check("vks-node-os", "skip", "GPU node OS", f"{NOT_APPLICABLE}: no GPU Operator is planned "
                      "(pai:gpu)")]
    subject = f"GPU node OS {vks.node_os} of VKS release {vks.release}"
    version = facts.operator_version.version
    if release is None or release.vks is None:
        return [Check("vks-node-os", "warn", subject, f"the matrix has no VKS support row for gpu-operator {version}",
                      "add its platform-support VKS column to validation/data/gpu_operator.yaml (vks)",
                      _sources(facts, [vks]))]
    cited = (*_sources(facts, [vks]), f"matrix: {release.label} vks: {release.vks.source}")
    if vks.node_os not in release.vks.os:
        return [Check("vks-node-os", "fail", subject, f"gpu-operator {version} is validated on VKS with "
                      f"{', '.join(release.vks.os)} nodes; pai:gpu.driver.os is {vks.node_os}",
                      f"set pai:gpu.driver.os to {release.vks.os[-1]} (and build the guest driver image for it), with "
                      "a VKS release whose Ubuntu image is that version", cited)]
    if not _supervisor_read(facts):
        return [Check("vks-node-os", "pass", subject, f"gpu-operator {version} is validated on VKS with "
                      f"{', '.join(release.vks.os)} nodes (the release's images not checked: {READ_SUPERVISOR})", "",
                      cited)]
    images = [i for i in facts.vm_images if vks.release in (i.display_name or "")
              or topology_version(vks.release) in (i.product_version or "")]
    if not images:
        return [Check("vks-node-os", "warn", subject, f"the Supervisor serves no VirtualMachineImage of release "
                      f"{vks.release} to namespace {vks.namespace} (or the reader may not list them)",
                      "a vSphere admin associates the content library with the VKS releases to the namespace",
                      cited)]
    ubuntu = [i for i in images if "ubuntu" in f"{i.os_type} {i.display_name}".lower()]
    wanted = vks.node_os.removeprefix("ubuntu")
    matching = [i for i in ubuntu if wanted in f"{i.os_version} {i.display_name}"
                or wanted.replace(".", "") in (i.display_name or "")]
    shown = ", ".join(f"{i.name} ({i.display_name or i.os_type})" for i in images[:3])
    records: list[Record] = [vks, *images]
    if not matching:
        found_os = "no Ubuntu image" if not ubuntu else "an Ubuntu image of another version"
        return [Check("vks-node-os", "fail", subject, f"release {vks.release} has {found_os} for {vks.node_os} in "
                      f"namespace {vks.namespace} ({shown}): the GPU pools resolve no node image the guest driver "
                      "is built for", f"use a VKS release with an Ubuntu {wanted} image, or set pai:gpu.driver.os to "
                      "the version its Ubuntu image has", (*_sources(facts, records), *cited[1:]))]
    return [Check("vks-node-os", "pass", subject, f"gpu-operator {version} is validated on VKS with "
                  f"{', '.join(release.vks.os)}; the release's Ubuntu image {matching[0].name} "
                  f"({matching[0].display_name}) serves it", "", (*_sources(facts, records), *cited[1:]))]


@vks_rule("vks-memory-reservation", live="memory limits of {namespace}")
def vks_memory_reservation(facts: Facts, vks: VksPlanFacts, m: Matrix) -> list[Check]:
    """The namespace's memory limits hold every VM of the cluster, GPU VMs with their memory fully reserved."""
    sized = [(p, c, c.memory) for p in vks.pools for c in [_class_of(facts, vks, p)] if c and c.memory]
    if len(sized) < len(vks.pools):
        unknown = sorted({p.name for p in vks.pools} - {p.name for p, _, _ in sized})
        return _skip("vks-memory-reservation", f"memory limits of {vks.namespace}", "the memory of the VM class of "
                     f"{', '.join(unknown)} is not known (see vks-vm-class)")
    memory = sum(p.replicas * size for p, _, size in sized)
    reserved = sum(p.replicas * (size if p.gpu else c.memory_reservation or 0) for p, c, size in sized)
    needs = {"limits.memory": memory, "memory": memory, "requests.memory": reserved}
    gpu = [p for p in vks.pools if p.gpu]
    plan = (f"{sum(p.replicas for p in vks.pools)} VMs take {_gib(memory)} of memory, {_gib(reserved)} reserved "
            f"({', '.join(f'{p.replicas} x {p.vm_class}' for p in gpu)} fully: a vGPU VM's memory is locked to its "
            "size)")
    source = f"rule: {FULL_RESERVATION_SOURCE}"
    quotas = [q for q in facts.quotas if q.namespace == vks.namespace and set(q.hard) & set(needs)]
    if not quotas:
        return [Check("vks-memory-reservation", "pass", f"memory limits of {vks.namespace}", f"{plan}; the namespace "
                      "sets no memory limit", "", (*_sources(facts, [vks, *(c for _, c, _ in sized)]), source))]
    checks = []
    for quota in quotas:
        subject = f"ResourceQuota {vks.namespace}/{quota.name}"
        short = {k: v for k, v in quota.hard.items() if k in needs and v < needs[k]}
        taken = {k: v for k, v in quota.hard.items() if k in needs and v - quota.used.get(k, 0) < needs[k]}
        cited = (*_sources(facts, [vks, quota]), source)
        if short or taken:
            least = _gib(max(needs[k] for k in short or taken))
            fix = (f"raise the vSphere namespace's memory limit to at least {least} (vCenter: Namespaces > "
                   f"{vks.namespace} > Capacity and Usage), or plan fewer or smaller VMs")
        if short:
            checks.append(Check("vks-memory-reservation", "fail", subject, f"{plan}; {quota.name} allows "
                                + ", ".join(f"{k} {_gib(v)}" for k, v in short.items()), fix, cited))
        elif taken:
            checks.append(Check("vks-memory-reservation", "warn", subject, f"{plan}; {quota.name} has "
                                + ", ".join(f"{k} {_gib(quota.hard[k] - quota.used.get(k, 0))} left of "
                                            f"{_gib(quota.hard[k])}" for k in taken)
                                + ": enough only if these VMs already run (an existing cluster)", fix, cited))
        else:
            checks.append(Check("vks-memory-reservation", "pass", subject, f"{plan}; {quota.name} allows "
                                + ", ".join(f"{k} {_gib(v)}" for k, v in quota.hard.items() if k in needs), "",
                                cited))
    return checks


def _gib(size: int) -> str:
    return f"{size / GIB:g}Gi"


@vks_rule("vks-cluster-class", live="ClusterClass {cluster_class_namespace}/{cluster_class}")
def vks_cluster_class(facts: Facts, vks: VksPlanFacts, m: Matrix) -> list[Check]:
    """The ClusterClass defines every variable the Cluster sets (status.variables on the Supervisor)."""
    subject = f"ClusterClass {vks.cluster_class_namespace}/{vks.cluster_class}"
    found = next((c for c in facts.cluster_classes if (c.namespace, c.name) == (vks.cluster_class_namespace,
                                                                                vks.cluster_class)), None)
    if found is None:
        return _skip("vks-cluster-class", subject, "the ClusterClass was not found, or the reader may not read it")
    if not found.variables:
        return _skip("vks-cluster-class", subject, "its status.variables is empty (not reconciled yet)")
    missing = [v for v in vks.variables if v not in found.variables]
    if missing:
        return [Check("vks-cluster-class", "fail", subject, f"{vks.cluster_class} defines no variable "
                      f"{', '.join(missing)}, which the Cluster sets: the Supervisor refuses the Cluster",
                      "use a ClusterClass that defines the grouped variables (builtin-generic-v3.2.0 or later) or "
                      "drop the variable from pai:supervisor.variables", _sources(facts, [vks, found]))]
    return [Check("vks-cluster-class", "pass", subject, f"{vks.cluster_class} defines every variable the Cluster "
                  f"sets ({', '.join(vks.variables)})", "", _sources(facts, [vks, found]))]
