"""`paictl validate --live` end to end: the real kubernetes client against the fake API server, pyvmomi against
the govmomi simulator, merged with the stack's offline facts and run through the rules."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fake_kube import FakeKube, cluster_policy, crd, gfd_node, helm_release, operand_pod, serving, write_kubeconfig
from vcsim import PASSWORD, USER, Vcsim, gpu_host, running

from paictl.cli import main
from validation.live import PASSWORD_ENV

GUEST = "580.95.05"  # stacks/Pulumi.vks-prod.yaml pai:gpu.driver.version
NODES = ["gpu-node-0", "gpu-node-1"]


@pytest.fixture(scope="module")
def vcenter() -> Iterator[Vcsim]:
    """esx-old runs an R570 vGPU manager, too old for the R580 guest driver; esx-ok the matching one."""
    hosts = [gpu_host("esx-old", "570.124.03", [(NODES[0], "nvidia_h100-80c")]),
             gpu_host("esx-ok", "580.95.02", [(NODES[1], "nvidia_h100-80c"), ("cp-0", None)]),
             gpu_host("esx-vdi", "535.54.06", [("desktop-0", "grid_a16-2b")])]
    with running(hosts) as sim:
        yield sim


@pytest.fixture
def fake() -> FakeKube:
    kube = FakeKube(version="v1.33.2")
    for name in NODES:
        kube.add("/api/v1/nodes", gfd_node(name, driver=GUEST, cuda="13.0", compute="9.0"))
    kube.add("/api/v1/nodes", gfd_node("cp-0", product=None))
    kube.add("/api/v1/namespaces/gpu-operator/secrets",
             helm_release("gpu-operator", "gpu-operator", "gpu-operator", "v26.7.0"))
    kube.add("/apis/nvidia.com/v1/clusterpolicies", cluster_policy("ready", driver={
        "enabled": True, "repository": "harbor.pai.prod.example.internal/nvidia", "image": "vgpu-guest-driver",
        "version": GUEST, "licensingConfig": {"nlsEnabled": True, "secretName": "licensing-config"}}))
    kube.add("/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
             crd("clusterpolicies.nvidia.com", ["v1"], ["v1"]))
    for i, name in enumerate(NODES):
        kube.add("/api/v1/namespaces/gpu-operator/pods",
                 operand_pod(f"nvidia-vgpu-driver-{i}", "nvidia-vgpu-driver-daemonset", name))
    return kube


@pytest.fixture
def kubeconfig(fake: FakeKube, tmp_path: Path) -> Iterator[Path]:
    with serving(fake) as url:
        yield write_kubeconfig(tmp_path / "kubeconfig", url)


def validate(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, Any], str]:
    code = main(["validate", "--stack", "vks-prod", "--live", "--format", "json", *args])
    out, err = capsys.readouterr()
    return code, json.loads(out) if out else {}, err


def vcenter_args(sim: Vcsim) -> list[str]:
    return ["--vcenter", f"{sim.host}:{sim.port}", "--vcenter-user", USER, "--vcenter-http"]


def test_host_manager_too_old_for_the_guest_driver_fails_naming_both(
        vcenter: Vcsim, kubeconfig: Path, fake: FakeKube, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PASSWORD_ENV, PASSWORD)
    code, report, _ = validate(capsys, "--kubeconfig", str(kubeconfig), *vcenter_args(vcenter))
    assert code == 1 and report["verdict"] == "fail"
    host_guest = [c for c in report["checks"] if c["id"] == "vgpu-host-guest"]
    failed = [c for c in host_guest if c["status"] == "fail"]
    assert len(failed) == 1
    assert "570.124.03" in failed[0]["message"] and GUEST in failed[0]["message"]
    assert "esx-old" in failed[0]["subject"] and failed[0]["fix"]
    assert any(s.startswith("vcenter") for s in failed[0]["sources"])
    assert any(c["status"] == "pass" and "580.95.02" in c["subject"] for c in host_guest)
    assert not any("535.54.06" in c["subject"] for c in host_guest)  # esx-vdi serves no Kubernetes node
    assert PASSWORD not in json.dumps(report)
    assert not any(path.startswith("/api/v1/nodes/") for path in fake.requests)  # lists, never a GET per node


def test_live_cluster_facts_reach_the_rules(kubeconfig: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, report, _ = validate(capsys, "--kubeconfig", str(kubeconfig))
    by_id = {c["id"]: c for c in report["checks"]}
    assert by_id["cluster-policy"]["status"] == "pass"
    assert by_id["driver-pods"]["status"] == "pass"
    assert any(s.startswith("cluster") for c in report["checks"] for s in c["sources"])
    assert code == (1 if report["verdict"] == "fail" else 0)


def test_crashing_driver_pod_fails_the_live_check(fake: FakeKube, kubeconfig: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    fake.collections["/api/v1/namespaces/gpu-operator/pods"][0] = operand_pod(
        "nvidia-vgpu-driver-0", "nvidia-vgpu-driver-daemonset", NODES[0], ready=False, restarts=12,
        waiting="CrashLoopBackOff")
    code, report, _ = validate(capsys, "--kubeconfig", str(kubeconfig))
    (bad,) = [c for c in report["checks"] if c["id"] == "driver-pods" and c["status"] == "fail"]
    assert code == 1 and "CrashLoopBackOff" in bad["message"] and NODES[0] in bad["message"]


def test_probe_log_adds_nvml_and_smoke_facts(kubeconfig: Path, tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    log = tmp_path / "probe.log"
    log.write_text(json.dumps({"node": NODES[0], "image": "docker.io/vllm/vllm-openai:v0.20.0", "level": "vllm",
                               "ok": False, "detail": "vllm failed: CUDA error 804", "nvml": None}) + "\n")
    code, report, _ = validate(capsys, "--kubeconfig", str(kubeconfig), "--probe-log", str(log))
    (smoke,) = [c for c in report["checks"] if c["id"] == "smoke"]
    assert code == 1 and smoke["status"] == "fail" and "level vllm" in smoke["message"]


@pytest.mark.parametrize(("extra", "message"), [
    (["--vcenter", "127.0.0.1:1", "--vcenter-user", USER], PASSWORD_ENV),
    (["--vcenter", "127.0.0.1:1"], "--vcenter-user"),
])
def test_vcenter_without_user_or_password_is_a_usage_error(
        kubeconfig: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
        extra: list[str], message: str) -> None:
    monkeypatch.delenv(PASSWORD_ENV, raising=False)
    code, report, err = validate(capsys, "--kubeconfig", str(kubeconfig), *extra)
    assert code == 2 and report == {} and message in err


def test_refused_vcenter_login_is_a_usage_error_without_the_password(
        vcenter: Vcsim, kubeconfig: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PASSWORD_ENV, "wrong-Pa55word")
    code, _, err = validate(capsys, "--kubeconfig", str(kubeconfig), *vcenter_args(vcenter))
    assert code == 2 and "refused" in err and "wrong-Pa55word" not in err


def test_unreachable_cluster_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    kubeconfig = write_kubeconfig(tmp_path / "kc", "http://127.0.0.1:1")
    code, _, err = validate(capsys, "--kubeconfig", str(kubeconfig))
    assert code == 2 and "127.0.0.1:1" in err


def test_installed_releases_read_by_helm_are_checked_against_the_plan(
        fake: FakeKube, kubeconfig: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fake.add("/api/v1/namespaces/harbor/secrets", helm_release("harbor", "harbor", "harbor", "1.19.2", values={
        "externalURL": "https://harbor.old.example", "harborAdminPassword": "installed-secret-value"}))
    fake.add("/api/v1/namespaces/kueue-system/secrets",
             helm_release("kueue", "kueue-system", "kueue", "0.19.2", status="pending-upgrade"))
    fake.add("/api/v1/namespaces/old/secrets", helm_release("kueue-old", "old", "kueue", "0.18.0"))
    code, report, _ = validate(capsys, "--kubeconfig", str(kubeconfig))
    by_subject = {c["subject"]: c for c in report["checks"] if c["id"] == "helm-release"}
    harbor = by_subject["release harbor/harbor"]
    assert harbor["status"] == "fail" and "a downgrade: installed harbor 1.19.2, planned 1.19.1" in harbor["message"]
    assert by_subject["release kueue-system/kueue"]["status"] == "fail"
    assert "pending-upgrade" in by_subject["release kueue-system/kueue"]["message"]
    assert by_subject["release old/kueue-old"]["status"] == "warn"
    operator = by_subject["release gpu-operator/gpu-operator"]
    assert operator["status"] == "pass" and operator["message"].startswith(
        "installed gpu-operator v26.7.0, planned the same version; values change at ")
    assert by_subject["release mlflow/mlflow"]["message"].startswith("not installed")
    assert "installed-secret-value" not in json.dumps(report) and code == 1
