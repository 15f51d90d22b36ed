"""Every interop rule on both sides of each of its boundaries, from facts built by hand."""

from __future__ import annotations

import re
from typing import Any

import pytest

from components.catalog import CATALOG
from validation.facts import (
    ClusterPolicyFacts,
    CrdFacts,
    DriverFacts,
    Facts,
    HostFacts,
    KubernetesFacts,
    ModelFacts,
    NodeFacts,
    OperatorFacts,
    PodFacts,
    ReleaseFacts,
    RuntimeImageFacts,
    SmokeFacts,
)
from validation.matrix import load_matrix, version_key
from validation.rules import (
    RULES,
    UPGRADE_RULES,
    Check,
    Status,
    allow,
    run_checks,
    run_upgrade_checks,
)

H100 = "NVIDIA-H100-80GB-HBM3"
RTX = "NVIDIA-GeForce-RTX-4090"
V100 = "Tesla-V100-SXM2-32GB"
VLLM = "docker.io/vllm/vllm-openai:v0.20.0"
VLLM_015 = "docker.io/vllm/vllm-openai:v0.15.1"
PLAIN = "registry.example.com/team/server:1.0"  # no matrix row: nothing known of cuda-compat in the image
MATRIX = load_matrix()


def node(driver: str | None = None, product: str = H100, origin: Any = "cluster", **fields: Any) -> NodeFacts:
    return NodeFacts(origin=origin, name=f"gpu-{product.lower()}", products={product: 8}, driver_version=driver,
                     **fields)


def image(cuda: str | None, engine: str = "vllm", ref: str = VLLM, unverified: bool = False) -> RuntimeImageFacts:
    return RuntimeImageFacts(origin="config", engine=engine, image=ref, cuda=cuda, unverified=unverified)


def one(check_id: str, facts: Facts) -> Check:
    (check,) = RULES[check_id](facts, MATRIX)
    return check


def upgrade(check_id: str, current: Facts, target: Facts) -> Check:
    (check,) = UPGRADE_RULES[check_id](current, target, MATRIX)
    return check


# ---- cuda-driver ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("cuda", "driver", "product", "status"), [
    ("13.0", "580.65.06", H100, "pass"),      # exactly 13.0 GA's minimum
    ("13.0", "580.65.05", H100, "warn"),      # just below: forward compatibility from the R580 LTSB branch
    ("13.0", "570.148.08", H100, "fail"),     # R570 is a Production branch: no forward compatibility
    ("13.0", "535.309.01", H100, "warn"),     # R535 LTSB on a data-center GPU: forward compatibility
    ("13.0", "535.309.01", RTX, "fail"),      # the same driver on a GeForce part: error 804
    ("13.2", "595.45.04", H100, "pass"),      # 13.2 GA natively
    ("13.2", "595.45.03", H100, "warn"),      # below: 13.x minor-version compatibility (>= 580.65.06)
    ("13.2", "580.65.06", RTX, "warn"),       # minor-version compatibility needs no data-center GPU (PLAIN)
    ("12.8.1", "570.124.06", H100, "pass"),   # 12.8 Update 1 natively
    ("12.8.1", "570.124.05", H100, "warn"),   # below: 12.x minor-version compatibility
    ("12.9", "525.60.13", RTX, "warn"),       # the 12.x floor
    ("12.9", "525.60.12", H100, "fail"),      # below the floor, R525 is not a forward-compatible base branch
    ("12.9", "610.57.04", RTX, "pass"),       # a newer major's driver runs older CUDA (backward compatibility)
])
def test_cuda_driver_boundaries(cuda: str, driver: str, product: str, status: Status) -> None:
    check = one("cuda-driver", Facts(runtime_images=[image(cuda, ref=PLAIN)], nodes=[node(driver, product)]))
    assert check.status == status, check.message
    assert cuda in check.message and driver in check.message


def test_cuda_driver_states_versions_and_fix_as_the_issue_asks() -> None:
    check = one("cuda-driver", Facts(runtime_images=[image("13.0")], nodes=[node("570.148.08")]))
    assert check.status == "fail"
    assert check.message.startswith(f"{VLLM} is built with CUDA 13.0, which needs driver >= 580.65.06;")
    assert "570.148.08" in check.message
    assert "upgrade the driver to the R580 branch (>= 580.65.06)" in check.fix
    assert "pin vllm <= v0.19" in check.fix
    # The R570 refusal rests on reading the FAQ's long-term-support condition across majors: it says so, and the
    # research note (a URL) is a source, not part of the message.
    assert check.message.endswith("(rests on matrix data marked unverified)")
    assert any(s.startswith("unverified: ") and "frequently-asked-questions" in s for s in check.sources)
    assert "http" not in check.message
    assert any("cuda-toolkit-release-notes" in s for s in check.sources)


def test_cuda_driver_says_when_it_rests_on_unverified_data() -> None:
    unverified = one("cuda-driver", Facts(runtime_images=[image("13.3")], nodes=[node("610.43.02")]))
    verified = one("cuda-driver", Facts(runtime_images=[image("13.0")], nodes=[node("610.43.02")]))
    assert unverified.status == verified.status == "pass"
    assert "unverified" in unverified.message and "unverified" not in verified.message
    catalog = one("cuda-driver", Facts(runtime_images=[image("13.0", unverified=True)], nodes=[node("610.43.02")]))
    assert "marked unverified in the catalog" in catalog.message


@pytest.mark.parametrize("facts", [
    Facts(nodes=[node("580.95.05")]),                                 # no GPU runtime image
    Facts(runtime_images=[image("13.0")], nodes=[node(None)]),        # no driver version known
    Facts(runtime_images=[image(None)], nodes=[node("580.95.05")]),   # image CUDA unknown
    Facts(runtime_images=[image("9.2")], nodes=[node("580.95.05")]),  # CUDA not in the matrix
])
def test_cuda_driver_skips_without_facts(facts: Facts) -> None:
    assert one("cuda-driver", facts).status == "skip"


def test_cuda_driver_groups_nodes_by_driver() -> None:
    nodes = [NodeFacts(origin="cluster", name=f"gpu-{i}", products={H100: 8}, driver_version=d)
             for i, d in enumerate(["580.95.05"] * 500 + ["570.148.08"])]
    checks = RULES["cuda-driver"](Facts(runtime_images=[image("13.0")], nodes=nodes), MATRIX)
    assert [c.status for c in checks] == ["pass", "fail"]
    assert "(500 nodes)" in checks[0].subject and "gpu-500" in checks[1].subject


@pytest.mark.parametrize(("count", "listed"), [(3, "gpu-0, gpu-1, gpu-2"), (4, "gpu-0, gpu-1, gpu-2, ... (4 nodes)")])
def test_node_lists_name_three_then_count(count: int, listed: str) -> None:
    nodes = [NodeFacts(origin="cluster", name=f"gpu-{i}", products={H100: 8}, driver_version="580.95.05")
             for i in range(count)]
    check = one("cuda-driver", Facts(runtime_images=[image("13.0")], nodes=nodes))
    assert check.subject == f"{VLLM} on {listed}"


@pytest.mark.parametrize(("product", "why"), [
    (RTX, f"{RTX} is not a data-center GPU"),
    ("NVIDIA-Some-New-GPU", "NVIDIA-Some-New-GPU is not in the matrix"),
])
def test_cuda_driver_says_why_forward_compatibility_does_not_apply(product: str, why: str) -> None:
    check = one("cuda-driver", Facts(runtime_images=[image("13.0")], nodes=[node("535.309.01", product)]))
    assert check.status == "fail"
    assert f"forward compatibility runs only on data-center GPUs (else CUDA error 804): {why}" in check.message


# ---- engines ------------------------------------------------------------------------------------------------------

def model(engine: str = "vllm", fmt: str = "safetensors", product: str | None = H100, gpus: int = 1) -> ModelFacts:
    return ModelFacts(origin="config", name="m", engine=engine, format=fmt, gpus=gpus, product=product)


@pytest.mark.parametrize(("cuda", "product", "status"), [
    ("13.0", V100, "fail"),                     # CUDA 13 cannot target Volta (7.0 < 7.5)
    ("13.0", "Tesla-T4", "pass"),               # 7.5 is the CUDA 13 floor
    ("12.9", V100, "fail"),                     # the v0.20.0 image: vLLM 0.20 needs 7.5 whatever the CUDA
    ("13.0", "NVIDIA-Unknown-GPU", "skip"),     # not in the matrix
])
def test_engine_compute_capability_boundaries(cuda: str, product: str, status: Status) -> None:
    facts = Facts(models=[model(product=product)], runtime_images=[image(cuda)])
    assert one("engine-compute-capability", facts).status == status


def test_engine_compute_capability_prefers_the_node_reported_value() -> None:
    facts = Facts(models=[model(product="NVIDIA-P4")], runtime_images=[image("12.9.1", ref=VLLM_015)],
                  nodes=[node("580.95.05", "NVIDIA-P4", compute_capability="6.1")])
    check = one("engine-compute-capability", facts)
    assert check.status == "fail" and "6.1" in check.message and "7.0" in check.message


@pytest.mark.parametrize(("engine", "fmt", "status"), [
    ("vllm", "safetensors", "pass"), ("vllm", "gguf", "fail"), ("llamacpp", "gguf", "pass"),
    ("llamacpp", "safetensors", "fail"), ("infinity", "onnx", "pass"), ("tgi", "safetensors", "skip"),
])
def test_engine_format(engine: str, fmt: str, status: Status) -> None:
    assert one("engine-format", Facts(models=[model(engine, fmt)])).status == status


# ---- GPU Operator -------------------------------------------------------------------------------------------------

def operator(version: str, kube: str | None = None, driver: str | None = None, mode: Any = "datacenter") -> Facts:
    return Facts(
        operator=OperatorFacts(origin="config", version=version),
        kubernetes=KubernetesFacts(origin="config", version=kube) if kube else None,
        driver=DriverFacts(origin="config", mode=mode, version=driver),
        nodes=[node(driver, origin="config")] if driver else [],
    )


@pytest.mark.parametrize(("version", "kube", "status"), [
    ("v25.3.0", "1.28", "fail"), ("v25.3.0", "1.29", "pass"), ("v25.3.0", "1.32", "pass"),
    ("v25.3.0", "1.33", "fail"), ("v25.3.1", "1.33", "pass"), ("v26.7.0", "1.31", "fail"),
    ("v26.7.0", "1.32", "pass"), ("v25.10.1", "1.35", "pass"), ("v25.10.0", "1.35", "fail"),
    ("v26.7.0", "v1.36.1", "pass"), ("v26.7.0", "1.37", "fail"), ("v99.1.0", "1.33", "warn"),
])
def test_operator_kubernetes(version: str, kube: str, status: Status) -> None:
    check = one("operator-kubernetes", operator(version, kube))
    assert check.status == status
    if status == "fail":
        assert "use gpu-operator" in check.fix or "Kubernetes version" in check.fix


def test_operator_kubernetes_reads_the_deployed_release_over_the_planned_one() -> None:
    facts = operator("v26.7.0", "1.33").model_copy(update={"releases": [ReleaseFacts(
        origin="cluster", name="gpu-operator", namespace="gpu-operator", chart="gpu-operator", version="v25.3.0",
        status="deployed")]})
    check = one("operator-kubernetes", facts)
    assert check.status == "fail" and "v25.3.0" in check.message
    assert check.fix == "use gpu-operator v26.7.0 (Kubernetes 1.32-1.36)"


@pytest.mark.parametrize(("version", "driver", "mode", "status"), [
    ("v26.7.0", "570.148.08", "datacenter", "fail"),   # R570 left v26.7.0's branches
    ("v26.7.0", "580.173.02", "datacenter", "pass"),   # listed driver container
    ("v26.7.0", "580.95.05", "datacenter", "warn"),    # R580 supported, container not listed
    ("v26.7.0", "580.95.05", "vgpu", "pass"),          # vGPU guest drivers are built by the customer
    ("v25.3.0", "570.148.08", "datacenter", "pass"),
    ("v25.3.0", "595.91.07", "datacenter", "fail"),
])
def test_operator_driver_branch(version: str, driver: str, mode: str, status: Status) -> None:
    check = one("operator-driver-branch", operator(version, driver=driver, mode=mode))
    assert check.status == status and driver in check.message


def test_operator_driver_lists_are_the_release_columns_of_the_component_matrix() -> None:
    # v25.3.4's list is read now (its default 580.82.07 is listed); R590 came with v25.10.1, not v25.10.0.
    check = one("operator-driver-branch", operator("v25.3.4", driver="580.82.07"))
    assert check.status == "pass" and "unverified" not in check.message
    assert one("operator-driver-branch", operator("v25.10.1", driver="590.48.01")).status == "pass"
    assert one("operator-driver-branch", operator("v25.10.0", driver="590.48.01")).status == "fail"


# ---- vGPU ---------------------------------------------------------------------------------------------------------

def vgpu(manager: str | None, guest: str, mode: Any = "vgpu") -> Facts:
    return Facts(driver=DriverFacts(origin="config", mode=mode, version=guest, image="harbor.example.com/vgpu"),
                 nodes=[node(guest, origin="config")],
                 hosts=[HostFacts(origin="vcenter", name="esxi-1", vgpu_manager_version=manager)])


@pytest.mark.parametrize(("manager", "guest", "status"), [
    ("580.95.02", "580.95.05", "pass"),    # vGPU 19.2 host and guest
    ("580.65.05", "580.95.05", "warn"),    # same branch, different releases (19.0 host, 19.2 guest)
    ("535.161.05", "535.161.08", "pass"),  # vGPU 16.5: its guest with the manager it shares with 16.4
    ("580.95.02", "595.58.03", "fail"),    # guest newer than the host branch
    ("580.95.02", "570.148.08", "pass"),   # previous branch
    ("580.95.02", "550.144.03", "fail"),   # two branches behind, R550 is no LTS branch
    ("580.95.02", "535.309.01", "pass"),   # previous LTS branch under an LTS manager
    ("595.58.02", "570.148.08", "fail"),   # two behind under a Production manager
])
def test_vgpu_host_guest(manager: str, guest: str, status: Status) -> None:
    check = one("vgpu-host-guest", vgpu(manager, guest))
    assert check.status == status, check.message
    assert manager in check.message and guest in check.message
    if status == "fail":
        assert check.fix


def test_a_guest_newer_than_the_host_branch_never_loads() -> None:
    check = one("vgpu-host-guest", vgpu("580.95.02", "595.58.03"))
    assert "a guest driver newer than the host manager's branch never loads" in check.message
    assert check.fix.startswith("upgrade the ESXi hosts' vGPU manager to R595")


def test_hosts_with_one_manager_are_named_three_then_counted() -> None:
    facts = vgpu("580.95.02", "580.95.05").model_copy(update={"hosts": [
        HostFacts(origin="vcenter", name=f"esxi-{i}", vgpu_manager_version="580.95.02") for i in range(4)]})
    assert one("vgpu-host-guest", facts).subject == (
        "host manager 580.95.02 (esxi-0, esxi-1, esxi-2) / guest driver 580.95.05")


def test_vgpu_host_guest_says_it_rests_on_unverified_rows() -> None:
    check = one("vgpu-host-guest", vgpu("580.95.02", "535.309.01"))
    assert "unverified" in check.message


@pytest.mark.parametrize("facts", [vgpu(None, "580.95.05"), vgpu("580.95.02", "580.95.05", mode="datacenter")])
def test_vgpu_host_guest_skips(facts: Facts) -> None:
    assert one("vgpu-host-guest", facts).status == "skip"


@pytest.mark.parametrize(("mode", "image_ref", "profile", "status"), [
    ("vgpu", "nvcr.io/nvidia/driver", None, "fail"),
    ("vgpu", "nvcr.io/nvidia/driver:580.95.05-ubuntu22.04", None, "fail"),  # as a ClusterPolicy may name it
    ("vgpu", f"nvcr.io/nvidia/driver@sha256:{'a' * 64}", None, "fail"),
    ("vgpu", "harbor.example.com/nvidia/vgpu-guest-driver", None, "pass"),
    ("datacenter", None, "nvidia_h100-80c", "fail"),
    ("datacenter", None, None, "pass"),
])
def test_vgpu_no_datacenter_driver(mode: Any, image_ref: str | None, profile: str | None, status: Status) -> None:
    facts = Facts(driver=DriverFacts(origin="config", mode=mode, image=image_ref),
                  nodes=[node("580.95.05", origin="vcenter", vgpu_profile=profile)])
    assert one("vgpu-no-datacenter-driver", facts).status == status


def test_vgpu_no_datacenter_driver_skips_without_vcenter() -> None:
    facts = Facts(driver=DriverFacts(origin="config", mode="datacenter"), nodes=[node("580.95.05")])
    assert one("vgpu-no-datacenter-driver", facts).status == "skip"


# ---- live state ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("state", "status"), [("ready", "pass"), ("notReady", "fail")])
def test_cluster_policy(state: str, status: Status) -> None:
    facts = Facts(cluster_policies=[ClusterPolicyFacts(origin="cluster", name="cluster-policy", state=state)])
    assert one("cluster-policy", facts).status == status


def pod(ready: bool, reason: str | None = None) -> PodFacts:
    return PodFacts(origin="cluster", name="nvidia-driver-daemonset-x", namespace="gpu-operator", component="driver",
                    node="gpu-1", phase="Running", ready=ready, restarts=0 if ready else 7, waiting_reason=reason)


@pytest.mark.parametrize(("pods", "status"), [([pod(True)], "pass"), ([pod(False, "CrashLoopBackOff")], "fail")])
def test_driver_pods(pods: list[PodFacts], status: Status) -> None:
    check = one("driver-pods", Facts(pods=pods))
    assert check.status == status
    if status == "fail":
        assert "CrashLoopBackOff" in check.message and "7 restarts" in check.message


@pytest.mark.parametrize(("ok", "status"), [(True, "pass"), (False, "fail")])
def test_smoke(ok: bool, status: Status) -> None:
    facts = Facts(smoke=[SmokeFacts(origin="smoke", node="gpu-1", image=VLLM, level="vllm", ok=ok)])
    check = one("smoke", facts)
    assert check.status == status and "level vllm" in check.message


@pytest.mark.parametrize("check_id", ["cluster-policy", "driver-pods", "smoke"])
def test_live_rules_skip_offline(check_id: str) -> None:
    assert one(check_id, Facts()).status == "skip"


# ---- upgrades -----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("now", "then", "status"), [
    ("v25.3.0", "v26.7.0", "pass"), ("v26.7.0", "v26.7.0", "pass"),
    ("v24.9.2", "v26.7.0", "fail"), ("v26.7.0", "v25.3.0", "fail"),
])
def test_upgrade_operator_path(now: str, then: str, status: Status) -> None:
    assert upgrade("upgrade-operator-path", operator(now), operator(then)).status == status


@pytest.mark.parametrize(("now", "then", "status", "words"), [
    ("570.148.08", "580.95.05", "warn", "branch change R570 -> R580"),
    ("580.95.05", "580.105.08", "warn", "within R580"),
    ("580.95.05", "580.95.05", "pass", "stays"),
])
def test_upgrade_driver(now: str, then: str, status: Status, words: str) -> None:
    check = upgrade("upgrade-driver", operator("v26.7.0", driver=now), operator("v26.7.0", driver=then))
    assert check.status == status and words in check.message


@pytest.mark.parametrize(("cuda", "status"), [("13.0", "fail"), ("12.9", "warn"), ("12.8", "pass")])
def test_upgrade_runtime_cuda_checks_new_images_against_running_drivers(cuda: str, status: Status) -> None:
    current = Facts(nodes=[node("570.148.08")], runtime_images=[image("12.8", ref="docker.io/vllm/vllm-openai:v0.9.2")])
    target = Facts(runtime_images=[image(cuda)])
    assert upgrade("upgrade-runtime-cuda", current, target).status == status


def test_upgrade_runtime_cuda_passes_when_no_image_changes() -> None:
    facts = Facts(nodes=[node("570.148.08")], runtime_images=[image("13.0")])
    assert upgrade("upgrade-runtime-cuda", facts, facts).status == "pass"


@pytest.mark.parametrize(("manager", "guest", "status"), [("570.148.06", "580.95.05", "fail"),
                                                          ("580.95.02", "580.95.05", "pass")])
def test_upgrade_vgpu_host_guest(manager: str, guest: str, status: Status) -> None:
    current = Facts(hosts=[HostFacts(origin="vcenter", name="esxi-1", vgpu_manager_version=manager)])
    assert upgrade("upgrade-vgpu-host-guest", current, vgpu(None, guest)).status == status


@pytest.mark.parametrize(("kube", "status"), [("1.31", "fail"), ("1.32", "pass")])
def test_upgrade_operator_kubernetes(kube: str, status: Status) -> None:
    check = upgrade("upgrade-operator-kubernetes", operator("v25.3.0", kube), operator("v26.7.0", "1.36"))
    assert check.status == status and kube in check.message


def crds(*stored: str, name: str = "clusterpolicies.nvidia.com") -> Facts:
    return operator("v25.3.0").model_copy(update={"crds": [CrdFacts(origin="cluster", name=name,
                                                                     stored_versions=list(stored))]})


@pytest.mark.parametrize(("current", "target", "status"), [
    (crds("v1"), "v26.7.0", "pass"),
    (crds("v1alpha1", "v1"), "v26.7.0", "fail"),
    (crds("v1", name="nvidiadrivers.nvidia.com"), "v26.7.0", "fail"),
    (crds("v1", name="gone.nvidia.com"), "v26.7.0", "warn"),
    (crds("v1"), "v24.9.2", "skip"),    # no CRD data for the target release
])
def test_upgrade_crd_versions(current: Facts, target: str, status: Status) -> None:
    check = upgrade("upgrade-crd-versions", current, operator(target))
    assert check.status == status
    if status == "fail":
        assert "the upgrade removes" in check.message and "storedVersions" in check.fix


def test_upgrade_crd_versions_of_a_release_read_at_its_tag() -> None:
    check = upgrade("upgrade-crd-versions", crds("v1"), operator("v25.10.1"))
    assert check.status == "pass" and "unverified" not in check.message


def test_upgrade_checks_include_the_targets_own_checks() -> None:
    checks = run_upgrade_checks(operator("v25.3.0", "1.32"), operator("v26.7.0", "1.32"))
    ids = {c.id for c in checks}
    assert "operator-kubernetes" in ids and "upgrade-operator-kubernetes" in ids


def test_allow_downgrades_only_listed_failures() -> None:
    checks = run_checks(operator("v25.3.0", "1.33", driver="595.91.07"))
    allowed = allow(checks, ["operator-kubernetes"])
    by_id = {c.id: c for c in allowed if c.status != "skip"}
    assert by_id["operator-kubernetes"].status == "warn"
    assert "allowed by pai:validation.allowFailures" in by_id["operator-kubernetes"].message
    assert by_id["operator-driver-branch"].status == "fail"


def test_every_check_names_its_sources() -> None:
    facts = operator("v26.7.0", "1.33", driver="580.95.05").model_copy(
        update={"sources": {"config": "stacks/Pulumi.x.yaml"}, "runtime_images": [image("13.0")]})
    for check in run_checks(facts):
        if check.status != "skip":
            assert check.sources, check
    (kube,) = [c for c in run_checks(facts) if c.id == "operator-kubernetes"]
    assert "config: stacks/Pulumi.x.yaml" in kube.sources


@pytest.mark.parametrize(("product", "status"), [(V100, "fail"), ("Tesla-T4", "pass"), ("NVIDIA-Unknown", "skip")])
def test_vgpu_compute_capability(product: str, status: Status) -> None:
    facts = vgpu("580.95.02", "580.95.05").model_copy(update={"nodes": [node("580.95.05", product)]})
    assert one("vgpu-compute-capability", facts).status == status


def test_vgpu_compute_capability_skips_outside_vgpu() -> None:
    assert one("vgpu-compute-capability", operator("v26.7.0", driver="580.95.05")).status == "skip"


@pytest.mark.parametrize(("mode", "status"), [("sharedDirect", "pass"), ("shared", "fail")])
def test_vgpu_host_graphics(mode: str, status: Status) -> None:
    facts = vgpu("580.95.02", "580.95.05").model_copy(update={"hosts": [
        HostFacts(origin="vcenter", name="esxi-1", vgpu_manager_version="580.95.02", graphics_mode=mode)]})
    check = one("vgpu-host-graphics", facts)
    assert check.status == status and mode in check.message and "unverified" in check.message


def test_vgpu_host_graphics_skips_without_vcenter() -> None:
    assert one("vgpu-host-graphics", vgpu("580.95.02", "580.95.05")).status == "skip"


@pytest.mark.parametrize(("product", "driver", "status"), [
    ("NVIDIA-B200", "570.133.20", "pass"), ("NVIDIA-B200", "570.124.06", "fail"),
    ("NVIDIA-RTX-PRO-6000-Blackwell-Server-Edition", "575.57.08", "pass"),
    ("NVIDIA-RTX-PRO-6000-Blackwell-Server-Edition", "570.172.08", "fail"),
    (H100, "570.124.06", "skip"),      # no documented minimum
])
def test_gpu_driver_minimum(product: str, driver: str, status: Status) -> None:
    assert one("gpu-driver-minimum", Facts(nodes=[node(driver, product)])).status == status


@pytest.mark.parametrize(("driver", "mig", "status"), [
    ("570.148.08", "mixed", "warn"), ("570.172.08", "mixed", "pass"), ("570.148.08", "single", "pass"),
])
def test_driver_known_issues(driver: str, mig: str, status: Status) -> None:
    check = one("driver-known-issues", Facts(nodes=[node(driver, mig_mode=mig)]))
    assert check.status == status
    if status == "warn":
        assert "Pending" in check.message and "570.172.08" in check.fix


def test_driver_known_issues_skip_without_drivers() -> None:
    assert one("driver-known-issues", Facts()).status == "skip"


@pytest.mark.parametrize(("product", "status", "closest"), [
    (H100, "pass", ""),
    ("NVIDIA-A100-80GB-PCIe-MIG-1g.10gb", "pass", ""),     # GFD's name under MIG strategy single
    ("NVIDIA-H100-80GB-HMB3", "warn", H100),               # letters swapped
    ("NVIDA-H100-80GB-HBM3", "warn", H100),                # a letter missing
    ("H100", "warn", "NVIDIA-H100-80GB-HBM3, NVIDIA-H100-PCIe, NVIDIA-H100-NVL"),  # the family, not a product
    ("NVIDIA-L40", "warn", "NVIDIA-L40S"),                  # a prefix of a known product is not that product
])
def test_gpu_product_names_are_checked_against_the_gfd_names(product: str, status: Status, closest: str) -> None:
    check = one("gpu-product", Facts(nodes=[node(product=product, origin="config")]))
    assert (check.status, check.subject) == (status, product)
    if closest:
        assert check.message == (f"{product} is not a GPU Feature Discovery product name the matrix knows; the "
                                 f"closest: {closest}: a product no node carries selects no node and no Kueue flavour")


def test_gpu_product_reads_the_configs_products_not_the_clusters() -> None:
    facts = Facts(nodes=[node(product="NVIDIA-Some-New-GPU")], models=[model(product="NVIDIA-L4O")])
    (check,) = RULES["gpu-product"](facts, MATRIX)
    assert (check.status, check.subject) == ("warn", "NVIDIA-L4O")
    assert "the closest: NVIDIA-L4:" in check.message


# ---- fixes name only what this project can install -----------------------------------------------------------------

INSTALLABLE = ", ".join(sorted(CATALOG.chart("gpu-operator").versions, key=version_key))
RANGES = "v25.3.0: 1.29-1.32, v25.10.1: 1.30-1.35, v26.3.3: 1.32-1.36, v26.7.0: 1.32-1.36"


@pytest.mark.parametrize(("check_id", "facts", "fix"), [
    ("operator-kubernetes", operator("v26.7.0", "1.30"), "use gpu-operator v25.10.1 (Kubernetes 1.30-1.35)"),
    ("operator-kubernetes", operator("v26.7.0", "1.37"),
     f"no GPU Operator release this project installs ({INSTALLABLE}) supports Kubernetes 1.37 ({RANGES}): run a "
     "Kubernetes version in one of those ranges"),
    ("operator-driver-branch", operator("v26.7.0", driver="570.148.08"),
     "use a driver on R610, R595, R580, R535 (the release's default is 595.91.07) or gpu-operator v26.3.3, which "
     "supports R570"),
    ("operator-driver-branch", operator("v25.3.0", driver="470.256.02"),
     "use a driver on R580, R575, R570, R550, R535 (the release's default is 570.124.06); no GPU Operator release "
     f"this project installs ({INSTALLABLE}) supports R470"),
])
def test_fixes_name_only_installable_releases_or_say_there_is_none(check_id: str, facts: Facts, fix: str) -> None:
    assert one(check_id, facts).fix == fix


@pytest.mark.parametrize(("now", "fix"), [
    ("v24.9.2", "upgrade through gpu-operator v25.10.1 first"),
    ("v23.9.2", f"upgrade through a 24.x release first; no GPU Operator release this project installs ({INSTALLABLE}) "
                "is 24.x"),
])
def test_upgrade_path_fix_names_an_installable_step(now: str, fix: str) -> None:
    target = "v25.3.0" if now.startswith("v23") else "v26.7.0"
    assert upgrade("upgrade-operator-path", operator(now), operator(target)).fix == fix


@pytest.mark.parametrize("kube", [f"1.{minor}" for minor in range(20, 40)])
@pytest.mark.parametrize("driver", ["470.256.02", "535.261.03", "550.163.01", "570.148.08", "580.95.05",
                                    "595.58.03", "610.10.01"])
def test_every_operator_fix_names_only_catalog_versions(kube: str, driver: str) -> None:
    installable = set(INSTALLABLE.split(", "))
    for version in sorted(installable):
        for check in run_checks(operator(version, kube, driver)):
            named = set(re.findall(r"v\d+\.\d+\.\d+", check.fix))
            assert named <= installable, (check.id, check.fix)


@pytest.mark.parametrize("check_id", ["vgpu-host-guest", "vgpu-compute-capability", "vgpu-host-graphics"])
@pytest.mark.parametrize(("mode", "why"), [("datacenter", "the driver mode is datacenter, not vgpu"),
                                           (None, "no GPU driver is configured or was read")])
def test_vgpu_checks_are_not_applicable_without_vgpu(check_id: str, mode: Any, why: str) -> None:
    facts = Facts(driver=DriverFacts(origin="config", mode=mode, version="580.95.05") if mode else None,
                  nodes=[node("580.95.05")], hosts=[HostFacts(origin="vcenter", name="esx-1",
                                                              vgpu_manager_version="580.95.02",
                                                              graphics_mode="shared")])
    check = one(check_id, facts)
    assert (check.status, check.message) == ("skip", f"not applicable: {why}")


def test_upgrade_vgpu_check_is_not_applicable_to_a_datacenter_target() -> None:
    current = vgpu("580.95.02", "580.95.05")
    target = Facts(driver=DriverFacts(origin="config", mode="datacenter", version="580.95.05"),
                   nodes=[node("580.95.05", origin="config")])
    assert upgrade("upgrade-vgpu-host-guest", current, target).message == (
        "not applicable: the driver mode is datacenter, not vgpu")


# ---- re-verified matrix classes: each with a documented combination both ways --------------------------------

def test_driver_ceiling_volta_on_the_v26_7_0_default_driver_fails_and_r580_passes() -> None:
    """NVIDIA: "The release 580 series will be the last to support GPUs based on the Maxwell, Pascal, and Volta
    architectures." v26.7.0 installs R595 by default."""
    facts = operator("v26.7.0", driver="595.91.07").model_copy(update={"nodes": [node("595.91.07", V100)]})
    check = one("gpu-driver-ceiling", facts)
    assert check.status == "fail" and "R580" in check.message and "595.91.07 (R595)" in check.message
    assert "pin pai:gpu.driver.version to 580.173.02" in check.fix  # v26.7.0's listed R580 driver
    assert any("unix-graphics-feature-deprecation-schedule" in s for s in check.sources)
    ok = operator("v26.7.0", driver="580.173.02").model_copy(update={"nodes": [node("580.173.02", V100)]})
    assert one("gpu-driver-ceiling", ok).status == "pass"
    assert one("gpu-driver-ceiling", Facts(nodes=[node("595.91.07", H100)])).status == "skip"  # no ceiling


@pytest.mark.parametrize(("ref", "cuda", "product", "status", "who"), [
    ("docker.io/vllm/vllm-openai:v0.9.2", "12.8.1", V100, "fail", "vllm 0.9.2 needs compute capability >= 7.5"),
    ("docker.io/vllm/vllm-openai:v0.15.1", "12.9.1", V100, "pass", "vllm 0.15.1 needs compute capability >= 7.0"),
    ("docker.io/vllm/vllm-openai:v0.8.5", "12.4.1", V100, "pass", "vllm 0.8.5 needs compute capability >= 7.0"),
    ("docker.io/vllm/vllm-openai:v0.20.0-cu129", "12.9.1", V100, "fail", "vllm 0.20.0 needs"),
    ("docker.io/vllm/vllm-openai:v0.9.2", "12.8.1", "Tesla-T4", "pass", "vllm 0.9.2 needs compute capability >= 7.5"),
    ("docker.io/kserve/huggingfaceserver:v0.16.0", "12.8.1", V100, "fail", "vllm 0.9.2"),  # KServe bundles 0.9.2
])
def test_engine_floor_follows_the_release_the_image_ships(ref: str, cuda: str, product: str, status: Status,
                                                          who: str) -> None:
    check = one("engine-compute-capability", Facts(models=[model(product=product)],
                                                  runtime_images=[image(cuda, ref=ref)]))
    assert check.status == status and who in check.message, check.message
    assert any(s.startswith("matrix: engines.releases ") for s in check.sources)


@pytest.mark.parametrize(("ref", "driver", "status"), [
    ("docker.io/vllm/vllm-openai:v0.20.0-cu129", "575.57.08", "pass"),   # -cu129 is CUDA 12.9.1
    ("docker.io/vllm/vllm-openai:v0.20.0", "575.57.08", "fail"),         # the plain tag is CUDA 13.0, R575 no LTSB
    ("docker.io/vllm/vllm-openai:v0.15.1", "575.57.08", "pass"),         # 12.9.1 natively
    ("docker.io/vllm/vllm-openai:v0.15.1", "575.51.03", "warn"),         # 12.9 GA's driver: 12.9.1 minor compat
    ("docker.io/vllm/vllm-openai:v0.15.1-cu130", "575.57.08", "fail"),   # before v0.20 -cu130 is the CUDA 13 build
])
def test_tag_variants_and_patch_levels_pick_the_cuda(ref: str, driver: str, status: Status) -> None:
    match = MATRIX.runtime_image(ref)
    assert match is not None and not match.assumed
    check = one("cuda-driver", Facts(runtime_images=[image(match.row.cuda, ref=ref)], nodes=[node(driver)]))
    assert check.status == status, check.message


def test_a_tag_newer_than_the_matrix_is_assumed_and_never_passes_silently() -> None:
    match = MATRIX.runtime_image("docker.io/vllm/vllm-openai:v0.33.0")
    assert match is not None and match.assumed and match.row.cuda == "13.0"
    assumed = RuntimeImageFacts(origin="config", engine="vllm", image="docker.io/vllm/vllm-openai:v0.33.0",
                                cuda="13.0", assumed=True)
    check = one("cuda-driver", Facts(runtime_images=[assumed], nodes=[node("595.91.07")]))
    assert check.status == "warn" and "assumed" in check.message
    known = one("cuda-driver", Facts(runtime_images=[image("13.0")], nodes=[node("595.91.07")]))
    assert known.status == "pass" and "assumed" not in known.message
    assert MATRIX.runtime_image("docker.io/vllm/vllm-openai:v0.5.0") is None  # older than every row: unknown


@pytest.mark.parametrize(("product", "status"), [(RTX, "fail"), (H100, "warn")])
def test_cuda_compat_below_the_image_cuda_fails_on_a_geforce_card(product: str, status: Status) -> None:
    """vLLM images run ldconfig on /usr/local/cuda-X.Y/compat: on a driver older than the image's CUDA a GeForce
    card gets CUDA error 804 (vllm#5283, #4940, #5510); a data-center GPU runs it."""
    ref = "docker.io/vllm/vllm-openai:v0.15.1"
    check = one("cuda-driver", Facts(runtime_images=[image("12.9.1", ref=ref)], nodes=[node("570.172.08", product)]))
    assert check.status == status, check.message
    if status == "fail":
        assert "804" in check.message
    plain = one("cuda-driver", Facts(runtime_images=[image("12.9.1", ref=PLAIN)], nodes=[node("570.172.08", product)]))
    assert plain.status == "warn"  # an image without the compat libraries: plain minor-version compatibility


def products(mode: Any, *names: str) -> Facts:
    return Facts(driver=DriverFacts(origin="config", mode=mode, version="580.95.05", image="harbor.example.com/g"),
                 nodes=[node("580.95.05", p, origin="config") for p in names])


@pytest.mark.parametrize(("mode", "product", "status"), [
    ("vgpu", "NVIDIA-H100-80GB-HBM3", "fail"),   # a board name selects no vGPU VM
    ("vgpu", "GRID-H100XM-80C", "pass"),         # the vGPU type GFD labels
    ("vgpu", "GRID-A100-10C", "pass"),
    ("datacenter", "GRID-A100-10C", "fail"),     # a vGPU VM with the data-center driver
    ("datacenter", "NVIDIA-A100-SXM4-80GB", "pass"),
    ("vgpu", "GRID-A100-80C", "skip"),           # A100 (40 GB) has no 80 GB profile: not a known type
])
def test_vgpu_products_are_vgpu_types(mode: str, product: str, status: Status) -> None:
    check = one("vgpu-products", products(mode, product))
    assert check.status == status, check.message
    if status == "fail" and mode == "vgpu":
        assert "GRID-H100XM-80C" in check.fix


def test_vgpu_types_carry_the_board_compute_capability() -> None:
    """Pre-Turing boards cannot run vGPU through the GPU Operator (bug 3227576): a V100 vGPU type fails."""
    assert one("vgpu-compute-capability", products("vgpu", "GRID-V100D-32C")).status == "fail"
    assert one("vgpu-compute-capability", products("vgpu", "GRID-L40S-48C")).status == "pass"
    check = one("engine-compute-capability", Facts(models=[model(product="GRID-H100XM-80C")],
                                                  runtime_images=[image("13.0")]))
    assert check.status == "pass" and "9.0" in check.message


@pytest.mark.parametrize(("driver", "product", "mig", "status"), [
    ("575.57.08", "NVIDIA-RTX-PRO-6000-Blackwell-Server-Edition", "single", "fail"),  # MIG not on 575.57.08
    ("575.57.08", "NVIDIA-RTX-PRO-6000-Blackwell-Server-Edition", "none", "pass"),
    ("580.65.06", "NVIDIA-RTX-PRO-6000-Blackwell-Server-Edition", "single", "pass"),
    ("580.65.06", "NVIDIA-GB200", "mixed", "fail"),        # CDMM on by default from 580.65.06 on Grace
    ("580.173.02", "NVIDIA-GH200-480GB", "single", "fail"),
    ("570.172.08", "NVIDIA-GB200", "single", "pass"),      # before CDMM
    ("580.65.06", H100, "single", "pass"),                 # CDMM applies to Grace-based systems only
    ("570.148.08", H100, "mixed", "warn"),                 # the 25.3.x mixed-strategy issue
])
def test_mig_known_issues(driver: str, product: str, mig: str, status: Status) -> None:
    check = one("driver-known-issues", Facts(nodes=[node(driver, product, mig_mode=mig)]))
    assert check.status == status, check.message


@pytest.mark.parametrize(("manager", "guest", "status"), [
    ("595.71.03", "595.71.05", "pass"),    # vGPU 20.1: the guest driver came from the May 2026 bulletin
    ("535.288.01", "535.288.01", "pass"),  # vGPU 16.13
    ("570.211.01", "570.211.01", "pass"),  # vGPU 18.6
    ("595.71.03", "595.58.03", "warn"),    # 20.1 manager, 20.0 guest: same branch, different releases
    ("580.159.01", "595.71.05", "fail"),   # a guest newer than the manager's branch
])
def test_vgpu_pairs_confirmed_by_the_security_bulletins(manager: str, guest: str, status: Status) -> None:
    check = one("vgpu-host-guest", vgpu(manager, guest))
    assert check.status == status, check.message
    if status == "pass":
        assert "third-party" not in check.message  # the pair's own row is no longer marked
        assert any("product-security" in s for s in check.sources)
