"""Supervisor facts read by the real kubernetes client from the fake API server (tests/fake_kube.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from fake_kube import (
    FakeKube,
    cluster_class,
    kubeconfig,
    resource_quota,
    serve_vm_operator,
    serving,
    vm_class,
    vm_class_binding,
    vm_image,
    write_kubeconfig,
)

from validation.sources.kubernetes import ClusterError
from validation.sources.supervisor import read_supervisor, read_supervisor_text

NS = "ml-team"
GIB = 2**30
CLASSES = "/apis/vmoperator.vmware.com/{v}/namespaces/ml-team/virtualmachineclasses"


def supervisor(versions: tuple[str, ...] = ("v1alpha5", "v1alpha4")) -> FakeKube:
    fake = FakeKube()
    v = serve_vm_operator(fake, versions)
    classes = CLASSES.format(v=v)
    fake.add(classes, vm_class("best-effort-large", NS, memory="16Gi", version=v))
    fake.add(classes, vm_class("vgpu-h100-80c", NS, memory="128Gi", profile="nvidia_h100xm-80c", version=v))
    fake.add(classes, vm_class("vgpu-l40s", NS, memory="64Gi", profile="nvidia_l40s-48c", in_config_spec=True,
                               reservation="64Gi", version=v))
    fake.add(f"/apis/vmoperator.vmware.com/{v}/namespaces/other/virtualmachineclasses",
             vm_class("elsewhere", "other", version=v))
    fake.add(f"/api/v1/namespaces/{NS}/resourcequotas", resource_quota(
        NS, "ml-team-storagequota", {"limits.memory": "512Gi", "requests.storage": "2Ti"}, {"limits.memory": "48Gi"}))
    fake.add(f"/apis/vmoperator.vmware.com/{v}/namespaces/{NS}/virtualmachineimages", vm_image(
        "vmi-0a1b2c", NS, "ubuntu-2204-amd64-v1.33.3---vmware.1-fips-vkr.1", "ubuntu64Guest", "22.04",
        "v1.33.3+vmware.1-fips-vkr.1", version=v))
    fake.add("/apis/cluster.x-k8s.io/v1beta2/namespaces/vmware-system-vks-public/clusterclasses", cluster_class(
        "builtin-generic-v3.4.0", "vmware-system-vks-public", ["vmClass", "storageClass", "volumes", "node"]))
    return fake


def test_vm_classes_of_the_namespace_with_their_vgpu_profile_from_either_place(tmp_path: Path) -> None:
    with serving(supervisor()) as url:
        facts = read_supervisor(write_kubeconfig(tmp_path / "kc", url), NS)
    classes = {c.name: c for c in facts.vm_classes}
    assert set(classes) == {"best-effort-large", "vgpu-h100-80c", "vgpu-l40s"}  # not the other namespace's
    assert classes["vgpu-h100-80c"].vgpu_profiles == ["nvidia_h100xm-80c"]  # spec.hardware.devices.vgpuDevices
    assert classes["vgpu-l40s"].vgpu_profiles == ["nvidia_l40s-48c"]  # spec.configSpec deviceChange backing
    assert classes["best-effort-large"].vgpu_profiles == []
    assert (classes["vgpu-h100-80c"].memory, classes["vgpu-l40s"].memory_reservation) == (128 * GIB, 64 * GIB)
    assert {c.origin for c in facts.vm_classes} == {"supervisor"} and facts.sources == {
        "supervisor": f"{url} namespace {NS}"}


def test_quotas_images_and_the_cluster_class(tmp_path: Path) -> None:
    with serving(supervisor()) as url:
        facts = read_supervisor(write_kubeconfig(tmp_path / "kc", url), NS,
                                cluster_class=("vmware-system-vks-public", "builtin-generic-v3.4.0"))
    quota = facts.quotas[0]
    assert (quota.name, quota.hard, quota.used) == ("ml-team-storagequota", {"limits.memory": 512 * GIB},
                                                    {"limits.memory": 48 * GIB})  # storage is not memory
    image = facts.vm_images[0]
    assert (image.display_name, image.os_type, image.os_version, image.product_version) == (
        "ubuntu-2204-amd64-v1.33.3---vmware.1-fips-vkr.1", "ubuntu64Guest", "22.04", "v1.33.3+vmware.1-fips-vkr.1")
    assert [(c.name, c.variables) for c in facts.cluster_classes] == [
        ("builtin-generic-v3.4.0", ["vmClass", "storageClass", "volumes", "node"])]


def test_the_newest_served_vm_operator_version_is_read(tmp_path: Path) -> None:
    fake = supervisor(versions=("v1alpha2", "v1alpha1"))
    with serving(fake) as url:
        facts = read_supervisor(write_kubeconfig(tmp_path / "kc", url), NS)
    assert len(facts.vm_classes) == 3 and fake.requests[CLASSES.format(v="v1alpha2")] == 1
    assert fake.requests[CLASSES.format(v="v1alpha5")] == 0


def test_an_older_supervisor_binds_cluster_scoped_classes_to_the_namespace(tmp_path: Path) -> None:
    fake = FakeKube()
    serve_vm_operator(fake, ("v1alpha1",), classes_namespaced=False)
    for name, profile in (("vgpu-a100-40c", "grid_a100-40c"), ("best-effort-small", None), ("unbound", None)):
        fake.add("/apis/vmoperator.vmware.com/v1alpha1/virtualmachineclasses",
                 vm_class(name, None, profile=profile, version="v1alpha1"))
    for name in ("vgpu-a100-40c", "best-effort-small"):
        fake.add(f"/apis/vmoperator.vmware.com/v1alpha1/namespaces/{NS}/virtualmachineclassbindings",
                 vm_class_binding(name, NS))
    with serving(fake) as url:
        facts = read_supervisor(write_kubeconfig(tmp_path / "kc", url), NS)
    assert {(c.name, tuple(c.vgpu_profiles)) for c in facts.vm_classes} == {
        ("vgpu-a100-40c", ("grid_a100-40c",)), ("best-effort-small", ())}


def test_unreadable_optional_parts_are_left_out(tmp_path: Path) -> None:
    fake = supervisor()
    fake.forbidden.add("/apis/vmoperator.vmware.com/v1alpha5/namespaces/ml-team/virtualmachineimages")
    with serving(fake) as url:
        facts = read_supervisor(write_kubeconfig(tmp_path / "kc", url), NS, cluster_class=("vmware-system-vks-public",
                                                                                           "builtin-generic-v9.9.9"))
    assert facts.vm_images == [] and facts.cluster_classes == [] and len(facts.vm_classes) == 3


def test_classes_are_read_in_pages(tmp_path: Path) -> None:
    fake = supervisor()
    for i in range(300):
        fake.add(CLASSES.format(v="v1alpha5"), vm_class(f"class-{i}", NS))
    with serving(fake) as url:
        facts = read_supervisor(write_kubeconfig(tmp_path / "kc", url), NS)
    assert len(facts.vm_classes) == 303 and fake.requests[CLASSES.format(v="v1alpha5")] == 2


def test_a_cluster_without_vm_operator_is_not_a_supervisor(tmp_path: Path) -> None:
    with serving(FakeKube()) as url, pytest.raises(ClusterError) as err:
        read_supervisor(write_kubeconfig(tmp_path / "kc", url), NS)
    assert str(err.value) == (f"Supervisor {url}: serves no vmoperator.vmware.com API (is this a Supervisor's "
                              "kubeconfig?)")


def test_a_forbidden_namespace_is_one_line_naming_the_supervisor(tmp_path: Path) -> None:
    fake = supervisor()
    fake.forbidden.add(CLASSES.format(v="v1alpha5"))
    with serving(fake) as url, pytest.raises(ClusterError, match=rf"^Supervisor {url}: 403 Forbidden: ") as err:
        read_supervisor(write_kubeconfig(tmp_path / "kc", url), NS)
    assert "\n" not in str(err.value)


def test_a_kubeconfig_held_as_a_secret_is_read_and_never_quoted() -> None:
    with serving(supervisor()) as url:
        facts = read_supervisor_text(yaml.safe_dump(kubeconfig(url)), "pai:supervisorKubeconfig", NS)
    assert len(facts.vm_classes) == 3
    secret = "token-Zq8xW2vB9nK4: [unclosed"
    with pytest.raises(ClusterError) as err:
        read_supervisor_text(secret, "pai:supervisorKubeconfig", NS)
    assert str(err.value).startswith("pai:supervisorKubeconfig: not a kubeconfig") and "Zq8xW2vB9nK4" not in str(
        err.value)
    no_context = yaml.safe_dump({**kubeconfig("https://10.0.0.9:6443"), "current-context": "s3cret-context-name"})
    with pytest.raises(ClusterError) as err:
        read_supervisor_text(no_context, "pai:supervisorKubeconfig", NS)
    assert "s3cret-context-name" not in str(err.value)
