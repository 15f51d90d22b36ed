"""The VKS checks, each failing and passing: the stack's pai:supervisor parsed by the program's parser, the vSphere
namespace served by the fake API server to the real kubernetes client, the ESXi hosts' vGPU facts served by the
govmomi simulator to pyvmomi."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import fake_kube as kube
import pytest
import yaml
from conftest import Program, minimal, stack_config, supervised
from fake_kube import FakeKube, kubeconfig, serving
from vcsim import Vcsim, gpu_host, running

from components.config import PlatformConfig
from paictl.validate import parse_stack
from program.offline import RecordingMonitor
from validation.facts import Facts, merge
from validation.matrix import load_matrix
from validation.preflight import InteropError, check_or_stop, supervisor_facts
from validation.rules import RULES, Check
from validation.sources.config import config_facts
from validation.sources.vsphere import VCenter, read_vcenter

NS = "ml-team"
H100XM = "NVIDIA-H100XM-80C"
RELEASE = "v1.33.3---vmware.1-fips-vkr.1"
SOURCE = "stacks/Pulumi.test.yaml"
CLASS_NS = "vmware-system-vks-public"
SECRETS = {"supervisorKubeconfig": "offline-placeholder", "nlsClientToken": "token"}
GIB = 2**30


def values(products: tuple[str, ...] = (H100XM,), release: str = RELEASE, os: str = "ubuntu22.04",
           gpu_class: str = "vgpu-h100-80c", **validation: Any) -> dict[str, Any]:
    """The bundled example: 3 control plane VMs, 3 CPU and 2 GPU workers on vGPU operator v26.7.0."""
    minor = f"1.{release.split('.')[1]}"
    return minimal(
        cluster={"target": "vks", "kubernetesVersion": minor},
        gpu={"operator": {"version": "v26.7.0"}, "products": list(products),
             "driver": {"mode": "vgpu", "version": "580.95.05", "os": os,
                        "image": "harbor.example.com/nvidia/vgpu-guest-driver"}},
        supervisor=supervised(namespace=NS, release=release,
                              nodePools=[{"name": "cpu", "replicas": 3, "vmClass": "best-effort-2xlarge"},
                                         {"name": "gpu", "replicas": 2, "vmClass": gpu_class, "gpu": True}]),
        **({"validation": validation} if validation else {}))


def config(**overrides: Any) -> PlatformConfig:
    return parse_stack(stack_config(values(**overrides), SECRETS))


def namespace(gpu_profile: str | None = "nvidia_h100xm-80c", in_config_spec: bool = False,
              quota: dict[str, str] | None = None, used: dict[str, str] | None = None,
              images: tuple[tuple[str, str, str], ...] = (("ubuntu-2204-amd64", "ubuntu64Guest", "22.04"),),
              variables: tuple[str, ...] = ("vmClass", "storageClass", "volumes", "node", "vsphereOptions",
                                            "osConfiguration")
              ) -> FakeKube:
    """The vSphere namespace: VM classes (control plane 16Gi, CPU workers 32Gi, GPU workers 128Gi), a quota,
    the release's images and the ClusterClass."""
    fake = FakeKube()
    v = kube.serve_vm_operator(fake)
    classes = f"/apis/vmoperator.vmware.com/{v}/namespaces/{NS}/virtualmachineclasses"
    fake.add(classes, kube.vm_class("best-effort-large", NS, memory="16Gi"))
    fake.add(classes, kube.vm_class("best-effort-2xlarge", NS, memory="32Gi"))
    fake.add(classes, kube.vm_class("vgpu-h100-80c", NS, memory="128Gi", profile=gpu_profile,
                               in_config_spec=in_config_spec))
    fake.add(classes, kube.vm_class("vgpu-l40s", NS, memory="64Gi", profile="nvidia_l40s-48c"))
    fake.add(f"/api/v1/namespaces/{NS}/resourcequotas",
             kube.resource_quota(NS, "ml-team", quota or {"limits.memory": "1Ti", "requests.storage": "4Ti"}, used))
    for i, (prefix, os_type, os_version) in enumerate(images):
        fake.add(f"/apis/vmoperator.vmware.com/{v}/namespaces/{NS}/virtualmachineimages", kube.vm_image(
            f"vmi-{i}", NS, f"{prefix}-{RELEASE}", os_type, os_version, RELEASE.replace("---", "+")))
    fake.add(f"/apis/cluster.x-k8s.io/v1beta2/namespaces/{CLASS_NS}/clusterclasses",
             kube.cluster_class("builtin-generic-v3.4.0", CLASS_NS, list(variables)))
    return fake


@pytest.fixture(scope="module")
def vcenter() -> Iterator[Vcsim]:
    """esx-01 serves H100XM profiles (Shared Direct, vGPU manager 580.95.02); esx-02 offers L40S profiles but is
    in Shared mode without the vGPU manager."""
    hosts = [gpu_host("esx-01", "580.95.02", [], profile_types=("nvidia_h100xm-80c", "nvidia_h100xm-40c")),
             gpu_host("esx-02", None, [], mode="shared", profile_types=("nvidia_l40s-48c",))]
    with running(hosts) as sim:
        yield sim


def read(cfg: PlatformConfig, fake: FakeKube | None = None, sim: Vcsim | None = None) -> Facts:
    """The config's facts, the Supervisor's (the secret kubeconfig as the preflight reads it) and vCenter's."""
    parts = [config_facts(cfg, SOURCE)]
    if fake is not None:
        with serving(fake) as url:
            parts.append(supervisor_facts(cfg, SOURCE, yaml.safe_dump(kubeconfig(url))))
    if sim is not None:
        parts.append(read_vcenter(VCenter(sim.host, sim.user, sim.password, port=sim.port, protocol="http",
                                          insecure=True)))
    return merge(*parts)


def run(check_id: str, facts: Facts) -> list[Check]:
    return RULES[check_id](facts, load_matrix())


def statuses(checks: list[Check]) -> list[str]:
    return [c.status for c in checks]


def test_every_pool_class_is_offered_and_the_gpu_class_carries_a_vgpu_profile() -> None:
    checks = run("vks-vm-class", read(config(), namespace()))
    assert statuses(checks) == ["pass", "pass", "pass"]
    assert checks[2].message == "GPU pool gpu: the namespace offers VM class vgpu-h100-80c with vGPU profile " \
                                "nvidia_h100xm-80c"
    assert checks[2].sources[0] == SOURCE.join(("config: ", "")) and checks[2].sources[1].startswith("supervisor: ")


def test_a_vgpu_profile_only_in_the_config_spec_counts() -> None:
    checks = run("vks-vm-class", read(config(), namespace(in_config_spec=True)))
    assert statuses(checks) == ["pass", "pass", "pass"]


def test_a_vm_class_without_a_vgpu_profile_fails_naming_it_and_the_classes_that_have_one() -> None:
    (failed,) = [c for c in run("vks-vm-class", read(config(), namespace(gpu_profile=None))) if c.status == "fail"]
    assert failed.subject == "VirtualMachineClass ml-team/vgpu-h100-80c"
    assert failed.message == ("GPU pool gpu's VM class vgpu-h100-80c carries no vGPU profile (none in "
                              "spec.hardware.devices.vgpuDevices nor in spec.configSpec)")
    assert failed.fix == "set pai:supervisor.nodePools[1].vmClass to a VM class with a vGPU profile (vgpu-l40s)"


def test_a_class_the_namespace_does_not_offer_fails() -> None:
    (failed,) = [c for c in run("vks-vm-class", read(config(gpu_class="vgpu-h200"), namespace()))
                 if c.status == "fail"]
    assert failed.message == ("GPU pool gpu names VM class vgpu-h200, which the vSphere namespace ml-team does not "
                              "offer (it offers: best-effort-2xlarge, best-effort-large, vgpu-h100-80c, vgpu-l40s)")
    assert failed.fix.endswith("or set pai:supervisor.nodePools[1].vmClass to one it offers")


def test_the_profile_matches_the_vgpu_type_products_name() -> None:
    (passed,) = run("vks-vgpu-profile", read(config(), namespace()))
    assert passed.status == "pass"
    assert passed.message == ("profile nvidia_h100xm-80c is vGPU type H100XM-80C (H100 board, 80 GB), named in "
                              "pai:gpu.products as NVIDIA-H100XM-80C")
    assert any(s.startswith("matrix: vgpu.types H100XM: ") for s in passed.sources)


def test_a_profile_of_another_type_than_the_products_fails() -> None:
    (failed,) = run("vks-vgpu-profile", read(config(products=("NVIDIA-L40S-48C",)), namespace()))
    assert failed.status == "fail" and failed.subject == "vGPU profile nvidia_h100xm-80c of ml-team/vgpu-h100-80c"
    assert failed.message == ("GPU pool gpu's VM class vgpu-h100-80c carries vGPU profile nvidia_h100xm-80c (type "
                              "H100XM-80C, H100 board, 80 GB), but pai:gpu.products names NVIDIA-L40S-48C (L40S): "
                              "GPU Feature Discovery labels these nodes NVIDIA-H100XM-80C, which nothing the stack "
                              "plans selects")
    assert failed.fix == ("add NVIDIA-H100XM-80C to pai:gpu.products, or set pai:supervisor.nodePools[1].vmClass to "
                          "a VM class whose profile is nvidia_l40s-48c")


def test_a_host_offers_the_profile_in_shared_direct_with_a_vgpu_manager(vcenter: Vcsim) -> None:
    (passed,) = run("vks-host-profile", read(config(), namespace(), vcenter))
    assert passed.status == "pass"
    assert passed.message.startswith("esx-01 offers nvidia_h100xm-80c in graphics mode sharedDirect with vGPU "
                                     "manager 580.95.02")
    assert f"vcenter: http://{vcenter.host}:{vcenter.port}" in passed.sources


def test_no_host_offering_the_profile_fails_listing_what_hosts_offer(vcenter: Vcsim) -> None:
    (failed,) = run("vks-host-profile", read(config(), namespace(gpu_profile="nvidia_h200x-141c"), vcenter))
    assert failed.status == "fail" and failed.subject == "vGPU profile nvidia_h200x-141c on ESXi hosts"
    assert failed.message == ("no ESXi host offers vGPU profile nvidia_h200x-141c (config.sharedPassthruGpuTypes: "
                              "esx-01: nvidia_h100xm-80c, nvidia_h100xm-40c; esx-02: nvidia_l40s-48c)")


def test_hosts_offering_the_profile_in_the_wrong_mode_without_a_manager_fail(vcenter: Vcsim) -> None:
    (failed,) = run("vks-host-profile", read(config(products=("NVIDIA-L40S-48C",), gpu_class="vgpu-l40s"),
                                             namespace(), vcenter))
    assert failed.status == "fail"
    assert failed.message == ("esx-02 offers nvidia_l40s-48c, but esx-02: its graphics mode is shared, not "
                              "sharedDirect and no NVIDIA vGPU manager VIB is installed (rests on matrix data marked "
                              "unverified)")
    assert "Shared Direct" in failed.fix


def test_checks_that_need_live_facts_skip_saying_what_would_run_them() -> None:
    offline = read(config())
    for check_id in ("vks-vm-class", "vks-vgpu-profile", "vks-host-profile", "vks-memory-reservation",
                     "vks-cluster-class"):
        (skipped,) = run(check_id, offline)
        assert skipped.status == "skip" and "--supervisor-kubeconfig" in skipped.message
    (no_vcenter,) = run("vks-host-profile", read(config(), namespace()))
    assert no_vcenter.status == "skip" and "--vcenter" in no_vcenter.message


def test_stacks_without_a_supervisor_are_not_applicable() -> None:
    facts = config_facts(parse_stack(stack_config(minimal())), SOURCE)
    for check_id in [c for c in RULES if c.startswith("vks-")]:
        (skipped,) = run(check_id, facts)
        assert skipped.status == "skip" and skipped.message.startswith("not applicable")


def test_the_release_is_in_the_operators_range_on_vks() -> None:
    (passed,) = run("vks-release", read(config()))
    assert passed.status == "pass"
    assert passed.message == (f"pai:supervisor.release {RELEASE} is Kubernetes 1.33; gpu-operator v26.7.0 supports "
                              "Kubernetes 1.32-1.36; the cluster is 1.33, on VKS 1.33-1.36")


def test_a_release_outside_the_operators_vks_range_fails() -> None:
    (failed,) = run("vks-release", read(config(release="v1.32.7---vmware.1-fips-vkr.2")))
    assert failed.status == "fail"
    assert failed.message == ("pai:supervisor.release v1.32.7---vmware.1-fips-vkr.2 is Kubernetes 1.32; "
                              "gpu-operator v26.7.0 is validated on VKS with Kubernetes 1.33-1.36 only")
    assert any("platform-support.rst (Bare Metal / Virtual Machines table, VMware vSphere Kubernetes Service" in s
               for s in failed.sources)


def test_a_release_outside_the_operators_range_stops_the_program_before_anything_is_registered(
        run_program: Program) -> None:
    monitor = RecordingMonitor()
    with pytest.raises(InteropError) as err:
        run_program(values(release="v1.31.9---vmware.1-fips-vkr.1"), SECRETS, monitor=monitor)
    assert monitor.records == []
    (line,) = [x for x in str(err.value).splitlines() if " vks-release " in x]
    assert line == (f"{SOURCE}: interop check vks-release failed for VKS release v1.31.9---vmware.1-fips-vkr.1 with "
                    "gpu-operator v26.7.0: pai:supervisor.release v1.31.9---vmware.1-fips-vkr.1 is Kubernetes 1.31; "
                    "gpu-operator v26.7.0 supports Kubernetes 1.32-1.36; the cluster is 1.31; fix: use gpu-operator "
                    "v25.10.1 (Kubernetes 1.30-1.35) (to deploy anyway, add vks-release to "
                    "pai:validation.allowFailures)")


def test_the_node_os_must_be_one_the_operator_supports_on_vks() -> None:
    (passed,) = run("vks-node-os", read(config()))
    assert passed.status == "pass" and "--supervisor-kubeconfig" in passed.message  # the images were not checked
    (failed,) = run("vks-node-os", read(config(os="ubuntu24.04")))
    assert failed.status == "fail"
    assert failed.message == ("gpu-operator v26.7.0 is validated on VKS with ubuntu22.04 nodes; pai:gpu.driver.os is "
                              "ubuntu24.04")
    assert failed.fix.startswith("set pai:gpu.driver.os to ubuntu22.04")


def test_the_release_must_have_an_ubuntu_image_of_that_version() -> None:
    (passed,) = run("vks-node-os", read(config(), namespace(images=(
        ("photon-5-amd64", "vmwarePhoton64Guest", "5.0"), ("ubuntu-2204-amd64", "ubuntu64Guest", "22.04")))))
    assert passed.status == "pass" and passed.message.endswith(
        f"the release's Ubuntu image vmi-1 (ubuntu-2204-amd64-{RELEASE}) serves it")
    (failed,) = run("vks-node-os", read(config(), namespace(images=(
        ("photon-5-amd64", "vmwarePhoton64Guest", "5.0"),))))
    assert failed.status == "fail"
    assert failed.message == (f"release {RELEASE} has no Ubuntu image for ubuntu22.04 in namespace ml-team (vmi-0 "
                              f"(photon-5-amd64-{RELEASE})): the GPU pools resolve no node image the guest driver is "
                              "built for")


def test_the_namespace_memory_limit_holds_every_vm_with_gpu_vms_fully_reserved() -> None:
    """3 x 16Gi + 3 x 32Gi + 2 x 128Gi = 400Gi of memory, the GPU VMs' 256Gi reserved."""
    (passed,) = run("vks-memory-reservation", read(config(), namespace(quota={
        "limits.memory": "400Gi", "requests.memory": "256Gi"})))
    assert passed.status == "pass" and passed.subject == "ResourceQuota ml-team/ml-team"
    assert passed.message == ("8 VMs take 400Gi of memory, 256Gi reserved (2 x vgpu-h100-80c fully: a vGPU VM's "
                              "memory is locked to its size); ml-team allows limits.memory 400Gi, requests.memory "
                              "256Gi")
    assert any("vm-operator" in s and "RequiresMemoryReservationLock" in s for s in passed.sources)
    (failed,) = run("vks-memory-reservation", read(config(), namespace(quota={
        "limits.memory": "512Gi", "requests.memory": "200Gi"})))
    assert failed.status == "fail" and failed.message.endswith("ml-team allows requests.memory 200Gi")
    assert failed.fix.startswith("raise the vSphere namespace's memory limit to at least 256Gi")
    (used,) = run("vks-memory-reservation", read(config(), namespace(
        quota={"limits.memory": "512Gi"}, used={"limits.memory": "300Gi"})))
    assert used.status == "warn" and "limits.memory 212Gi left of 512Gi" in used.message


def test_the_cluster_class_defines_the_variables_the_cluster_sets() -> None:
    (passed,) = run("vks-cluster-class", read(config(), namespace()))
    assert passed.status == "pass"
    (failed,) = run("vks-cluster-class", read(config(), namespace(variables=("vmClass", "storageClass"))))
    assert failed.status == "fail" and failed.subject == f"ClusterClass {CLASS_NS}/builtin-generic-v3.4.0"
    assert failed.message == ("builtin-generic-v3.4.0 defines no variable vsphereOptions, volumes, node, which the "
                              "Cluster sets: the Supervisor refuses the Cluster")


def test_the_preflight_stops_on_a_class_without_a_vgpu_profile_unless_allowed() -> None:
    with serving(namespace(gpu_profile=None)) as url:
        text = yaml.safe_dump(kubeconfig(url))
        cfg = config()
        with pytest.raises(InteropError) as err:
            check_or_stop(cfg, SOURCE, supervisor_facts(cfg, SOURCE, text))
        assert str(err.value) == (
            f"{SOURCE}: interop check vks-vm-class failed for VirtualMachineClass ml-team/vgpu-h100-80c: GPU pool "
            "gpu's VM class vgpu-h100-80c carries no vGPU profile (none in spec.hardware.devices.vgpuDevices nor in "
            "spec.configSpec); fix: set pai:supervisor.nodePools[1].vmClass to a VM class with a vGPU profile "
            "(vgpu-l40s) (to deploy anyway, add vks-vm-class to pai:validation.allowFailures)")
        allowed = config(allowFailures=["vks-vm-class"])
        checks = check_or_stop(allowed, SOURCE, supervisor_facts(allowed, SOURCE, text))
    assert [c.status for c in checks if c.id == "vks-vm-class"] == ["pass", "pass", "warn"]


def test_an_unreadable_supervisor_stops_the_preflight_without_the_secret() -> None:
    secret = yaml.safe_dump(kubeconfig("http://127.0.0.1:1")).replace("fake-token", "s3cret-t0ken-value")
    with pytest.raises(InteropError) as err:
        supervisor_facts(config(), SOURCE, secret)
    assert str(err.value).startswith(f"{SOURCE}: the preflight could not read the vSphere namespace ml-team on the "
                                     "Supervisor: Supervisor http://127.0.0.1:1: ")
    assert "s3cret-t0ken-value" not in str(err.value)


def test_the_offline_plan_does_not_read_the_supervisor(run_program: Program) -> None:
    """Under the mocks pai:supervisorKubeconfig is a placeholder (here not even YAML): reading it would stop the
    program; it plans the stack instead."""
    assert run_program(values(), SECRETS)
