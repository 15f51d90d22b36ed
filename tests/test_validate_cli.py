"""`paictl validate`: the JSON report matches DESIGN section 6 (a JSON Schema), JUnit loads in a JUnit parser,
the table names every check, exit codes 0 / 1 / 2, and --upgrade-to against the current stack."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from junitparser import Failure, JUnitXml, Skipped

from paictl.cli import main
from validation import live
from validation.facts import Facts, NodeFacts
from validation.report import to_junit
from validation.rules import Check

H100 = "NVIDIA-H100-80GB-HBM3"
# DESIGN section 6: {"verdict": "pass|warn|fail", "checks": [{"id", "status", "subject", "message", "fix",
# "sources": [...], "rows": [{"row", "source"}]}]}.
REPORT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["verdict", "checks"],
    "properties": {
        "verdict": {"enum": ["pass", "warn", "fail"]},
        "checks": {"type": "array", "minItems": 1, "items": {
            "type": "object",
            "additionalProperties": False,
            "required": ["id", "status", "subject", "message", "fix", "sources", "rows"],
            "properties": {
                "id": {"type": "string", "pattern": "^[a-z0-9-]+$"},
                "status": {"enum": ["pass", "warn", "fail", "skip"]},
                "subject": {"type": "string", "minLength": 1},
                "message": {"type": "string", "minLength": 1},
                "fix": {"type": "string"},
                "sources": {"type": "array", "items": {"type": "string", "minLength": 1}},
                "rows": {"type": "array", "items": {
                    "type": "object", "additionalProperties": False, "required": ["row", "source"],
                    "properties": {"row": {"type": "string", "minLength": 1},
                                   "source": {"type": "string", "minLength": 1}}}},
            },
        }},
    },
}


def stack(path: Path, operator: str = "v25.3.0", kube: str = "1.32", driver: str = "570.148.08",
          extra: dict[str, Any] | None = None) -> Path:
    """A datacenter stack serving vLLM (the catalog image, CUDA 13.0) on H100s."""
    config = {
        "pai:cluster": {"target": "generic", "kubernetesVersion": kube},
        "pai:gpu": {"operator": {"version": operator}, "driver": {"mode": "datacenter", "version": driver},
                    "products": [H100]},
        "pai:tenants": [{"name": "team-a", "quota": {"gpus": {H100: 1}}}],
        "pai:models": [{"name": "chat", "routingName": "openai/gpt-oss-20b", "type": "completion",
                        "format": "safetensors", "source": "oci://harbor.example.com/models/gpt-oss-20b:v1",
                        "gpus": 1, "product": H100, "tenant": "team-a"}],
        **(extra or {}),
    }
    path.write_text(yaml.safe_dump({"config": config}))
    return path


def validate(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["validate", *args])
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.mark.parametrize("name", ["dev", "vks-prod", "vks-cluster", "airgap"])
def test_bundled_stacks_pass_and_match_the_report_schema(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = validate(capsys, "--stack", name, "--format", "json")
    report = json.loads(out)
    jsonschema.validate(report, REPORT_SCHEMA)
    assert code == 0 and report["verdict"] == "pass"
    assert f"config: stacks/Pulumi.{name}.yaml" in {s for c in report["checks"] for s in c["sources"]}


def test_incompatible_stack_fails_with_exit_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = validate(capsys, "--config-file", str(stack(tmp_path / "Pulumi.old.yaml")), "--format", "json")
    report = json.loads(out)
    jsonschema.validate(report, REPORT_SCHEMA)
    assert code == 1 and report["verdict"] == "fail"
    (failed,) = [c for c in report["checks"] if c["status"] == "fail"]
    assert failed["id"] == "cuda-driver"
    assert "CUDA 13.0, which needs driver >= 580.65.06" in failed["message"] and "570.148.08" in failed["message"]


def test_a_misspelled_gpu_product_warns_naming_the_closest(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = stack(tmp_path / "Pulumi.typo.yaml", operator="v26.7.0", kube="1.33", driver="580.95.05")
    path.write_text(path.read_text().replace(H100, "NVIDIA-H100-80GB-HMB3"))
    code, out, _ = validate(capsys, "--config-file", str(path), "--format", "json")
    report = json.loads(out)
    assert code == 0 and report["verdict"] == "warn"
    (warned,) = [c for c in report["checks"] if c["id"] == "gpu-product"]
    assert (warned["status"], warned["subject"]) == ("warn", "NVIDIA-H100-80GB-HMB3")
    assert f"the closest: {H100}:" in warned["message"]


def test_warnings_exit_0(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = stack(tmp_path / "Pulumi.warn.yaml", operator="v26.7.0", kube="1.33", driver="580.95.05")
    code, out, _ = validate(capsys, "--config-file", str(path), "--format", "json")
    report = json.loads(out)
    assert code == 0 and report["verdict"] == "warn"
    assert [c["id"] for c in report["checks"] if c["status"] == "warn"] == ["operator-driver-branch"]


def test_allowed_failures_warn_and_exit_0(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = stack(tmp_path / "Pulumi.old.yaml", extra={"pai:validation": {"allowFailures": ["cuda-driver"]}})
    code, out, _ = validate(capsys, "--config-file", str(path), "--format", "json")
    assert code == 0 and json.loads(out)["verdict"] == "warn"


@pytest.mark.parametrize("args", [
    ["--stack", "nope"],                                # no such stack file
    ["--stack", "vks-prod", "--live"],                  # no cluster to read
    ["--stack", "vks-prod", "--upgrade-to", "nope"],    # no such target
])
def test_usage_errors_exit_2(args: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                             capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "no-kubeconfig"))
    monkeypatch.setenv("HOME", str(tmp_path))
    code, out, err = validate(capsys, *args)
    assert code == 2 and out == "" and err.startswith("error: ")


def test_config_errors_exit_2_naming_the_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = stack(tmp_path / "Pulumi.bad.yaml", driver="latest")
    code, _, err = validate(capsys, "--config-file", str(path))
    assert code == 2 and "pai:gpu.driver.version" in err and "Pulumi.bad.yaml" in err


def test_argument_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["validate", "--format", "xml", "--stack", "dev"])
    assert exc.value.code == 2


def test_table_lists_every_check_and_the_fix(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = validate(capsys, "--config-file", str(stack(tmp_path / "Pulumi.old.yaml")))
    lines = out.splitlines()
    assert code == 1 and lines[0].startswith("verdict: fail (")
    assert any(line.startswith("FAIL  cuda-driver") for line in lines)
    assert any("fix: upgrade the driver to the R580 branch" in line for line in lines)
    assert lines[-1].startswith("facts from: config: ")


def test_junit_loads_in_a_junit_parser(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = validate(capsys, "--config-file", str(stack(tmp_path / "Pulumi.old.yaml")), "--format", "junit")
    _, json_out, _ = validate(capsys, "--config-file", str(tmp_path / "Pulumi.old.yaml"), "--format", "json")
    checks = json.loads(json_out)["checks"]
    xml = JUnitXml.fromstring(out)
    cases = [(suite.name, case) for suite in xml for case in suite]
    assert code == 1 and len(cases) == len(checks)
    results = {(name, case.name): [type(r) for r in case.result] for name, case in cases}
    for check in checks:
        expected = {"fail": [Failure], "skip": [Skipped]}.get(check["status"], [])
        assert results[(check["id"], check["subject"])] == expected
    assert xml.failures == sum(c["status"] == "fail" for c in checks)


def test_junit_escapes_markup_in_messages() -> None:
    xml = JUnitXml.fromstring(to_junit([Check("x", "fail", "a <b> & c", 'needs "quotes" <here>', "fix & go")]))
    (case,) = [case for suite in xml for case in suite]
    assert case.name == "a <b> & c" and case.result[0].message == 'needs "quotes" <here>'


def test_upgrade_to_a_stack_checks_it_against_the_current_one(tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    current = stack(tmp_path / "Pulumi.old.yaml", kube="1.31",
                    extra={"pai:validation": {"allowFailures": ["cuda-driver"]}})
    code, out, _ = validate(capsys, "--config-file", str(current), "--upgrade-to", "vks-prod", "--format", "json")
    report = json.loads(out)
    jsonschema.validate(report, REPORT_SCHEMA)
    by_id: dict[str, list[str]] = {}
    for check in report["checks"]:
        by_id.setdefault(check["id"], []).append(check["status"])
    assert code == 1
    assert by_id["upgrade-operator-kubernetes"] == ["fail"]          # v26.7.0 needs 1.32, the cluster runs 1.31
    assert by_id["upgrade-runtime-cuda"] == ["warn"]                 # new Infinity (CUDA 12.9) on R570: minor compat
    assert by_id["upgrade-driver"] == ["warn"]                       # R570 -> R580: drains
    assert by_id["upgrade-operator-path"] == ["pass"]                # 25.x -> 26.x
    assert by_id["upgrade-crd-versions"] == ["pass", "pass"]
    assert by_id["operator-kubernetes"] == ["pass"]                  # the target on its own is fine


def test_upgrade_to_a_file_with_a_newer_runtime_image(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Now: vLLM v0.9.2 (CUDA 12.8.1) on R570. Next: the catalog's v0.20.0 (CUDA 13.0) with an R580 driver; the
    new image rolls out before the nodes get the new driver."""
    old = {"pai:runtimes": {"vllm": {"image": "docker.io/vllm/vllm-openai:v0.9.2"}}}
    current = stack(tmp_path / "Pulumi.now.yaml", extra=old)
    target = stack(tmp_path / "Pulumi.next.yaml", driver="580.95.05")
    code, out, _ = validate(capsys, "--config-file", str(current), "--format", "json")
    assert code == 0 and json.loads(out)["verdict"] == "pass"
    code, out, _ = validate(capsys, "--config-file", str(current), "--upgrade-to", str(target), "--format", "json")
    (runtime,) = [c for c in json.loads(out)["checks"] if c["id"] == "upgrade-runtime-cuda"]
    assert code == 1 and runtime["status"] == "fail"
    assert "v0.20.0 is built with CUDA 13.0" in runtime["message"] and "570.148.08" in runtime["message"]


def test_plan_of_an_incompatible_stack_stops_at_the_preflight(tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["plan", "--config-file", str(stack(tmp_path / "Pulumi.old.yaml"))])
    out = capsys.readouterr()
    assert code == 1 and out.out == ""
    assert out.err.startswith("error: ") and "interop check cuda-driver failed" in out.err


def test_live_facts_replace_the_planned_nodes(monkeypatch: pytest.MonkeyPatch,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    """The --live hook's facts (here a stand-in for the live sources, which plug in at validation.live) are
    checked instead of the config's planned nodes."""
    observed = Facts(sources={"cluster": "https://127.0.0.1:6443"}, nodes=[NodeFacts(
        origin="cluster", name="gpu-1", products={H100: 8}, driver_version="570.148.08")])
    monkeypatch.setattr(live, "live_facts", lambda args, sup: observed)
    code, out, _ = validate(capsys, "--stack", "vks-prod", "--live", "--format", "json")
    cuda = [c for c in json.loads(out)["checks"] if c["id"] == "cuda-driver"]
    assert code == 1
    assert {c["subject"].rsplit(" on ", 1)[1] for c in cuda} == {"gpu-1"}
    assert "cluster: https://127.0.0.1:6443" in cuda[0]["sources"]


def test_table_says_not_applicable_and_keeps_research_notes_to_json(tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    path = stack(tmp_path / "Pulumi.dc.yaml", operator="v26.7.0", kube="1.33", driver="580.95.05")
    _, table, _ = validate(capsys, "--config-file", str(path))
    _, out, _ = validate(capsys, "--config-file", str(path), "--format", "json")
    report = json.loads(out)
    jsonschema.validate(report, REPORT_SCHEMA)
    for check_id in ("vgpu-host-guest", "vgpu-compute-capability", "vgpu-host-graphics"):
        assert any(line.startswith("N/A ") and check_id in line for line in table.splitlines())
        (check,) = [c for c in report["checks"] if c["id"] == check_id]
        assert (check["status"], check["message"]) == (
            "skip", "not applicable: the driver mode is datacenter, not vgpu")


def test_research_notes_are_sources_in_json_and_not_in_the_table(capsys: pytest.CaptureFixture[str]) -> None:
    """vks-prod's vGPU host/guest pairing rests on a row marked unverified: the table says so, the JSON says why."""
    _, table, _ = validate(capsys, "--stack", "vks-prod")
    _, out, _ = validate(capsys, "--stack", "vks-prod", "--format", "json")
    notes = [s for c in json.loads(out)["checks"] for s in c["sources"] if s.startswith("unverified: ")]
    assert notes and "(rests on matrix data marked unverified)" in table
    assert not [n for n in notes if n.removeprefix("unverified: ") in table]
    assert "matrix: " not in table and "http" not in table


def test_json_names_the_matrix_rows_and_sources_each_check_used(tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    """A V100 stack on v26.7.0's default driver (R595): the ceiling check fails and names the gpus row, its
    ceiling's source, and the facts it read; a newer vLLM tag than the matrix knows is assumed, not passed."""
    v100 = "Tesla-V100-SXM2-32GB"
    gpu = {"operator": {"version": "v26.7.0"}, "driver": {"mode": "datacenter"}, "products": [v100]}
    runtimes = {"vllm": {"image": "docker.io/vllm/vllm-openai:v0.33.0"}}
    models = [{"name": "chat", "routingName": "openai/gpt-oss-20b", "type": "completion", "format": "safetensors",
               "source": "oci://harbor.example.com/models/gpt-oss-20b:v1", "gpus": 1, "product": v100,
               "tenant": "team-a"}]
    path = stack(tmp_path / "Pulumi.v100.yaml", operator="v26.7.0", kube="1.33",
                 extra={"pai:gpu": gpu, "pai:runtimes": runtimes, "pai:models": models,
                        "pai:tenants": [{"name": "team-a", "quota": {"gpus": {v100: 1}}}]})
    code, out, _ = validate(capsys, "--config-file", str(path), "--format", "json")
    report = json.loads(out)
    jsonschema.validate(report, REPORT_SCHEMA)
    assert code == 1
    (ceiling,) = [c for c in report["checks"] if c["id"] == "gpu-driver-ceiling"]
    assert ceiling["status"] == "fail" and "595.91.07 (R595)" in ceiling["message"]
    rows = {r["row"]: r["source"] for r in ceiling["rows"]}
    assert "developer.nvidia.com/cuda-legacy-gpus" in rows["gpus V100"]
    assert "The release 580 series will be the last" in rows["gpus V100 last_branch"]
    assert any(s.startswith("config: ") for s in ceiling["sources"])
    (cuda,) = [c for c in report["checks"] if c["id"] == "cuda-driver"]
    assert cuda["status"] == "warn" and "assumed" in cuda["message"]
    assert any(r["row"].startswith("runtime_images docker.io/vllm/vllm-openai") for r in cuda["rows"])
    assert all(r["source"] for c in report["checks"] for r in c["rows"])
    (floor,) = [c for c in report["checks"] if c["id"] == "engine-compute-capability"]
    assert floor["status"] == "fail" and "vllm 0.33.0 needs compute capability >= 7.5" in floor["message"]
