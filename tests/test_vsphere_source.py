"""vCenter facts read with pyvmomi from the govmomi simulator carrying vGPU hosts and node VMs."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from vcsim import Vcsim, calls, gpu_host, running

from validation.sources.vsphere import VCenter, VCenterError, read_vcenter


@pytest.fixture(scope="module")
def vcenter() -> Iterator[Vcsim]:
    hosts = [
        gpu_host("esx-01", "580.95.02", [("gpu-node-0", "nvidia_h100-80c"), ("gpu-node-1", "nvidia_h100-40c")]),
        gpu_host("esx-02", None, [("gpu-node-2", "nvidia_h100-80c"), ("cp-0", None)], mode="shared",
                 profile_types=("nvidia_l40s-48c",)),
    ]
    with running(hosts) as sim:
        yield sim


def target(sim: Vcsim, password: str | None = None) -> VCenter:
    return VCenter(sim.host, sim.user, password or sim.password, port=sim.port, protocol="http", insecure=True)


def test_hosts_report_the_nvidia_vib_version_and_graphics_mode(vcenter: Vcsim) -> None:
    facts = read_vcenter(target(vcenter))
    hosts = {h.name: h for h in facts.hosts}
    assert set(hosts) == {"esx-01", "esx-02"}
    assert hosts["esx-01"].vgpu_manager_version == "580.95.02"
    assert hosts["esx-01"].graphics_mode == "sharedDirect"
    assert hosts["esx-02"].vgpu_manager_version is None  # no NVIDIA VIB installed: unknown, not guessed
    assert hosts["esx-02"].graphics_mode == "shared"
    assert hosts["esx-01"].vgpu_profiles == ["nvidia_h100-80c", "nvidia_h100-40c"]  # config.sharedPassthruGpuTypes
    assert hosts["esx-02"].vgpu_profiles == ["nvidia_l40s-48c"]
    assert {h.origin for h in facts.hosts} == {"vcenter"}
    assert facts.sources == {"vcenter": f"http://{vcenter.host}:{vcenter.port}"}


def test_node_vms_carry_their_vgpu_profile_and_host(vcenter: Vcsim) -> None:
    nodes = {n.name: n for n in read_vcenter(target(vcenter)).nodes}
    assert set(nodes) == {"gpu-node-0", "gpu-node-1", "gpu-node-2"}  # cp-0 has no vGPU
    assert (nodes["gpu-node-1"].vgpu_profile, nodes["gpu-node-1"].host) == ("nvidia_h100-40c", "esx-01")
    assert (nodes["gpu-node-2"].vgpu_profile, nodes["gpu-node-2"].host) == ("nvidia_h100-80c", "esx-02")


def test_node_names_select_the_kubernetes_node_vms_and_their_hosts(vcenter: Vcsim) -> None:
    facts = read_vcenter(target(vcenter), node_names={"gpu-node-0", "cp-0", "not-a-vm"})
    assert {(n.name, n.vgpu_profile) for n in facts.nodes} == {("gpu-node-0", "nvidia_h100-80c"), ("cp-0", None)}
    assert {h.name for h in facts.hosts} == {"esx-01", "esx-02"}
    only = read_vcenter(target(vcenter), node_names={"gpu-node-0"})
    assert [h.name for h in only.hosts] == ["esx-01"]  # a GPU host serving no Kubernetes node is left out


def test_a_refused_login_names_the_user_and_never_the_password(vcenter: Vcsim) -> None:
    bad = VCenter(vcenter.host, "intruder", "s3cr3t-pw", port=vcenter.port, protocol="http", insecure=True)
    with pytest.raises(VCenterError, match="intruder") as err:
        read_vcenter(bad)
    assert "s3cr3t-pw" not in str(err.value) and "s3cr3t-pw" not in repr(bad)


def test_an_unreachable_vcenter_is_a_clear_error() -> None:
    closed = VCenter("127.0.0.1", "u", "p", port=1, protocol="http", insecure=True)
    with pytest.raises(VCenterError, match=r"127\.0\.0\.1:1"):
        read_vcenter(closed)


def test_calls_do_not_grow_with_the_number_of_vms() -> None:
    """One paged property retrieval for all hosts and VMs; one FetchSoftwarePackages per GPU host."""
    made = []
    for vms in (2, 40):
        hosts = [gpu_host(f"esx-{h}", "580.95.02", [(f"node-{h}-{i}", "nvidia_h100-80c") for i in range(vms)])
                 for h in range(2)]
        with running(hosts) as sim:
            before = calls(sim)
            assert len(read_vcenter(target(sim)).nodes) == 2 * vms
            made.append(calls(sim) - before)
    assert made[0] == made[1] and made[0] < 20
