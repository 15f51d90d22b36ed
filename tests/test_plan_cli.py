"""`paictl plan`: formats, files, byte-identical output, secrets masked everywhere, exit codes."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml
from conftest import REPO, Program, minimal

from paictl.cli import main
from program.plan import OWNER_FILE

SECRET_STACK = """
config:
  pai:cluster:
    target: vks
    kubernetesVersion: "1.33"
  pai:kubeconfig:
    secure: v1:AAAAencryptedkubeconfig
  pai:harborAdminPassword:
    secure: v1:AAAAencryptedpassword
  pai:tenants:
    - name: team-a
"""


def paictl(*args: str, seed: str = "0") -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONHASHSEED": seed}
    return subprocess.run([sys.executable, "-m", "paictl", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, check=False)


def test_json_plan_is_byte_identical_across_runs() -> None:
    first = paictl("plan", "--stack", "vks-prod", "--format", "json", seed="1")
    second = paictl("plan", "--stack", "vks-prod", "--format", "json", seed="2")
    assert first.returncode == 0, first.stderr
    assert first.stdout == second.stdout
    plan = json.loads(first.stdout)
    assert plan["stack"] == "vks-prod"
    assert {"type", "name", "parent", "dependencies", "inputs", "read"} == set(plan["resources"][0])


def test_table_shows_the_component_tree_with_counts(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", "--stack", "dev"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("stack dev: ")
    assert "pai:platform:Platform  platform" in lines
    tenancy = next(line for line in lines if "pai:tenancy:Tenancy" in line)
    assert tenancy.startswith("  ")
    assert "NetworkPolicy x6" in tenancy and "Namespace x1" in tenancy


def test_out_holds_exactly_the_new_plan(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A second plan into the folder of an earlier one removes the files that plan wrote and this one does not have
    (vks-prod's GPU Operator, dev has none), and prunes the folders left empty."""
    out = tmp_path / "out"
    assert main(["plan", "--stack", "vks-prod", "--out", str(out)]) == 0
    assert (out / "gpu-operator").is_dir()
    assert main(["plan", "--stack", "dev", "--out", str(out)]) == 0
    plan_files = {p.relative_to(out) for p in out.rglob("*") if p.is_file()}
    owned = json.loads((out / OWNER_FILE).read_text())["files"]
    assert plan_files == {Path(OWNER_FILE), *map(Path, owned)}
    assert f"wrote {len(owned)} files" in capsys.readouterr().err
    assert not (out / "gpu-operator").exists()


@pytest.mark.parametrize("marker", [None, '{"files": ["../outside.yaml"]}', "not json"])
def test_out_refuses_a_folder_no_plan_owns_and_writes_nothing(tmp_path: Path, marker: str | None) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (tmp_path / "outside.yaml").write_text("mine")
    (out / "notes.txt").write_text("mine")
    if marker is not None:
        (out / OWNER_FILE).write_text(marker)
    result = paictl("plan", "--stack", "dev", "--out", str(out))
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.startswith(f"error: --out {out}: ") and len(result.stderr.splitlines()) == 1
    assert sorted(p.name for p in out.iterdir()) == sorted(["notes.txt", *([OWNER_FILE] if marker else [])])
    assert (tmp_path / "outside.yaml").read_text() == "mine"


def test_parts_in_install_order_with_charts_images_and_edges(capsys: pytest.CaptureFixture[str]) -> None:
    """The JSON lists the parts in install order, each after what it waits for, with its releases' chart versions
    and the images it pulls; the table shows the same."""
    assert main(["plan", "--stack", "vks-prod", "--format", "json"]) == 0
    plan = json.loads(capsys.readouterr().out)
    parts = {p["name"]: p for p in plan["parts"]}
    order = [p["name"] for p in plan["parts"]]
    for part in plan["parts"]:
        assert all(order.index(before) < order.index(part["name"]) for before in part["after"]), part["name"]
    assert "platform-cert-manager" in parts["platform-kserve"]["after"]
    assert {"release": "platform-cert-manager-release", "chart": "oci://quay.io/jetstack/charts/cert-manager",
            "version": "v1.21.1"} in parts["platform-cert-manager"]["charts"]
    assert "quay.io/jetstack/cert-manager-controller:v1.21.1" in parts["platform-cert-manager"]["images"]
    assert "nvcr.io/nvidia/gpu-operator:v26.7.0" in parts["platform-gpu-operator"]["images"]
    assert "docker.io/vllm/vllm-openai:v0.20.0" in parts["platform-serving-runtimes"]["images"]
    # The operator's values set only a version for some images (the chart keeps the repository): named in full.
    assert "nvcr.io/nvidia/k8s/container-toolkit:v1.20.0" in parts["platform-gpu-operator"]["images"]
    unnamed = [i for p in plan["parts"] for i in p["images"] if "." not in i.split("/", 1)[0] or "/" not in i]
    assert unnamed == []
    release = next(r for r in plan["resources"] if r["name"] == "platform-kserve-release")
    assert "kubernetes:helm.sh/v3:Release::platform-cert-manager-release" in release["dependencies"]
    assert main(["plan", "--stack", "vks-prod"]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[1] == "install order: " + ", ".join(order)
    kserve = table.index(next(line for line in table if "pai:kserve:Kserve" in line))
    assert table[kserve + 1].strip().startswith("after: platform-cert-manager")
    assert "    chart oci://ghcr.io/kserve/charts/kserve-resources v0.20.0  (release platform-kserve-release)" in table
    assert "    image docker.io/kserve/kserve-controller:v0.20.0" in table


def test_air_gap_parts_pull_their_images_from_the_mirror(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", "--stack", "airgap", "--format", "json"]) == 0
    parts = {p["name"]: p for p in json.loads(capsys.readouterr().out)["parts"]}
    operator = parts["platform-gpu-operator"]["images"]
    assert "harbor.pai.prod.example.internal/mirror/nvidia/gpu-operator:v26.7.0" in operator
    assert all(i.startswith("harbor.pai.prod.example.internal/mirror/") for i in operator)


def test_version_is_the_distributions() -> None:
    version = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    result = paictl("--version")
    assert result.returncode == 0 and result.stdout.strip() == f"paictl {version}"


def test_out_writes_one_file_per_object(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", "--stack", "dev", "--format", "json", "--out", str(tmp_path)]) == 0
    plan = json.loads(capsys.readouterr().out)
    kube_objects = [r for r in plan["resources"] if r["type"].startswith("kubernetes:") and "kind" in r["inputs"]]
    helm_releases = [r for r in plan["resources"] if r["type"] == "kubernetes:helm.sh/v3:Release"]
    files = sorted(tmp_path.rglob("*.yaml"))
    assert len(files) == len(kube_objects) + len(helm_releases)
    assert len(list((tmp_path / "helm").glob("*.values.yaml"))) == len(helm_releases)
    quota = yaml.safe_load((tmp_path / "team-a" / "resourcequota-pai-tenant-quota.yaml").read_text())
    assert quota["kind"] == "ResourceQuota" and quota["metadata"]["namespace"] == "team-a"
    assert (tmp_path / "_cluster" / "namespace-team-a.yaml").is_file()


def test_secrets_never_appear_in_plan_files_or_logs(tmp_path: Path) -> None:
    config_file = tmp_path / "Pulumi.secret.yaml"
    config_file.write_text(SECRET_STACK)
    out = tmp_path / "out"
    outputs = [paictl("plan", "--config-file", str(config_file), "--format", fmt, "--out", str(out))
               for fmt in ("json", "table")]
    assert all(o.returncode == 0 for o in outputs), outputs[0].stderr
    texts = [o.stdout + o.stderr for o in outputs] + [p.read_text() for p in out.rglob("*") if p.is_file()]
    for text in texts:
        assert "placeholder" not in text and "AAAA" not in text
    provider = next(r for r in json.loads(outputs[0].stdout)["resources"] if r["type"] == "pulumi:providers:kubernetes")
    assert provider["inputs"]["kubeconfig"] == "[secret]"


def test_real_secret_values_are_masked_in_records_and_logs(run_program: Program,
                                                            caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    records = run_program(minimal(), secrets={"kubeconfig": "apiVersion: v1\nclusters: TOPSECRET-KUBECONFIG"})
    assert "TOPSECRET" not in json.dumps([r.inputs for r in records])
    assert "TOPSECRET" not in caplog.text
    provider = next(r for r in records if r.type == "pulumi:providers:kubernetes")
    assert provider.inputs["kubeconfig"] == "[secret]"


def test_bad_config_file_exits_2_naming_file_and_key(tmp_path: Path) -> None:
    config_file = tmp_path / "Pulumi.bad.yaml"
    config_file.write_text("config:\n  pai:cluster:\n    target: eks\n    kubernetesVersion: '1.33'\n")
    result = paictl("plan", "--config-file", str(config_file))
    assert result.returncode == 2
    assert result.stderr == f"error: {config_file}: pai:cluster.target: 'eks' is not one of vks, generic\n"
    assert result.stdout == ""


def test_unknown_stack_exits_2_listing_stacks() -> None:
    result = paictl("plan", "--stack", "nope")
    assert result.returncode == 2
    assert "no such stack file (stacks: airgap, dev, vks-cluster, vks-prod)" in result.stderr


def test_stack_file_that_is_not_yaml_exits_2(tmp_path: Path) -> None:
    config_file = tmp_path / "Pulumi.broken.yaml"
    config_file.write_text("config: [unclosed\n")
    result = paictl("plan", "--config-file", str(config_file))
    assert result.returncode == 2
    assert result.stderr.startswith(f"error: {config_file}: line 2: not valid YAML")


def test_plain_text_secret_in_a_stack_file_exits_2_without_echoing_it(tmp_path: Path) -> None:
    config_file = tmp_path / "Pulumi.plain.yaml"
    config_file.write_text(SECRET_STACK.replace("secure: v1:AAAAencryptedpassword", "").replace(
        "pai:harborAdminPassword:", "pai:harborAdminPassword: hunter2-plain"))
    result = paictl("plan", "--config-file", str(config_file))
    assert result.returncode == 2
    assert "pai:harborAdminPassword: must be a secret" in result.stderr
    assert "hunter2" not in result.stderr + result.stdout


def test_a_large_plan_exits_without_noise_on_stderr() -> None:
    """The offline runner's thread event loops are closed at exit, not left to the garbage collector (which used
    to print an "Invalid file descriptor" traceback in about a third of airgap plans)."""
    for seed in ("1", "2", "3"):
        result = paictl("plan", "--stack", "airgap", "--format", "json", seed=seed)
        assert result.returncode == 0
        assert result.stderr == ""


GALLERY_STACK = """
config:
  pai:cluster:
    target: vks
    kubernetesVersion: "1.33"
    storageClass: vsan-default-storage-policy
    ingress:
      domain: pai.example.com
  pai:harbor: {}
  pai:mlflow: {}
  pai:harborAdminPassword:
    secure: v1:AAAAencryptedharbor
  pai:mlflowDbPassword:
    secure: v1:AAAAencrypteddb
  pai:mlflowAdminPassword:
    secure: v1:AAAAencryptedadmin
  pai:s3AccessKeyId:
    secure: v1:AAAAencryptedkeyid
  pai:s3SecretAccessKey:
    secure: v1:AAAAencryptedsecretkey
  pai:tenants:
    - name: team-a
"""
DISTINCT = {"harborAdminPassword": "Hb-Pw-0xC0FFEE-1", "mlflowDbPassword": "Db-Pw-0xC0FFEE-2",
            "mlflowAdminPassword": "Ml-Pw-0xC0FFEE-3", "s3AccessKeyId": "AKIA0xC0FFEE4",
            "s3SecretAccessKey": "S3-Sk-0xC0FFEE-5"}


def test_gallery_and_mlflow_secrets_never_appear_in_plan_output_or_files(tmp_path: Path) -> None:
    config_file = tmp_path / "Pulumi.gallery.yaml"
    config_file.write_text(GALLERY_STACK)
    out = tmp_path / "out"
    result = paictl("plan", "--config-file", str(config_file), "--format", "json", "--out", str(out))
    assert result.returncode == 0, result.stderr
    texts = [result.stdout + result.stderr] + [p.read_text() for p in out.rglob("*") if p.is_file()]
    assert not [t for t in texts if "placeholder" in t or "AAAA" in t]
    resources = json.loads(result.stdout)["resources"]
    provider = next(r for r in resources if r["type"] == "pulumi:providers:harbor")
    assert provider["inputs"]["password"] == "[secret]"


def test_distinct_gallery_and_mlflow_secrets_are_masked_in_json_and_files(tmp_path: Path) -> None:
    """The plan's JSON and --out files, from a config whose secrets have known, distinctive values."""
    from conftest import stack_config

    from program.plan import plan, to_json, write_files

    values = minimal(cluster={"target": "vks", "kubernetesVersion": "1.33", "ingress": {"domain": "pai.example.com"},
                              "storageClass": "vsan-default-storage-policy"},
                     harbor={}, mlflow={"database": {"host": "pg.example.com"},
                                        "artifacts": {"endpoint": "https://s3.example.com"}})
    records = plan(stack_config(values, DISTINCT))
    files = write_files(records, tmp_path)
    texts = {"json": to_json("gallery", records), **{str(p): p.read_text() for p in files}}
    leaks = {where: [k for k, v in DISTINCT.items() if v in text] for where, text in texts.items()}
    assert not {where: keys for where, keys in leaks.items() if keys}
    secrets = [yaml.safe_load(p.read_text()) for p in files if p.name.startswith("secret-")]
    assert len(secrets) == 4  # harbor-admin, mlflow-db, mlflow-s3, mlflow-admin
    assert all(set(s["stringData"].values()) == {"[secret]"} for s in secrets)
