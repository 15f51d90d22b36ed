"""`paictl validate --live --supervisor-kubeconfig`: the vSphere namespace read by the real kubernetes client from
the fake API server, the hosts by pyvmomi from the govmomi simulator; exit 1 on a failed check, 2 (one line) on
a usage error."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from fake_kube import FakeKube, serving, write_kubeconfig
from test_validate_cli import validate
from test_vks_checks import SECRETS, namespace, values
from vcsim import PASSWORD, USER, gpu_host, running

from validation.live import PASSWORD_ENV


def stack_file(path: Path, config: dict[str, Any]) -> Path:
    """A stack file: `pai:` keys, secrets as `secure:` values (placeholders: never decrypted here)."""
    plain = {f"pai:{k}": v for k, v in config.items()}
    secure = {f"pai:{k}": {"secure": "v1:placeholder"} for k in SECRETS}
    path.write_text(yaml.safe_dump({"config": {**plain, **secure}}))
    return path


def test_a_class_without_a_vgpu_profile_fails_with_exit_1(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    stack = stack_file(tmp_path / "Pulumi.vks.yaml", values())
    monkeypatch.setenv(PASSWORD_ENV, PASSWORD)
    hosts = [gpu_host("esx-01", "580.95.02", [], profile_types=("nvidia_h100xm-80c",))]
    with running(hosts) as sim, serving(namespace(gpu_profile=None)) as url:
        code, out, err = validate(capsys, "--config-file", str(stack), "--live", "--format", "json",
                                  "--supervisor-kubeconfig", str(write_kubeconfig(tmp_path / "sv", url)),
                                  "--vcenter", f"{sim.host}:{sim.port}", "--vcenter-user", USER, "--vcenter-http")
    report = json.loads(out)
    assert code == 1 and err == "" and report["verdict"] == "fail"
    failed = {(c["id"], c["subject"]) for c in report["checks"] if c["status"] == "fail"}
    assert failed == {("vks-vm-class", "VirtualMachineClass ml-team/vgpu-h100-80c")}
    cluster_read = [c for c in report["checks"] if c["id"] in ("cluster-policy", "driver-pods")]
    assert {c["status"] for c in cluster_read} == {"skip"}  # no --kubeconfig: the workload cluster is not read


def test_the_table_names_the_object_and_the_fix(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    stack = stack_file(tmp_path / "Pulumi.vks.yaml", values(products=("NVIDIA-L40S-48C",)))
    with serving(namespace()) as url:
        code, out, _ = validate(capsys, "--config-file", str(stack), "--live",
                                "--supervisor-kubeconfig", str(write_kubeconfig(tmp_path / "sv", url)))
    assert code == 1
    lines = out.splitlines()
    at = [" ".join(line.split()) for line in lines].index(
        "FAIL vks-vgpu-profile vGPU profile nvidia_h100xm-80c of ml-team/vgpu-h100-80c")
    assert lines[at + 2] == ("      fix: add NVIDIA-H100XM-80C to pai:gpu.products, or set "
                             "pai:supervisor.nodePools[1].vmClass to a VM class whose profile is nvidia_l40s-48c")


def test_a_matching_namespace_passes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    stack = stack_file(tmp_path / "Pulumi.vks.yaml", values())
    with serving(namespace()) as url:
        code, out, _ = validate(capsys, "--config-file", str(stack), "--live", "--format", "json",
                                "--supervisor-kubeconfig", str(write_kubeconfig(tmp_path / "sv", url)))
    checks = json.loads(out)["checks"]
    assert code == 0
    assert {c["id"]: c["status"] for c in checks if c["id"].startswith("vks-") and c["id"] != "vks-host-profile"} == {
        "vks-vm-class": "pass", "vks-vgpu-profile": "pass", "vks-release": "pass", "vks-node-os": "pass",
        "vks-memory-reservation": "pass", "vks-cluster-class": "pass"}


def test_a_stack_without_a_supervisor_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = validate(capsys, "--stack", "dev", "--live", "--supervisor-kubeconfig", str(tmp_path / "kc"))
    assert (code, out, err) == (2, "", "error: --supervisor-kubeconfig: the stack has no pai:supervisor (no vSphere "
                                "namespace to read)\n")


def test_a_cluster_that_is_no_supervisor_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    stack = stack_file(tmp_path / "Pulumi.vks.yaml", values())
    with serving(FakeKube()) as url:
        code, out, err = validate(capsys, "--config-file", str(stack), "--live",
                                  "--supervisor-kubeconfig", str(write_kubeconfig(tmp_path / "sv", url)))
    assert (code, out, err) == (2, "", f"error: Supervisor {url}: serves no vmoperator.vmware.com API (is this a "
                                "Supervisor's kubeconfig?)\n")


def test_an_unreachable_supervisor_is_a_one_line_usage_error(tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    stack = stack_file(tmp_path / "Pulumi.vks.yaml", values())
    kubeconfig = write_kubeconfig(tmp_path / "sv", "http://127.0.0.1:1")
    code, out, err = validate(capsys, "--config-file", str(stack), "--live", "--supervisor-kubeconfig",
                              str(kubeconfig))
    assert code == 2 and out == "" and err.startswith("error: Supervisor http://127.0.0.1:1: ")
    assert err.count("\n") == 1 and "fake-token" not in err
