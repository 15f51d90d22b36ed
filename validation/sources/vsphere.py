"""vCenter facts via pyvmomi: each ESXi host's NVIDIA vGPU manager and graphics mode, each node VM's vGPU profile.

Hosts and VMs are read through one container view and one PropertyCollector retrieval (paged with
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

_HOST_PROPS = ["name", "config.graphicsInfo", "config.graphicsConfig", "configManager.imageConfigManager"]
_VM_PROPS = ["name", "runtime.host", "config.hardware.device"]
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
    VM that carries a vGPU and every GPU host."""
    content = si.RetrieveContent()
    view = content.viewManager.CreateContainerView(content.rootFolder, [vim.HostSystem, vim.VirtualMachine], True)
    try:
        objects = list(_retrieve(content.propertyCollector, view))
    finally:
        view.Destroy()
    host_props = [props for obj, props in objects if isinstance(obj, vim.HostSystem)]
    host_names = {str(obj._moId): str(props.get("name", obj._moId)) for obj, props in objects
                  if isinstance(obj, vim.HostSystem)}
    vms = [_node(props, host_names) for obj, props in objects if isinstance(obj, vim.VirtualMachine)]
    if node_names is None:
        nodes = [n for n in vms if n is not None and n.vgpu_profile]
    else:
        nodes = [n for n in vms if n is not None and n.name in node_names]
    wanted = {n.host for n in nodes}
    hosts = [_host(props) for props in host_props
             if props.get("config.graphicsInfo") and (node_names is None or props.get("name") in wanted)]
    return Facts(sources={"vcenter": "vCenter"}, hosts=hosts, nodes=nodes)


def _retrieve(collector: Any, view: Any) -> Iterator[tuple[Any, dict[str, Any]]]:
    """(object, {property path: value}) for every host and VM in the view, in pages."""
    traverse = vmodl.query.PropertyCollector.TraversalSpec(name="view", path="view", skip=False,
                                                           type=vim.view.ContainerView)
    spec = vmodl.query.PropertyCollector.FilterSpec(
        objectSet=[vmodl.query.PropertyCollector.ObjectSpec(obj=view, skip=True, selectSet=[traverse])],
        propSet=[vmodl.query.PropertyCollector.PropertySpec(type=vim.HostSystem, pathSet=_HOST_PROPS),
                 vmodl.query.PropertyCollector.PropertySpec(type=vim.VirtualMachine, pathSet=_VM_PROPS)])
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
                     vgpu_manager_version=_vgpu_manager(manager.FetchSoftwarePackages()) if manager else None)


def _vgpu_manager(packages: list[Any]) -> str | None:
    """The version of the NVIDIA vGPU manager VIB (580.95.02 from 580.95.02-1OEM.800.1.0.20613240)."""
    nvidia = [p for p in packages if (p.vendor or "").lower() in _NVIDIA_VENDORS or "nvidia" in (p.name or "").lower()]
    drivers = [p for p in nvidia if "driver" in p.name.lower()] or nvidia
    match = _VIB_VERSION.match(drivers[0].version) if drivers else None
    return match.group(1) if match else None


def _node(props: dict[str, Any], host_names: dict[str, str]) -> NodeFacts | None:
    if "name" not in props:
        return None
    profiles = [d.backing.vgpu for d in props.get("config.hardware.device") or []
                if isinstance(d, vim.vm.device.VirtualPCIPassthrough)
                and isinstance(d.backing, vim.vm.device.VirtualPCIPassthrough.VmiopBackingInfo) and d.backing.vgpu]
    host = props.get("runtime.host")
    return NodeFacts(origin="vcenter", name=props["name"], vgpu_profile=",".join(profiles) or None,
                     host=host_names.get(host._moId, host._moId) if host is not None else None)
