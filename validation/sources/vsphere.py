"""vCenter facts via pyvmomi: each ESXi host's NVIDIA vGPU manager, graphics mode and the vGPU profiles its GPUs
offer (config.sharedPassthruGpuTypes), each node VM's vGPU profile.

Hosts and VMs are read through one container view and two PropertyCollector retrievals (paged with
ContinueRetrievePropertiesEx), so the cost does not grow with one call per VM; the vGPU manager version needs
one `HostImageConfigManager.FetchSoftwarePackages()` per GPU host.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from typing import Any

from pyVim.connect import Disconnect, SmartConnect
from pyVmomi import vim, vmodl

from validation.facts import Facts, HostFacts, NodeFacts

_HOST_PROPS = ["name", "config.graphicsInfo", "config.graphicsConfig", "config.sharedPassthruGpuTypes",
               "configManager.imageConfigManager"]
# The vGPU manager VIB: NVD-AIE_ESXi_8.0.0_Driver (AI Enterprise), NVD-VMware_ESXi_8.0_Host_Driver (vGPU).
_NVIDIA_VENDORS = {"nvidia", "nvd"}
_VIB_VERSION = re.compile(r"^(\d+\.\d+(?:\.\d+)?)")
PAGE = 1000


class VCenterError(Exception):
    """vCenter could not be reached or read."""


@dataclass(frozen=True)
class VCenter:
    """Where and as whom to connect. `insecure`: skip certificate checks; `protocol` http only for simulators."""

    host: str
    user: str
    password: str
    port: int = 443
    protocol: str = "https"
    insecure: bool = False

    def __repr__(self) -> str:
        return f"VCenter({self.protocol}://{self.user}@{self.host}:{self.port})"


def connect(target: VCenter) -> Any:
    """A pyvmomi ServiceInstance; the caller disconnects it with `Disconnect(si)`."""
    try:
        return SmartConnect(host=target.host, port=target.port, user=target.user, pwd=target.password,
                            protocol=target.protocol, disableSslCertValidation=target.insecure)
    except vim.fault.InvalidLogin:
        raise VCenterError(f"vCenter {target.host}: login as {target.user} refused") from None
    except (OSError, vmodl.MethodFault) as exc:
        raise VCenterError(f"vCenter {target.host}:{target.port}: {exc}") from None


def read_vcenter(target: VCenter, node_names: Collection[str] | None = None) -> Facts:
    """Connect, read the facts, disconnect."""
    si = connect(target)
    try:
        facts = vcenter_facts(si, node_names)
    finally:
        Disconnect(si)
    return facts.model_copy(update={"sources": {"vcenter": f"{target.protocol}://{target.host}:{target.port}"}})


def vcenter_facts(si: Any, node_names: Collection[str] | None = None) -> Facts:
    """Facts from a connected ServiceInstance: hosts with a GPU (config.graphicsInfo) and node VMs.
    `node_names`: only the VMs with these names (the Kubernetes nodes) and the GPU hosts they run on; None: every
    VM that carries a vGPU and every GPU host. Two paged retrievals: hosts and VM names through a container view,
    then the devices of the selected VMs only (a vCenter's other VMs cost a name each, not their devices)."""
    content = si.RetrieveContent()
    pc = vmodl.query.PropertyCollector
    view = content.viewManager.CreateContainerView(content.rootFolder, [vim.HostSystem, vim.VirtualMachine], True)
    try:
        found = list(_retrieve(content.propertyCollector, pc.FilterSpec(
            objectSet=[pc.ObjectSpec(obj=view, skip=True, selectSet=[
                pc.TraversalSpec(name="view", path="view", skip=False, type=vim.view.ContainerView)])],
            propSet=[pc.PropertySpec(type=vim.HostSystem, pathSet=_HOST_PROPS),
                     pc.PropertySpec(type=vim.VirtualMachine, pathSet=["name", "runtime.host"])])))
    finally:
        view.Destroy()
    host_props = {obj._moId: props for obj, props in found if isinstance(obj, vim.HostSystem)}
    vms = {obj: props for obj, props in found if isinstance(obj, vim.VirtualMachine) and "name" in props
           and (node_names is None or props["name"] in node_names)}
    devices = {obj._moId: props.get("config.hardware.device") or [] for obj, props in _retrieve(
        content.propertyCollector, pc.FilterSpec(objectSet=[pc.ObjectSpec(obj=vm, skip=False) for vm in vms],
                                                 propSet=[pc.PropertySpec(type=vim.VirtualMachine,
                                                                          pathSet=["config.hardware.device"])]))
               } if vms else {}
    nodes = [_node(props, devices.get(vm._moId, []), host_props) for vm, props in vms.items()]
    if node_names is None:
        nodes = [n for n in nodes if n.vgpu_profile]
    wanted = {n.host for n in nodes}
    hosts = [_host(props) for props in host_props.values()
             if props.get("config.graphicsInfo") and (node_names is None or props.get("name") in wanted)]
    return Facts(sources={"vcenter": "vCenter"}, hosts=hosts, nodes=nodes)


def _retrieve(collector: Any, spec: Any) -> Iterator[tuple[Any, dict[str, Any]]]:
    """(object, {property path: value}) for every object the filter selects, PAGE objects a call."""
    result = collector.RetrievePropertiesEx([spec], vmodl.query.PropertyCollector.RetrieveOptions(maxObjects=PAGE))
    while result is not None:
        for content in result.objects:
            yield content.obj, {p.name: p.val for p in content.propSet or []}
        result = collector.ContinueRetrievePropertiesEx(result.token) if result.token else None


def _host(props: dict[str, Any]) -> HostFacts:
    types = sorted({g.graphicsType for g in props.get("config.graphicsInfo") or [] if g.graphicsType})
    config = props.get("config.graphicsConfig")
    mode = ",".join(types) or (config.hostDefaultGraphicsType if config is not None else None) or None
    manager = props.get("configManager.imageConfigManager")
    return HostFacts(origin="vcenter", name=props["name"], graphics_mode=mode,
                     vgpu_profiles=list(props.get("config.sharedPassthruGpuTypes") or []),
                     vgpu_manager_version=_vgpu_manager(manager.FetchSoftwarePackages()) if manager else None)


def _vgpu_manager(packages: list[Any]) -> str | None:
    """The version of the NVIDIA vGPU manager VIB (580.95.02 from 580.95.02-1OEM.800.1.0.20613240)."""
    nvidia = [p for p in packages if (p.vendor or "").lower() in _NVIDIA_VENDORS or "nvidia" in (p.name or "").lower()]
    drivers = [p for p in nvidia if "driver" in p.name.lower()] or nvidia
    match = _VIB_VERSION.match(drivers[0].version) if drivers else None
    return match.group(1) if match else None


def _node(props: dict[str, Any], devices: list[Any], hosts: dict[str, dict[str, Any]]) -> NodeFacts:
    profiles = [d.backing.vgpu for d in devices if isinstance(d, vim.vm.device.VirtualPCIPassthrough)
                and isinstance(d.backing, vim.vm.device.VirtualPCIPassthrough.VmiopBackingInfo) and d.backing.vgpu]
    host = props.get("runtime.host")
    host_name = hosts.get(host._moId, {}).get("name", host._moId) if host is not None else None
    return NodeFacts(origin="vcenter", name=props["name"], vgpu_profile=",".join(profiles) or None, host=host_name)
