"""Cluster facts read by the real `kubernetes` client, and Helm releases by helm through pyhelm3, from a fake API
server over HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fake_kube import FakeKube, cluster_policy, crd, gfd_node, helm_release, operand_pod, serving, write_kubeconfig

from validation.facts import Facts
from validation.sources import kubernetes as source
from validation.sources.helm import HelmError, read_releases
from validation.sources.kubernetes import ClusterError, read_cluster


@pytest.fixture
def fake() -> FakeKube:
    kube = FakeKube(version="v1.33.2")
    kube.add("/api/v1/nodes", gfd_node("gpu-0", driver="570.148.08", cuda="12.8", compute="9.0", count=8))
    kube.add("/api/v1/nodes", gfd_node("gpu-1", product="NVIDIA-L40S", driver="580.95.05", cuda="13.0",
                                       compute="8.9", mig="single"))
    kube.add("/api/v1/nodes", gfd_node("cp-0", product=None))
    for revision, status in ((1, "superseded"), (2, "deployed")):
        release = helm_release("gpu-operator", "gpu-operator", "gpu-operator", f"v25.3.{revision - 1}", revision,
                               status, {"driver": {"version": f"570.{revision}"}} if revision == 1 else
                               {"driver": {"version": "570.148.08"}})
        kube.add("/api/v1/namespaces/gpu-operator/secrets", release)
    kube.add("/api/v1/namespaces/kserve/secrets", helm_release("kserve", "kserve", "kserve-resources", "v0.20.0"))
    kube.add("/api/v1/namespaces/gpu-operator/secrets", {"apiVersion": "v1", "kind": "Secret",
                                                         "metadata": {"name": "other", "namespace": "gpu-operator"}})
    kube.add("/apis/nvidia.com/v1/clusterpolicies", cluster_policy("notReady"))
    kube.add("/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
             crd("clusterpolicies.nvidia.com", ["v1"], ["v1"]))
    kube.add("/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
             crd("nvidiadrivers.nvidia.com", ["v1alpha1"], ["v1alpha1"]))
    kube.add("/api/v1/namespaces/gpu-operator/pods",
             operand_pod("nvidia-driver-daemonset-abc", "nvidia-driver-daemonset", "gpu-0", ready=False, restarts=7,
                         waiting="CrashLoopBackOff"))
    kube.add("/api/v1/namespaces/gpu-operator/pods",
             operand_pod("nvidia-operator-validator-xyz", "nvidia-operator-validator", "gpu-0"))
    kube.add("/api/v1/namespaces/default/pods", operand_pod("unrelated", "web", "cp-0", namespace="default"))
    return kube


def read(kubeconfig: Path, context: str | None = None) -> Facts:
    return read_cluster(kubeconfig, context)[0]


@pytest.fixture
def kubeconfig(fake: FakeKube, tmp_path: Path) -> Iterator[Path]:
    with serving(fake) as url:
        yield write_kubeconfig(tmp_path / "kubeconfig", url)


def test_gpu_nodes_come_from_gfd_labels(kubeconfig: Path) -> None:
    facts = read(kubeconfig)
    nodes = {n.name: n for n in facts.nodes}
    assert set(nodes) == {"gpu-0", "gpu-1"}  # cp-0 has no GFD labels
    assert read_cluster(kubeconfig)[1] == ["gpu-0", "gpu-1", "cp-0"]
    assert nodes["gpu-0"].products == {"NVIDIA-H100-80GB-HBM3": 8}
    assert (nodes["gpu-0"].driver_version, nodes["gpu-0"].cuda_driver_version) == ("570.148.08", "12.8")
    assert (nodes["gpu-1"].compute_capability, nodes["gpu-1"].mig_mode) == ("8.9", "single")
    assert {n.origin for n in facts.nodes} == {"cluster"}


def test_driver_version_from_the_split_labels_when_full_is_missing(fake: FakeKube, tmp_path: Path) -> None:
    node = gfd_node("old-gfd", driver="535.183.06")
    del node["metadata"]["labels"]["nvidia.com/cuda.driver-version.full"]
    fake.collections["/api/v1/nodes"] = [node]
    with serving(fake) as url:
        facts = read(write_kubeconfig(tmp_path / "kc", url))
    assert facts.nodes[0].driver_version == "535.183.06"


def test_helm_releases_are_read_by_helm_through_pyhelm3(kubeconfig: Path) -> None:
    releases = read_releases(kubeconfig)
    assert [(r.namespace, r.name, r.chart, r.version, r.status) for r in releases] == [
        ("gpu-operator", "gpu-operator", "gpu-operator", "v25.3.1", "deployed"),  # the latest revision
        ("kserve", "kserve", "kserve-resources", "v0.20.0", "deployed")]
    assert releases[0].values == {"driver": {"version": "570.148.08"}}  # what it was installed with


def test_an_unreachable_cluster_is_a_helm_error_naming_the_kubeconfig(tmp_path: Path) -> None:
    with pytest.raises(HelmError, match=r"helm releases of .*kc: .*127\.0\.0\.1"):
        read_releases(write_kubeconfig(tmp_path / "kc", "http://127.0.0.1:9"))


def test_version_policy_crds_and_pods(kubeconfig: Path) -> None:
    facts = read(kubeconfig)
    assert facts.kubernetes is not None and facts.kubernetes.version == "v1.33.2"
    assert facts.releases == []  # Helm's own reader has them (above)
    assert [(p.name, p.state) for p in facts.cluster_policies] == [("cluster-policy", "notReady")]
    assert facts.driver is not None and (facts.driver.mode, facts.driver.version) == ("datacenter", "570.148.08")
    assert {c.name: c.stored_versions for c in facts.crds}["nvidiadrivers.nvidia.com"] == ["v1alpha1"]
    pods = {p.component: p for p in facts.pods}
    assert set(pods) == {"driver", "validator"}  # only the gpu-operator namespace
    assert (pods["driver"].waiting_reason, pods["driver"].restarts, pods["driver"].ready) == ("CrashLoopBackOff", 7,
                                                                                              False)
    assert pods["validator"].ready and pods["validator"].node == "gpu-0"


def test_lists_are_paginated_not_one_call_per_node(fake: FakeKube, tmp_path: Path) -> None:
    fake.collections["/api/v1/nodes"] = [gfd_node(f"gpu-{i}") for i in range(source.PAGE * 2 + 1)]
    with serving(fake) as url:
        facts = read(write_kubeconfig(tmp_path / "kc", url))
    assert len(facts.nodes) == source.PAGE * 2 + 1
    assert fake.requests["/api/v1/nodes"] == 3
    assert not any(path.startswith("/api/v1/nodes/") for path in fake.requests)


@pytest.mark.parametrize(("driver", "mode"), [
    ({"enabled": False}, "preinstalled"),
    ({"enabled": True, "repository": "harbor.example.com/nvidia", "image": "vgpu-guest-driver", "version": "580.95.05",
      "licensingConfig": {"nlsEnabled": True, "secretName": "licensing-config"}}, "vgpu"),
])
def test_driver_mode_from_the_cluster_policy(fake: FakeKube, tmp_path: Path, driver: dict[str, object],
                                             mode: str) -> None:
    fake.collections["/apis/nvidia.com/v1/clusterpolicies"] = [cluster_policy(driver=driver)]
    with serving(fake) as url:
        facts = read(write_kubeconfig(tmp_path / "kc", url))
    assert facts.driver is not None and facts.driver.mode == mode


def test_no_clusterpolicy_crd_means_no_policy_not_an_error(fake: FakeKube, tmp_path: Path) -> None:
    del fake.collections["/apis/nvidia.com/v1/clusterpolicies"]
    with serving(fake) as url:
        facts = read(write_kubeconfig(tmp_path / "kc", url))
    assert facts.cluster_policies == [] and facts.driver is None


def test_a_forbidden_list_is_a_clear_error_naming_status_and_reason(fake: FakeKube, tmp_path: Path) -> None:
    fake.forbidden.add("/api/v1/nodes")
    with serving(fake) as url, pytest.raises(ClusterError, match=r"403 Forbidden: .* is forbidden: User"):
        read(write_kubeconfig(tmp_path / "kc", url))


def test_releases_helm_may_not_list_are_a_helm_error(fake: FakeKube, tmp_path: Path) -> None:
    fake.forbidden.add("/api/v1/secrets")
    with serving(fake) as url, pytest.raises(HelmError, match=r"is forbidden: User \"reader\""):
        read_releases(write_kubeconfig(tmp_path / "kc", url))


def test_unreachable_cluster_and_bad_kubeconfig_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(ClusterError, match="kubeconfig"):
        read(tmp_path / "missing")
    with pytest.raises(ClusterError, match="context"):
        read(write_kubeconfig(tmp_path / "kc", "http://127.0.0.1:1"), context="nope")
