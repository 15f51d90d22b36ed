"""vGPU: host manager vs guest driver, no data-center driver in a vGPU guest."""

from __future__ import annotations

from collections.abc import Iterator

from validation.facts import Facts, NodeFacts, Record
from validation.matrix import Gpu, Matrix, Row, branch_of, version_key
from validation.rules.helpers import (
    _driver_groups,
    _ge,
    _mark,
    _node_list,
    _operator_release,
    _products,
    _skip,
    _sources,
    _unverified,
    _vgpu_not_applicable,
)
from validation.rules.registry import Check, Status, rule


@rule("vgpu-host-guest")
def vgpu_host_guest(facts: Facts, m: Matrix) -> list[Check]:
    """Each ESXi host's vGPU manager against each guest driver (vGPU mode)."""
    return _host_guest_checks("vgpu-host-guest", facts, facts, m)


def _host_guest_checks(check_id: str, host_facts: Facts, guest_facts: Facts, m: Matrix) -> list[Check]:
    not_applicable = _vgpu_not_applicable(check_id, "vGPU", guest_facts)
    if not_applicable:
        return not_applicable
    hosts = [h for h in host_facts.hosts if h.vgpu_manager_version]
    vgpu = guest_facts.driver is not None and guest_facts.driver.mode == "vgpu"
    guests = _driver_groups(guest_facts) if vgpu else {}
    if not hosts or not guests:
        missing = "no vGPU host manager version is known" if not hosts else "the driver mode is not vgpu"
        return _skip(check_id, "vGPU", missing)
    by_version: dict[str, list[str]] = {}
    for host in hosts:
        assert host.vgpu_manager_version is not None
        by_version.setdefault(host.vgpu_manager_version, []).append(host.name)
    checks = []
    for manager, names in by_version.items():
        for guest, nodes in guests.items():
            status, text, fix, rows = _host_guest(manager, guest, m)
            subject = f"host manager {manager} ({', '.join(names[:3])}) / guest driver {guest}"
            records: list[Record] = [h for h in hosts if h.vgpu_manager_version == manager]
            checks.append(Check(check_id, status, subject, text, fix,
                                _sources(host_facts, records) + _sources(guest_facts, nodes, rows)))
    return checks


def _host_guest(manager: str, guest: str, m: Matrix) -> tuple[Status, str, str, list[Row | None]]:
    host_branch, guest_branch = branch_of(manager), branch_of(guest)
    host_release, guest_release = m.vgpu_branch(host_branch), m.vgpu_branch(guest_branch)
    host_row, guest_row = m.vgpu_version(host_manager=manager), m.vgpu_version(guest=guest)
    rows: list[Row | None] = [host_row, guest_row]
    base = f"host vGPU manager {manager} ({host_branch}) with guest driver {guest} ({guest_branch})"
    paired = f" ({host_row.linux_guest})" if host_row and host_row.linux_guest else ""
    matching = f"install the guest driver of the host's vGPU release{paired} in the guest driver image"
    types = [_mark(r.branch_type_unverified, f"{r.branch} is {r.branch_type}") for r in (host_release, guest_release)
             if r]
    note = _unverified(rows, *types)
    rule_src = f"rule: {m.vgpu_compatibility.source}"
    if version_key(guest)[0] > version_key(manager)[0]:
        return ("fail", f"{base}: a guest driver newer than the host manager's branch never loads{note}",
                f"upgrade the ESXi hosts' vGPU manager to {guest_branch} or {matching}", rows)
    if host_branch == guest_branch:
        if guest_row and guest_row.host_manager == manager:
            return "pass", f"{base}: both from vGPU {guest_row.release}{note}", "", [guest_row]
        which = (f"host from vGPU {host_row.release}, guest from vGPU {guest_row.release}" if host_row and guest_row
                 else "the exact vGPU releases are not in the matrix")
        return ("warn", f"{base}: same branch, different releases ({which}); vGPU 19 notes list only the same "
                f"release, older notes any release of the branch{_unverified(rows, m.vgpu_compatibility.source)}",
                matching, rows)
    order = sorted((r for r in m.vgpu_releases), key=lambda r: int(r.branch[1:]))
    branches = [r.branch for r in order]
    if host_branch not in branches or guest_branch not in branches:
        return "skip", f"not checked: {base}: a branch is not in the vGPU matrix ({rule_src})", "", rows
    h, g = branches.index(host_branch), branches.index(guest_branch)
    if g == h - 1:
        return ("pass", f"{base}: a manager serves guests of the previous branch, with the features both "
                f"support{note}", "", rows)
    lts = [r.branch for r in order if r.branch_type == "LTSB"]
    host_lts = order[h].branch_type == "LTSB" and order[g].branch_type == "LTSB"
    if host_lts and lts.index(host_branch) - lts.index(guest_branch) == 1:
        return ("pass", f"{base}: a long-term support manager serves guests of the previous LTS branch{note}", "",
                rows)
    return ("fail", f"{base}: the guest is more than one branch behind the host manager and not on the previous "
            f"LTS branch{note}", matching, rows)


@rule("vgpu-no-datacenter-driver")
def vgpu_no_datacenter_driver(facts: Facts, m: Matrix) -> list[Check]:
    """A vGPU guest needs the vGPU (GRID) guest driver: never the data-center driver image, and never the
    datacenter driver mode on nodes that are vGPU VMs."""
    driver = facts.driver
    if driver is None:
        return _skip("vgpu-no-datacenter-driver", "driver", "the driver mode is not known")
    vgpu_nodes = [n for n in facts.nodes if n.vgpu_profile]
    vgpu_hosts = [h for h in facts.hosts if h.graphics_mode == "sharedDirect"]
    subject = f"driver mode {driver.mode}"
    if driver.mode == "vgpu":
        image = driver.image or ""
        if image.split("@")[0].split(":")[0].endswith("nvcr.io/nvidia/driver") or image.endswith("/nvidia/driver"):
            return [Check("vgpu-no-datacenter-driver", "fail", subject,
                          f"vgpu mode installs {image}, the data-center driver, which does not load in a vGPU guest",
                          "build the vGPU guest driver image from the *-grid.run driver and set pai:gpu.driver.image "
                          "to it", _sources(facts, [driver]))]
        return [Check("vgpu-no-datacenter-driver", "pass", subject, f"vgpu mode installs the guest driver image "
                      f"{image or '(unset)'}", "", _sources(facts, [driver]))]
    if driver.mode == "datacenter" and (vgpu_nodes or vgpu_hosts):
        seen = (f"nodes {_node_list(vgpu_nodes)} have vGPU profile {vgpu_nodes[0].vgpu_profile}" if vgpu_nodes
                else f"ESXi hosts {', '.join(h.name for h in vgpu_hosts[:3])} run graphics mode sharedDirect (vGPU)")
        return [Check("vgpu-no-datacenter-driver", "fail", subject,
                      f"{seen}, but the driver mode is datacenter: the data-center driver does not load in a vGPU "
                      "guest, and vGPU and data-center drivers cannot share a cluster",
                      "set pai:gpu.driver.mode to vgpu with the customer-built guest driver image",
                      _sources(facts, [driver, *vgpu_nodes, *vgpu_hosts]))]
    if not any(n.origin == "vcenter" for n in facts.nodes):
        return _skip("vgpu-no-datacenter-driver", subject, "no node VM was read from vCenter")
    return [Check("vgpu-no-datacenter-driver", "pass", subject, "no node VM has a vGPU profile", "",
                  _sources(facts, [driver]))]


@rule("vgpu-compute-capability")
def vgpu_compute_capability(facts: Facts, m: Matrix) -> list[Check]:
    """vGPU through the GPU Operator needs Turing or newer."""
    products = _products(facts.nodes)
    not_applicable = _vgpu_not_applicable("vgpu-compute-capability", "vGPU", facts)
    if not_applicable:
        return not_applicable
    if facts.driver is None or facts.driver.mode != "vgpu" or not products:
        return _skip("vgpu-compute-capability", "vGPU", "the driver mode is not vgpu or no GPU product is known")
    minimum = m.vgpu_min_compute_capability
    checks = []
    for product in products:
        gpu = m.gpu(product)
        subject = f"vGPU on {product}"
        if gpu is None:
            checks.append(Check("vgpu-compute-capability", "skip", subject, f"not checked: {product} is not in the "
                                "matrix"))
            continue
        ok = version_key(gpu.cc) >= version_key(minimum.value)
        checks.append(Check(
            "vgpu-compute-capability", "pass" if ok else "fail", subject,
            f"the GPU Operator runs vGPU on compute capability >= {minimum.value} (Turing); {product} is {gpu.cc} "
            f"({gpu.arch}){_unverified([gpu, minimum])}",
            "" if ok else "use the data-center driver (passthrough) on this GPU, or Turing or newer GPUs for vGPU",
            _sources(facts, [facts.driver], [gpu, minimum])))
    return checks


@rule("vgpu-host-graphics")
def vgpu_host_graphics(facts: Facts, m: Matrix) -> list[Check]:
    """ESXi hosts serve vGPU only in the Shared Direct graphics mode."""
    hosts = [h for h in facts.hosts if h.graphics_mode]
    not_applicable = _vgpu_not_applicable("vgpu-host-graphics", "ESXi hosts", facts)
    if not_applicable:
        return not_applicable
    if facts.driver is None or facts.driver.mode != "vgpu" or not hosts:
        return _skip("vgpu-host-graphics", "ESXi hosts", "the driver mode is not vgpu or no host graphics mode was "
                     "read from vCenter")
    want = m.vgpu_host_graphics
    return [Check("vgpu-host-graphics", "pass" if h.graphics_mode == want.value else "fail", f"ESXi host {h.name}",
                  f"vGPU needs host graphics mode {want.value}; {h.name} is {h.graphics_mode}{_unverified([want])}",
                  "" if h.graphics_mode == want.value else "set the host's default graphics type to Shared Direct "
                  "(Host > Configure > Graphics) and restart Xorg on the host", _sources(facts, [h], [want]))
            for h in hosts]


def _gpus_by_driver(facts: Facts, m: Matrix) -> Iterator[tuple[str, str, Gpu, list[NodeFacts]]]:
    """(driver, product, GPU row, nodes) for each GPU product in the matrix on each driver in use."""
    for driver, nodes in _driver_groups(facts).items():
        for product in _products(nodes):
            gpu = m.gpu(product)
            if gpu is not None:
                yield driver, product, gpu, [n for n in nodes if product in n.products]


@rule("gpu-driver-minimum")
def gpu_driver_minimum(facts: Facts, m: Matrix) -> list[Check]:
    """GPUs the GPU Operator documents a minimum driver for (B200, RTX PRO 6000 Blackwell)."""
    checks = []
    for driver, product, gpu, on in _gpus_by_driver(facts, m):
        if gpu.min_driver is not None:
            ok = _ge(driver, gpu.min_driver)
            checks.append(Check("gpu-driver-minimum", "pass" if ok else "fail", f"{product} on driver {driver}",
                                f"{product} needs driver >= {gpu.min_driver}; {_node_list(on)} run {driver}"
                                f"{_unverified([gpu])}", "" if ok else f"upgrade the driver to >= {gpu.min_driver}",
                                _sources(facts, on, [gpu])))
    return checks or _skip("gpu-driver-minimum", "GPUs", "no GPU with a documented minimum driver")


@rule("gpu-driver-ceiling")
def gpu_driver_ceiling(facts: Facts, m: Matrix) -> list[Check]:
    """GPUs whose last supported driver branch is older than the driver in use (Maxwell, Pascal, Volta: R580)."""
    checks = []
    for driver, product, gpu, on in _gpus_by_driver(facts, m):
        if gpu.last_branch is not None:
            ok = version_key(driver)[0] <= int(gpu.last_branch[1:])
            text = (f"{product} ({gpu.arch}) is supported up to the {gpu.last_branch} driver branch; "
                    f"{_node_list(on)} run {driver} ({branch_of(driver)}){_unverified([gpu])}")
            checks.append(Check("gpu-driver-ceiling", "pass" if ok else "fail", f"{product} on driver {driver}", text,
                                "" if ok else _ceiling_fix(facts, gpu.last_branch, m),
                                (*_sources(facts, on, [gpu]),
                                 f"matrix: {gpu.label} last_branch: {gpu.last_branch_source}")))
    return checks or _skip("gpu-driver-ceiling", "GPUs", "no GPU with a last supported driver branch is in use")


def _ceiling_fix(facts: Facts, last_branch: str, m: Matrix) -> str:
    """Pin the newest driver of the last branch the operator release lists."""
    release = _operator_release(facts, m)
    listed = sorted((d for d in (release.supported_drivers if release else [])
                     if version_key(d)[0] <= int(last_branch[1:])), key=version_key)
    pin = f"pin pai:gpu.driver.version to {listed[-1]}" if listed else f"pin a {last_branch} driver"
    return f"{pin} (the {last_branch} branch), or move the workload to Turing or newer GPUs"


@rule("driver-known-issues")
def driver_known_issues(facts: Facts, m: Matrix) -> list[Check]:
    """Driver versions with a documented problem under the node's MIG strategy, on the GPUs it names."""
    checks = []
    for driver, nodes in _driver_groups(facts).items():
        for issue in m.known_issues:
            hit = [n for n in nodes if any(issue.hits(driver, _gpu_name(p, m), n.mig_mode) for p in n.products)]
            if hit:
                checks.append(Check("driver-known-issues", issue.status,
                                    f"driver {driver} with MIG {', '.join(sorted({str(n.mig_mode) for n in hit}))}",
                                    f"driver {driver} on {_node_list(hit)} ({', '.join(_products(hit))}): "
                                    f"{issue.issue}{_unverified([issue])}", issue.fix, _sources(facts, hit, [issue])))
    if checks:
        return checks
    if not _driver_groups(facts):
        return _skip("driver-known-issues", "drivers", "no driver version is known")
    return [Check("driver-known-issues", "pass", "drivers", "no known issue matches the drivers, GPUs and MIG "
                  "strategies in use", "", _sources(facts, [n for ns in _driver_groups(facts).values() for n in ns],
                                                    m.known_issues))]


def _gpu_name(product: str, m: Matrix) -> str | None:
    gpu = m.gpu(product)
    return gpu.gpu if gpu else None


@rule("vgpu-products")
def vgpu_products(facts: Facts, m: Matrix) -> list[Check]:
    """GPU products against the driver mode: in a vGPU VM GPU Feature Discovery labels the vGPU type
    (GRID-A100-40C), so a stack in vgpu mode must name vGPU types, and one in datacenter mode none."""
    driver = facts.driver
    products = _products(facts.nodes)
    if driver is None or driver.mode == "preinstalled" or not products:
        return _skip("vgpu-products", "GPU products", "the driver mode is not vgpu or datacenter, or no GPU product "
                     "is known")
    checks = []
    for product in products:
        vgpu, gpu = m.vgpu_type(product), m.gpu(product)
        nodes = [n for n in facts.nodes if product in n.products]
        subject = f"{product} in {driver.mode} mode"
        rows: list[Row | None] = [vgpu, gpu]
        if gpu is None:
            checks.append(Check("vgpu-products", "skip", subject, f"not checked: {product} is neither a GPU nor a "
                                "vGPU type in the matrix"))
        elif driver.mode == "vgpu" and vgpu is None:
            types = [f"GRID-{t.board}-{t.framebuffer_gb}C" for t in m.vgpu_types if t.gpu == gpu.gpu]
            checks.append(Check("vgpu-products", "fail", subject,
                                f"{product} is a board name, but in a vGPU VM GPU Feature Discovery labels "
                                "nvidia.com/gpu.product with the vGPU type, so it selects no node",
                                f"name the vGPU type the VMs get in pai:gpu.products, e.g. {', '.join(types[:3])}",
                                _sources(facts, nodes, rows)))
        elif driver.mode == "datacenter" and vgpu is not None:
            checks.append(Check("vgpu-products", "fail", subject,
                                f"{product} is a vGPU type ({vgpu.gpu}, {vgpu.framebuffer_gb} GB board): those nodes "
                                "are vGPU VMs, where the data-center driver does not load",
                                "set pai:gpu.driver.mode to vgpu, or name the board product for passthrough nodes",
                                _sources(facts, nodes, rows)))
        else:
            what = (f"vGPU type on {vgpu.gpu} (compute capability {gpu.cc}, {vgpu.framebuffer_gb} GB board)" if vgpu
                    else f"a {gpu.gpu} board")
            checks.append(Check("vgpu-products", "pass", subject, f"{product} is a {what}; {driver.mode} mode labels "
                                "it so", "", _sources(facts, nodes, rows)))
    return checks
