"""The air-gap bill of materials: operand images at the operator version's tags (held to the reference chart
values, not to the catalog), the driver image tag per node OS, runtimes per engine used, models, digests."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from typing import Any

import pytest
import yaml
from conftest import REPO, minimal, stack_config
from operator_releases import operator_chart

from airgap.bom import (
    Bom,
    BomError,
    ChartSource,
    bill_of_materials,
    catalog_pin,
    collect,
    platform_config,
    stack_bill_of_materials,
    value_references,
)
from airgap.mirror import bom_jobs
from components.catalog import CATALOG
from components.config import PlatformConfig
from components.gpu_operator import OS_SUFFIXED
from components.images import normalized
from paictl.cli import main
from program.offline import Registered, load_stack_file, stack_path

PIN = CATALOG.chart("gpu-operator")
PRIVATE = "harbor.example.com/nvidia/vgpu-guest-driver"
DIGEST = "sha256:" + "ab" * 32


def bom_of(values: dict[str, Any], secrets: dict[str, str] | None = None) -> Bom:
    return stack_bill_of_materials(stack_config(values, secrets))


def stack_bom(stack: str) -> Bom:
    return stack_bill_of_materials(load_stack_file(stack_path(stack), stack))


def gpu(driver: dict[str, Any], version: str = PIN.version) -> dict[str, Any]:
    return {"operator": {"version": version}, "driver": driver, "products": ["NVIDIA-L40S"]}


def reference_operands(version: str, node_os: str = "ubuntu22.04") -> set[str]:
    """Every operand image of the release's chart, as the operator pulls it (gds and gdrcopy with the node OS,
    as the operator appends it); the driver's tag depends on the node OS and is checked apart."""
    return {f"{ref}-{node_os}" if path in OS_SUFFIXED else ref
            for path, ref in operator_chart(version).operands.items() if path != "driver"}


def entry(bom: Bom, ref: str) -> dict[str, Any]:
    (found,) = [e for e in json.loads(bom.to_json())["entries"] if e["ref"] == ref]
    return dict(found)


# --- the bundled stacks ------------------------------------------------------------------------------------


@pytest.mark.parametrize("stack", ["vks-prod", "vks-cluster", "airgap"])
def test_gpu_stacks_list_every_operand_at_the_operator_versions_tags(stack: str) -> None:
    bom = stack_bom(stack)
    assert reference_operands("v26.7.0") <= set(bom.images)
    assert "registry.k8s.io/nfd/node-feature-discovery:v0.19.0" in bom.images
    assert "oci://nvcr.io/nvidia/cloud-native-charts/gpu-operator:v26.7.0" in bom.charts
    assert ChartSource("gpu-operator", "v26.7.0", oci="oci://nvcr.io/nvidia/cloud-native-charts/gpu-operator",
                       repo="https://helm.ngc.nvidia.com/nvidia") in bom.chart_sources
    assert len(bom.chart_sources) == len(bom.charts)


@pytest.mark.parametrize("stack", ["vks-prod", "airgap"])
def test_vgpu_stacks_list_the_private_driver_as_local_and_no_datacenter_driver(stack: str) -> None:
    bom = stack_bom(stack)
    driver = "harbor.pai.prod.example.internal/nvidia/vgpu-guest-driver:580.95.05-ubuntu22.04"
    assert entry(bom, driver)["status"] == "local"
    assert driver not in bom.images  # already in the private registry: never mirrored from upstream
    assert not [e for e in bom.entries if "nvidia/driver" in e.ref]


@pytest.mark.parametrize(("stack", "engines"), [
    ("dev", {"infinity", "llamacpp"}),
    ("vks-prod", {"vllm", "infinity", "llamacpp"}),
    ("airgap", {"vllm", "infinity", "llamacpp"}),
])
def test_runtime_images_are_those_of_the_engines_the_models_use(stack: str, engines: set[str]) -> None:
    bom = stack_bom(stack)
    runtimes = {o.removeprefix("runtime ") for e in bom.entries for o in e.origins if o.startswith("runtime ")}
    assert runtimes == engines
    assert {CATALOG.image(e).ref for e in engines} <= set(bom.images)


@pytest.mark.parametrize("stack", ["dev", "vks-prod", "vks-cluster", "airgap"])
def test_models_are_the_stacks_oci_sources(stack: str) -> None:
    models = yaml.safe_load(stack_path(stack).read_text())["config"]["pai:models"]
    assert stack_bom(stack).models == sorted(m["source"] for m in models)


def test_dev_has_no_gpu_operator() -> None:
    bom = stack_bom("dev")
    assert not [r for r in [*bom.charts, *bom.images] if "gpu-operator" in r or r.startswith("nvcr.io/")]


@pytest.mark.parametrize("stack", ["dev", "vks-prod", "vks-cluster", "airgap"])
def test_lists_are_sorted_unique_full_references_and_never_latest(stack: str) -> None:
    bom = stack_bom(stack)
    for refs in (bom.images, bom.charts, bom.models, bom.artifacts):
        assert refs == sorted(set(refs))
    for ref in bom.images:
        assert normalized(ref) == ref and ":" in ref.rsplit("/", 1)[-1], ref
    assert not [e.ref for e in bom.entries if e.ref.split("@")[0].endswith(":latest")]


@pytest.mark.parametrize("stack", ["dev", "airgap"])
def test_json_is_byte_identical_run_to_run(stack: str) -> None:
    assert stack_bom(stack).to_json() == stack_bom(stack).to_json()


def test_airgap_bom_is_the_vks_prod_bom() -> None:
    """The mirror changes where references point, never what the stack needs."""
    assert stack_bom("airgap").to_json() == stack_bom("vks-prod").to_json()


def test_a_parsed_config_gives_the_same_bom_as_its_stack_file() -> None:
    raw = yaml.safe_load(stack_path("dev").read_text())["config"]
    config = PlatformConfig.model_validate({k.removeprefix("pai:"): v for k, v in raw.items()
                                            if not (isinstance(v, dict) and "secure" in v)})
    assert bill_of_materials(config).to_json() == stack_bom("dev").to_json()


# --- the driver --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("version", sorted(PIN.versions))
@pytest.mark.parametrize("node_os", ["ubuntu22.04", "ubuntu24.04", "rhel9.4"])
def test_datacenter_driver_tag_is_version_dash_node_os(version: str, node_os: str) -> None:
    bom = bom_of(minimal(gpu=gpu({"mode": "datacenter", "os": node_os}, version)))
    default = operator_chart(version).driver
    assert [i for i in bom.images if "/driver:" in i] == [f"nvcr.io/nvidia/driver:{default}-{node_os}"]
    assert reference_operands(version, node_os) <= set(bom.images)


def test_datacenter_driver_defaults_to_ubuntu_22_04_and_takes_the_configured_version() -> None:
    bom = bom_of(minimal(gpu=gpu({"mode": "datacenter", "version": "580.95.05"})))
    assert "nvcr.io/nvidia/driver:580.95.05-ubuntu22.04" in bom.images


def test_v25_operands_are_at_v25_tags() -> None:
    bom = bom_of(minimal(gpu=gpu({"mode": "preinstalled"}, "v25.3.0")))
    assert reference_operands("v25.3.0") <= set(bom.images)
    assert "nvcr.io/nvidia/k8s/container-toolkit:v1.17.5-ubuntu20.04" in bom.images
    assert "registry.k8s.io/nfd/node-feature-discovery:v0.17.2" in bom.images
    # Not published as an OCI artifact: the classic repository, chart and version.
    assert "https://helm.ngc.nvidia.com/nvidia#gpu-operator:v25.3.0" in bom.charts
    assert not [i for i in bom.images if i.endswith(":v26.7.0")]


def test_vgpu_driver_is_the_private_image_for_the_node_os() -> None:
    driver = {"mode": "vgpu", "version": "580.95.05", "image": PRIVATE, "os": "ubuntu24.04"}
    bom = bom_of(minimal(gpu=gpu(driver)), {"nlsClientToken": "TOKEN"})
    assert entry(bom, f"{PRIVATE}:580.95.05-ubuntu24.04")["status"] == "local"
    assert not [i for i in bom.images if "driver:" in i or i.startswith("harbor.example.com")]


def test_preinstalled_lists_no_driver() -> None:
    bom = bom_of(minimal(gpu=gpu({"mode": "preinstalled"})))
    assert not [e for e in bom.entries if e.origins[0].endswith(": driver")]


# --- digests, models, charts -------------------------------------------------------------------------------


def test_unresolved_references_are_flagged_and_a_digest_resolves_one() -> None:
    pinned = f"docker.io/vllm/vllm-openai:v0.20.0@{DIGEST}"
    values = minimal(gpu=gpu({"mode": "preinstalled"}), runtimes={"vllm": {"image": pinned}},
                     models=[{"name": "chat", "routingName": "a/b", "type": "completion", "format": "safetensors",
                              "source": "oci://harbor.example.com/models/chat:v1", "gpus": 1, "tenant": "team-a"}],
                     tenants=[{"name": "team-a", "quota": {"gpus": {"NVIDIA-L40S": 1}}}])
    bom = bom_of(values)
    assert entry(bom, pinned)["status"] == "resolved"
    assert pinned in bom.images and pinned not in bom.unresolved
    assert "nvcr.io/nvidia/k8s/container-toolkit:v1.20.0" in bom.unresolved
    assert json.loads(bom.to_json())["summary"]["unresolved"] == len(bom.unresolved)


def test_tags_not_read_from_the_pinned_chart_are_flagged_unverified_and_still_mirrored() -> None:
    bom = stack_bom("airgap")
    cfg = platform_config(load_stack_file(stack_path("airgap")))
    expected = set()
    for origin in (o for e in bom.entries if e.kind == "image" for o in e.origins if o.startswith("chart ")
                   and ": values " not in o and not o.endswith(": driver")):
        chart, _, path = origin.removeprefix("chart ").partition(": ")
        name, version = chart.split(" ")
        image = catalog_pin(name, version).images_at(version)[path]
        if image.unverified:
            expected.add(image.ref)
    for engine in {m.resolved_engine for m in cfg.models}:
        key = getattr(cfg.runtimes, engine).image
        if CATALOG.image(key).unverified:
            expected.add(cfg.runtimes.image(engine))
    assert set(bom.unverified) == expected
    assert expected == {"ghcr.io/ggml-org/llama.cpp:server-b8840"}  # every chart image: rendered at its pin
    assert "docker.io/grafana/grafana:13.2.0" in bom.images
    assert set(bom.unverified) <= set(bom.images)  # mirrored all the same, and counted
    assert json.loads(bom.to_json())["summary"]["unverified"] == len(bom.unverified)


def test_s3_and_pvc_models_are_listed_as_not_mirrorable() -> None:
    def model(name: str, source: str) -> dict[str, Any]:
        return {"name": name, "routingName": f"a/{name}", "type": "embedding", "format": "onnx", "source": source,
                "tenant": "team-a"}

    config = PlatformConfig.model_validate(minimal(models=[
        model("s3", "s3://models/e5"), model("pvc", "pvc://weights/e5"),
        model("oci", f"oci://harbor.example.com/models/e5@{DIGEST}")]))
    bom = collect(config, [])
    assert bom.models == [f"oci://harbor.example.com/models/e5@{DIGEST}"]
    assert entry(bom, "s3://models/e5")["status"] == entry(bom, "pvc://weights/e5")["status"] == "not-mirrorable"
    assert entry(bom, bom.models[0])["status"] == "resolved"


def test_an_oci_chart_source_is_its_reference_and_a_chart_outside_the_catalog_is_an_error() -> None:
    pin = catalog_pin("oci://quay.io/jetstack/charts/cert-manager", "v1.21.1")
    assert ChartSource(pin.chart, pin.version, oci=pin.oci).ref == "oci://quay.io/jetstack/charts/cert-manager:v1.21.1"
    assert catalog_pin("gpu-operator", "v25.3.0").version == "v25.3.0"
    with pytest.raises(BomError, match=re.escape("chart nope 1.0, which is not in components/catalog.yaml")):
        catalog_pin("nope", "1.0")


def test_value_references_find_every_way_a_chart_names_an_image() -> None:
    values = {"a": {"registry": "quay.io", "repository": "prometheus/prometheus", "tag": "v3"},
              "b": {"repository": "nvcr.io/nvidia/k8s", "image": "container-toolkit", "version": "v1"},
              "c": {"image": "docker.io/x/y:1"}, "d": [{"image": {"repository": "ghcr.io/z"}}],
              "global": {"registry": "docker.io", "imageRegistry": "quay.io"}}
    assert sorted(value_references(values)) == [
        ("a.repository", "quay.io/prometheus/prometheus"), ("b.repository", "nvcr.io/nvidia/k8s"),
        ("c.image", "docker.io/x/y:1"), ("d[0].image.repository", "ghcr.io/z"), ("global.imageRegistry", "quay.io"),
        ("global.registry", "docker.io")]
    assert normalized("busybox:1.36") == "docker.io/library/busybox:1.36"
    assert normalized("envoyproxy/envoy:v1") == "docker.io/envoyproxy/envoy:v1"
    assert normalized("localhost:5000/x:1") == "localhost:5000/x:1"


# --- the command -------------------------------------------------------------------------------------------


def test_command_prints_the_json_bom(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["airgap", "bom", "--stack", "airgap", "--format", "json"]) == 0
    assert capsys.readouterr().out == stack_bom("airgap").to_json()


def test_command_table_names_every_artifact(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["airgap", "bom", "--config-file", str(stack_path("vks-prod"))]) == 0
    out = capsys.readouterr().out
    bom = stack_bom("vks-prod")
    assert all(e.ref in out for e in bom.entries)
    summary = bom.summary()
    assert out.splitlines()[-1] == ", ".join(f"{n} {k}" for k, n in summary.items())
    assert (summary["models"], summary["local"], summary["unresolved"]) == (3, 1, len(bom.unresolved))


def test_command_config_errors_exit_2_naming_the_key(tmp_path: Any, capsys: pytest.CaptureFixture[str]) -> None:
    broken = tmp_path / "Pulumi.broken.yaml"
    document = yaml.safe_load(stack_path("vks-prod").read_text())
    document["config"]["pai:gpu"]["driver"]["os"] = "photon5"
    broken.write_text(yaml.safe_dump(document))
    assert main(["airgap", "bom", "--config-file", str(broken)]) == 2
    err = capsys.readouterr().err
    assert "pai:gpu.driver.os: 'photon5' is not one of ubuntu20.04, ubuntu22.04, ubuntu24.04" in err
    assert main(["airgap", "bom", "--stack", "nope"]) == 2


def test_console_script_exits_0_with_nothing_on_stderr() -> None:
    """Two offline runs in one process (parse, plan) leave no event loop behind to be finalized noisily at exit."""
    done = subprocess.run([sys.executable, "-m", "paictl", "airgap", "bom", "--stack", "airgap", "--format", "json"],
                          cwd=REPO, capture_output=True, text=True, check=False)
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout == stack_bom("airgap").to_json()


def test_one_entry_per_artifact_keeps_the_digest_and_every_origin() -> None:
    """The same image named by tag in one object and by digest in the config is one entry, by digest; a model two
    endpoints serve is one entry with both."""
    pinned = f"docker.io/michaelf34/infinity:0.0.77@{DIGEST}"
    embed = {"name": "e", "routingName": "a/e", "type": "embedding", "format": "onnx",
             "source": "oci://harbor.example.com/models/e:v1", "tenant": "team-a"}
    config = PlatformConfig.model_validate(minimal(runtimes={"infinity": {"image": pinned}},
                                                   models=[embed, {**embed, "name": "f", "routingName": "a/f"}]))
    job = Registered(type="kubernetes:batch/v1:Job", name="warm", parent=None, custom=True, inputs={
        "kind": "Job", "metadata": {"name": "warm"},
        "spec": {"template": {"spec": {"containers": [{"name": "w", "image": "michaelf34/infinity:0.0.77"}]}}}})
    bom = collect(config, [job])
    assert bom.images == [pinned] and bom.unresolved == ["oci://harbor.example.com/models/e:v1"]
    assert entry(bom, pinned) == {"kind": "image", "ref": pinned, "status": "resolved",
                                  "origins": ["Job/warm", "runtime infinity"]}
    assert [e.origins for e in bom.entries if e.kind == "model"] == [("model e", "model f")]


@pytest.mark.parametrize("stack", ["vks-prod", "airgap"])
def test_trivys_databases_are_oci_artifacts_to_mirror_where_harbor_runs(stack: str) -> None:
    bom = stack_bom(stack)
    assert bom.artifacts == ["ghcr.io/aquasecurity/trivy-db:2", "ghcr.io/aquasecurity/trivy-java-db:1"]
    jobs = bom_jobs(bom)
    for ref in bom.artifacts:
        assert entry(bom, ref)["kind"] == "artifact" and ref not in bom.images
        # mirrored to the path air-gap mode points Trivy at (tests/test_harbor.py); Trivy adds the schema tag
        assert jobs[ref].path == ref.split("/", 1)[1].split(":")[0]
    assert "artifacts" in json.loads(bom.to_json())


def test_no_harbor_no_trivy_databases() -> None:
    assert bom_of(minimal()).artifacts == []
