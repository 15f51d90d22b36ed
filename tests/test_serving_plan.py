"""The serving half in the plans: `paictl plan --stack vks-prod` lists each serving component with its resources,
no secret reaches the plan, and the airgap stack pulls every chart and image of these components from the
mirror."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from conftest import Program, minimal

from components.catalog import CATALOG
from paictl.cli import main
from program.offline import Registered, load_stack_file, stack_path

SERVING = ("pai:certmanager:CertManager", "pai:kserve:Kserve", "pai:serving:ServingRuntimes",
           "pai:serving:ModelEndpoints")
Runner = Callable[[str], list[Registered]]


def under(records: list[Registered], component_types: tuple[str, ...]) -> list[Registered]:
    """The resources parented, at any depth, by a component of one of these types."""
    parents = {r.key: r.parent for r in records}
    roots = {r.key for r in records if r.type in component_types}

    def inside(key: str | None) -> bool:
        while key is not None:
            if key in roots:
                return True
            key = parents.get(key)
        return False

    return [r for r in records if inside(r.parent)]


def image_references(value: Any, key: str = "") -> Iterator[str]:
    """Every image a Kubernetes object or Helm values names: container `image`s, Helm `image`/`repository` keys
    and `...Image` strings."""
    if isinstance(value, dict):
        for k, v in value.items():
            yield from image_references(v, k)
    elif isinstance(value, list):
        for item in value:
            yield from image_references(item, key)
    elif isinstance(value, str) and (key in ("image", "repository") or key.endswith("Image")):
        yield value


def test_plan_table_shows_the_serving_components(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", "--stack", "vks-prod"]) == 0
    lines = capsys.readouterr().out.splitlines()
    rows = {line.split()[0]: line for line in lines if line.startswith("  pai:")}
    assert "Release x1" in rows["pai:certmanager:CertManager"]
    assert "Certificate x1, ClusterIssuer x2" in rows["pai:certmanager:CertManager"]
    assert "Namespace x1, Release x2" in rows["pai:kserve:Kserve"]
    assert "ClusterServingRuntime x4" in rows["pai:serving:ServingRuntimes"]
    assert "InferenceService x3" in rows["pai:serving:ModelEndpoints"]


def test_secrets_never_reach_the_serving_plan(capsys: pytest.CaptureFixture[str], run_program: Program) -> None:
    assert main(["plan", "--stack", "vks-prod", "--format", "json"]) == 0
    assert "offline-placeholder" not in capsys.readouterr().out
    keys = {"s3AccessKeyId": "AKIAEXAMPLEKEYID", "s3SecretAccessKey": "wJalrXUtnFEMI-secret"}
    model = {"name": "m", "routingName": "acme/m", "type": "completion", "format": "gguf",
             "source": "s3://models/m", "tenant": "team-a"}
    records = run_program(minimal(s3={"endpoint": "minio.example.com"}, models=[model]), keys)
    text = json.dumps([r.inputs for r in records])
    assert "[secret]" in text and not any(v in text for v in keys.values())


def test_air_gap_pulls_every_serving_chart_and_image_from_the_mirror(run_stack: Runner) -> None:
    registry = json.loads(load_stack_file(stack_path("airgap")).values["pai:registry"])
    mirror, bootstrap = registry["mirror"], registry["bootstrap"]  # cert-manager serves Harbor: the bootstrap one
    records = under(run_stack("airgap"), SERVING)
    charts = [r.inputs["chart"] for r in records if r.type == "kubernetes:helm.sh/v3:Release"]
    assert sorted(charts) == sorted([f"oci://{bootstrap}/charts/{CATALOG.chart('cert-manager').chart}"] + [
        f"oci://{mirror}/charts/{CATALOG.chart(k).chart}" for k in ("kserve-crd", "kserve-resources")])
    images = [i for r in records for i in image_references(r.inputs)]
    assert len(images) >= len(CATALOG.chart("cert-manager").images) + len(CATALOG.chart("kserve-resources").images) + 4
    assert [i for i in images if not i.startswith((f"{mirror}/", f"{bootstrap}/"))] == []
    upstream = re.compile(r"\b(docker\.io|quay\.io|ghcr\.io|registry\.k8s\.io|nvcr\.io)/")
    assert not upstream.search(json.dumps([r.inputs for r in records]))
