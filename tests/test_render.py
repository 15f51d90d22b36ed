"""`paictl airgap bom --render`: the airgap stack's charts fetched by helm through pyhelm3 (from OCI over TLS and
from a classic index, both local), rendered with the stack's values, and every image the render names compared
with the catalog. The charts are stand-ins the tests write, named and versioned as the catalog pins them."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from charts import CLUSTER_POLICY, ChartServer, helm, helm_env, naming, self_signed, write_chart
from registries import RegistryProcess

from airgap.bom import ChartSource, catalog_pin, platform_config, upstream_plan
from airgap.render import images_in, releases
from components.gpu_operator import OS_SUFFIXED
from paictl.cli import _airgap_jobs, main, parser
from program.offline import load_stack_file, stack_path
from validation.sources.helm import every_helm_run

NODE_OS = "ubuntu22.04"  # the airgap stack's pai:gpu.driver.os (the default)
DRIVER = f"harbor.pai.prod.example.internal/nvidia/vgpu-guest-driver:580.95.05-{NODE_OS}"  # the stack's, + node OS


@dataclass
class Served:
    root: Path
    env: dict[str, str]
    sources: list[str]  # --chart-source arguments
    classic: ChartServer
    images: dict[str, set[str]]  # chart -> every image its stand-in renders (upstream, normalized)


def catalog_images(chart: str, version: str) -> list[str]:
    """The chart's catalog images as pulled on the airgap stack's nodes (gds, gdrcopy: with the node OS)."""
    return sorted({f"{image.ref}-{NODE_OS}" if chart == "gpu-operator" and path in OS_SUFFIXED else image.ref
                   for path, image in catalog_pin(chart, version).images_at(version).items()})


def publish(served_root: Path, registry: RegistryProcess, classic_root: Path, source: ChartSource, chart: Path,
            env: dict[str, str]) -> None:
    """Package a chart and put it where `source` says, under the local registry or classic index."""
    package = helm("package", str(chart), "--destination", str(served_root / "packages"), env=env).split()[-1]
    if source.oci:
        upstream = source.oci.removeprefix("oci://").rsplit("/", 1)[0]
        helm("push", package, f"oci://{registry.host}/{upstream}", env=env)
    else:
        folder = classic_root / (source.repo or "").split("://", 1)[1]
        folder.mkdir(parents=True, exist_ok=True)
        Path(package).rename(folder / Path(package).name)
        helm("repo", "index", str(folder), env=env)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    root = tmp_path_factory.mktemp("render")
    cert, key = self_signed(root / "tls")
    registry = RegistryProcess(root / "registry", tls={"certificate": str(cert), "key": str(key)}).start()
    classic = ChartServer(root / "classic")
    env = helm_env(root / "helm", cert)
    config = platform_config(load_stack_file(stack_path("airgap"), "airgap"))
    images: dict[str, set[str]] = {}
    sources: set[str] = set()
    try:
        for release in releases(upstream_plan(config)):
            source = release.source
            listed = catalog_images(source.chart, source.version)
            templates = {"images.yaml": naming(listed)}
            values: dict[str, Any] = {}
            rendered = set(listed)
            if source.chart == "gpu-operator":
                templates["clusterpolicy.yaml"] = CLUSTER_POLICY
                toolkit = catalog_pin(source.chart, source.version).images_at(source.version)["toolkit"]
                repository, image = toolkit.repository.rsplit("/", 1)
                values = {"toolkit": {"repository": repository, "image": image, "version": toolkit.tag},
                          "gds": {"enabled": False, "repository": "nvcr.io/nvidia/cloud-native",
                                  "image": "nvidia-fs", "version": "0.0.0-never-pulled"}}
                rendered.add(DRIVER)
            images[source.chart] = rendered
            publish(root, registry, root / "classic", source,
                    write_chart(root / "src", source.chart, source.version, templates, values), env)
            if source.oci:
                host = source.oci.removeprefix("oci://").split("/", 1)[0]
                sources.add(f"oci://{host}/=oci://{registry.host}/{host}/")
            else:
                upstream = source.repo or ""
                sources.add(f"{upstream}={classic.url}/{upstream.split('://', 1)[1]}")
        yield Served(root, env, [a for s in sorted(sources) for a in ("--chart-source", s)], classic, images)
    finally:
        classic.stop()
        registry.stop()


@pytest.fixture
def helm_home(served: Served, monkeypatch: pytest.MonkeyPatch) -> Served:
    """helm, run by pyhelm3 from paictl, trusts the test registry and keeps its caches under the test's folder."""
    for name in ("SSL_CERT_FILE", "HELM_CACHE_HOME", "HELM_CONFIG_HOME", "HELM_DATA_HOME"):
        monkeypatch.setenv(name, served.env[name])
    return served


def bom_render(served: Served, capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[int, dict[str, Any], str]:
    code = main(["airgap", "bom", "--stack", "airgap", "--render", "--format", "json", *served.sources, *extra])
    out, err = capsys.readouterr()
    return code, json.loads(out) if out else {}, err


def test_tools_script_built_a_helm_that_answers() -> None:
    from validation.sources.helm import TOOLS_HELM

    assert helm("version", "--template", "{{ .Version }}", env={}) == "v4.3.2", TOOLS_HELM


def test_render_lists_every_image_the_charts_name_with_where(helm_home: Served,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    code, bom, err = bom_render(helm_home, capsys)
    assert code == 0, err
    origins = {e["ref"]: e["origins"] for e in bom["entries"] if e["kind"] == "image"}
    for chart, images in helm_home.images.items():
        for image in images:
            assert any(o.startswith(f"chart {chart} ") for o in origins.get(image, [])), (chart, image)
    everywhere = " ".join(o for found in origins.values() for o in found)
    for way in ("(hook)", ".initContainers[", ".args[", ".env[0] HELPER", "data.config.json", "spec.toolkit"):
        assert way in everywhere, way
    driver = next(e for e in bom["entries"] if e["ref"] == DRIVER)
    assert driver["status"] == "local" and DRIVER not in bom["images"]
    assert not any("nvidia-fs:0.0.0-never-pulled" in ref for ref in origins)  # a disabled operand pulls nothing


@dataclass
class Planted:
    source: str  # the --chart-source serving the planted harbor chart
    planted: str  # an image outside the catalog
    changed: str  # a catalog image at another tag
    core: str  # that image at the catalog's tag


@pytest.fixture
def planted(helm_home: Served) -> Planted:
    """A harbor 1.19.1 stand-in naming an image outside the catalog and Harbor's core at another tag."""
    listed = catalog_images("harbor", "1.19.1")
    core = next(i for i in listed if "/harbor-core:" in i)
    changed, image = core.rsplit(":", 1)[0] + ":v9.9.9", "docker.io/example/planted:v1"
    folder = helm_home.root / "classic" / "planted"
    chart = write_chart(helm_home.root / "planted-src", "harbor", "1.19.1",
                        {"images.yaml": naming([i for i in listed if i != core] + [changed, image])})
    folder.mkdir(parents=True, exist_ok=True)
    helm("package", str(chart), "--destination", str(folder), env=helm_home.env)
    helm("repo", "index", str(folder), env=helm_home.env)
    return Planted(f"https://helm.goharbor.io={helm_home.classic.url}/planted", image, changed, core)


def test_a_planted_image_and_a_changed_tag_exit_1_naming_both(helm_home: Served, planted: Planted,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = bom_render(helm_home, capsys, "--chart-source", planted.source)
    assert code == 1
    assert f"harbor 1.19.1 renders {planted.planted} (" in err and "which is not in the catalog" in err
    assert f"harbor 1.19.1 renders {planted.changed} (" in err and f"the catalog has {planted.core}" in err


@pytest.mark.parametrize("command", [["mirror", "--to", "127.0.0.1:1"], ["export", "--out", "bundle.tar"]])
def test_mirror_and_export_with_render_copy_what_the_charts_render(helm_home: Served, planted: Planted,
                                                                   command: list[str],
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    def sources(*words: str) -> set[str]:
        args = parser("airgap").parse_args(["airgap", command[0], "--stack", "airgap", *command[1:],
                                            *helm_home.sources, "--chart-source", planted.source, *words])
        return {str(job.source) for job in _airgap_jobs(args)}

    rendered, catalog = sources("--render"), sources()
    assert {planted.planted, planted.changed} <= rendered - catalog
    assert planted.core in catalog - rendered
    assert {"ghcr.io/aquasecurity/trivy-db:2", "ghcr.io/aquasecurity/trivy-java-db:1"} <= rendered & catalog
    assert f"warning: harbor 1.19.1 renders {planted.planted}" in capsys.readouterr().err


def test_a_chart_helm_cannot_fetch_exits_1_naming_it(helm_home: Served, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = bom_render(helm_home, capsys, "--chart-source",
                              f"https://helm.goharbor.io={helm_home.classic.url}/nowhere")
    assert code == 1
    assert err.startswith("error: chart harbor 1.19.1 from ") and "Traceback" not in err


def test_render_with_an_images_list_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    images = tmp_path / "images.txt"
    images.write_text("docker.io/library/busybox:1.36\n")
    assert main(["airgap", "mirror", "--images", str(images), "--render", "--to", "127.0.0.1:1"]) == 2
    assert "--render renders a stack's charts" in capsys.readouterr().err


def obj(kind: str, spec: dict[str, Any], **meta: Any) -> dict[str, Any]:
    return {"kind": kind, "metadata": {"name": "x", **meta}, "spec": spec}


def test_operands_of_a_cluster_policy_get_the_node_os_where_the_operator_appends_it() -> None:
    policy = obj("ClusterPolicy", {
        "driver": {"repository": "nvcr.io/nvidia", "image": "driver", "version": "580.95.05"},
        "gdrcopy": {"repository": "nvcr.io/nvidia/cloud-native", "image": "gdrdrv", "version": "v2.6"},
        "toolkit": {"repository": "nvcr.io/nvidia/k8s", "image": "container-toolkit", "version": "v1.20.0"},
        "dcgm": {"enabled": False, "repository": "nvcr.io/nvidia/cloud-native", "image": "dcgm", "version": "4"},
        "devicePlugin": {"repository": "nvcr.io/nvidia", "image": "k8s-device-plugin", "version": "sha256:" + "a" * 64},
    })
    assert sorted(ref for ref, _ in images_in(policy, "ubuntu22.04")) == [
        "nvcr.io/nvidia/cloud-native/gdrdrv:v2.6-ubuntu22.04", "nvcr.io/nvidia/driver:580.95.05-ubuntu22.04",
        "nvcr.io/nvidia/k8s-device-plugin@sha256:" + "a" * 64, "nvcr.io/nvidia/k8s/container-toolkit:v1.20.0"]


def test_only_image_references_are_read_from_args_and_env() -> None:
    pod = obj("Pod", {"containers": [{"name": "c", "image": "busybox:1.38.0", "args": [
        "--metrics-bind-address=:8080", "--config=/etc/x/config.yaml", "--leader-elect=true",
        "--solver-image=quay.io/jetstack/cert-manager-acmesolver:v1.21.1", "quay.io/a/b:1"],
        "env": [{"name": "URL", "value": "http://svc.ns:80/x"}, {"name": "IMG", "value": "ghcr.io/o/r:2"},
                {"name": "S", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}]}]})
    assert sorted(ref for ref, _ in images_in(pod)) == [
        "docker.io/library/busybox:1.38.0", "ghcr.io/o/r:2", "quay.io/a/b:1",
        "quay.io/jetstack/cert-manager-acmesolver:v1.21.1"]


def test_images_in_a_configmaps_json_or_yaml_are_read_with_kserves_default_version() -> None:
    config = {"kind": "ConfigMap", "metadata": {"name": "inferenceservice-config"}, "data": {
        "storageInitializer": json.dumps({"image": "kserve/storage-initializer:v0.20.0", "memoryLimit": "1Gi"}),
        "explainers": json.dumps({"art": {"image": "kserve/art-explainer", "defaultImageVersion": "v0.20.0"}}),
        "envoy-gateway.yaml": "provider:\n  kubernetes:\n    shutdownManager:\n      image: docker.io/e/g:v1\n",
        "plain": "not a document: [",
    }}
    assert sorted(images_in(config)) == [
        ("docker.io/e/g:v1", "ConfigMap/inferenceservice-config data.envoy-gateway.yaml.provider.kubernetes"
                             ".shutdownManager.image"),
        ("docker.io/kserve/art-explainer:v0.20.0", "ConfigMap/inferenceservice-config data.explainers.art.image"),
        ("docker.io/kserve/storage-initializer:v0.20.0",
         "ConfigMap/inferenceservice-config data.storageInitializer.image")]


def test_a_failed_helm_run_lets_the_others_finish_before_raising() -> None:
    finished: list[str] = []

    async def fails() -> str:
        raise RuntimeError("helm failed")

    async def later() -> str:
        for _ in range(20):  # loop turns: plain gather would have raised and cancelled this by then
            await asyncio.sleep(0)
        finished.append("later")
        return "later"

    with pytest.raises(RuntimeError, match="helm failed"):
        asyncio.run(every_helm_run([fails(), later()]))
    assert finished == ["later"]  # not cancelled: pyhelm3 can hang for ever on a cancelled helm
