"""Air-gap mode: every image and chart reference the airgap plan renders is on the mirror (`pai:registry.mirror`),
except the customer-built vGPU guest driver, which is already in the site's private registry, and Harbor and what
serves it (cert-manager, the Gateway), which pull from `pai:registry.bootstrap` since the mirror is on that Harbor.

The walk is generic: every Helm release's chart source, every Helm value that names an image or a registry,
every catalog image of each chart installed (a chart default left in place is a miss), and every `image` in
every object the plan emits. A component added later is covered with no change here."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from conftest import Program, minimal, stack_config

from airgap.bom import (
    catalog_pin,
    is_full_reference,
    stack_bill_of_materials,
    value_references,
)
from components.gpu_operator import split_image
from components.images import normalized
from components.values import mirrored
from program.offline import Registered, load_stack_file, stack_path
from program.plan import HELM_RELEASE, image_references, is_kubernetes_object, value_at

Runner = Callable[[str], list[Registered]]
AIRGAP = load_stack_file(stack_path("airgap"), "airgap")
MIRROR = json.loads(AIRGAP.values["pai:registry"])["mirror"]
BOOTSTRAP = json.loads(AIRGAP.values["pai:registry"])["bootstrap"]
HARBOR_CHAIN = ("platform-cert-manager-", "platform-gateway-", "platform-harbor-")  # their children's names
VGPU_DRIVER = json.loads(AIRGAP.values["pai:gpu"])["driver"]["image"]


def allowed_private(driver_image: str | None) -> set[str]:
    """The vGPU guest driver as the chart values name it (repository, and repository/image): nothing else."""
    return {driver_image, split_image(driver_image)[0]} if driver_image else set()


def on_mirror(ref: str, mirror: str, private: set[str]) -> bool:
    return ref == mirror or ref.startswith(f"{mirror}/") or ref in private


def mirror_of(record: str, mirror: str, bootstrap: str | None) -> str:
    """The registry a record's references must be on: the bootstrap registry for Harbor's chain, if any."""
    return bootstrap if bootstrap and record.startswith(HARBOR_CHAIN) else mirror


def block_reference(values: dict[str, Any], path: str) -> str | None:
    """What the values name at a catalog image path: the string there, or its block's own image reference."""
    block = value_at(values, path)
    if isinstance(block, str):
        return block
    own = [ref for where, ref in value_references(block) if "." not in where and "[" not in where]
    return own[0] if own else None


def rendered_references(records: list[Registered]) -> list[tuple[str, str, str]]:
    """(record, where, reference) of every image or chart reference the plan renders."""
    found: list[tuple[str, str, str]] = []
    for record in records:
        if record.type == HELM_RELEASE:
            inputs = record.inputs
            repo = (inputs.get("repositoryOpts") or {}).get("repo")
            found.append((record.name, f"{record.name}: chart", f"{repo}#{inputs['chart']}" if repo
                          else inputs["chart"]))
            values = inputs.get("values") or {}
            found += [(record.name, f"{record.name}: values {path}", ref) for path, ref in value_references(values)]
        elif is_kubernetes_object(record):
            found += [(record.name, f"{record.inputs['kind']}/{record.name}", normalized(ref))
                      for ref in image_references(record.inputs)]
    return found


def off_mirror(records: list[Registered], mirror: str, private: set[str], bootstrap: str | None = None) -> list[str]:
    """Every reference outside the mirror (the bootstrap registry for Harbor's chain), and every catalog image of
    an installed chart the values leave at the chart's upstream default."""
    problems = []
    for name, where, ref in rendered_references(records):
        expected = mirror_of(name, mirror, bootstrap)
        if (not on_mirror(ref.removeprefix("oci://"), expected, private)
                or (where.endswith(": chart") and not ref.startswith(f"oci://{expected}/charts/"))):
            problems.append(f"{where}: {ref}")
    for record in records:
        if record.type != HELM_RELEASE:
            continue
        pin = catalog_pin(record.inputs["chart"], record.inputs["version"])
        values = record.inputs.get("values") or {}
        for path, image in pin.images_at(pin.version).items():
            if path.startswith("minio.") and not values.get("minio", {}).get("enabled"):
                continue  # MLflow's bundled MinIO, off (air gap: an external S3 store): nothing pulls it
            named = block_reference(values, path)
            if named is None or not on_mirror(named, mirror_of(record.name, mirror, bootstrap), private):
                problems.append(f"{record.name}: values {path} leaves {image.ref} (named: {named})")
    return problems


def test_the_airgap_stack_renders_every_reference_from_the_mirror(run_stack: Runner) -> None:
    records = run_stack("airgap")
    assert [r for r in records if r.type == HELM_RELEASE], "the airgap stack installs no chart"
    assert off_mirror(records, MIRROR, allowed_private(VGPU_DRIVER), BOOTSTRAP) == []
    chain = {name for name, _, _ in rendered_references(records) if name.startswith(HARBOR_CHAIN)}
    assert {n.split("-")[1] for n in chain} == {"cert", "gateway", "harbor"}
    # and the walk is strict: without the bootstrap registry, exactly Harbor's chain is off the mirror
    strict = off_mirror(records, MIRROR, allowed_private(VGPU_DRIVER))
    assert strict and all(p.startswith(HARBOR_CHAIN) or p.split("/", 1)[1].startswith(HARBOR_CHAIN)
                          for p in strict), strict


def test_every_mirrored_reference_is_a_bill_of_materials_entry(run_stack: Runner) -> None:
    """What the airgap plan pulls from the mirror is what the bill of materials mirrors there: each full
    reference is a BOM image moved onto the mirror, each repository a prefix of one."""
    bom = stack_bill_of_materials(AIRGAP)
    assert not [ref for ref in bom.images + bom.charts if MIRROR in ref or BOOTSTRAP in ref]  # upstream ones only
    local = {e.ref for e in bom.entries if e.status == "local"}
    for name, where, ref in rendered_references(run_stack("airgap")):
        registry = mirror_of(name, MIRROR, BOOTSTRAP)
        on_the_mirror = {mirrored(image, registry) for image in bom.images}
        if ref in allowed_private(VGPU_DRIVER) or ref == registry or where.endswith(": chart"):
            continue
        if is_full_reference(ref):
            assert ref in on_the_mirror, f"{where}: {ref}"
        else:
            assert [m for m in on_the_mirror if m.startswith((f"{ref}/", f"{ref}:"))], f"{where}: {ref}"
    assert local == {f"{VGPU_DRIVER}:580.95.05-ubuntu22.04"}


def test_the_charts_come_from_the_mirror_under_the_same_name(run_stack: Runner) -> None:
    bom = stack_bill_of_materials(AIRGAP)
    charts = sorted(r.inputs["chart"].replace(BOOTSTRAP, MIRROR) for r in run_stack("airgap")
                    if r.type == HELM_RELEASE)
    assert charts == sorted(f"oci://{MIRROR}/charts/{source.chart}" for source in bom.chart_sources)


@pytest.mark.parametrize("mode", ["datacenter", "preinstalled"])
def test_other_driver_modes_render_from_the_mirror_too(run_program: Program, mode: str) -> None:
    mirror = "registry.site.example/mirror"
    values = minimal(registry={"mirror": mirror, "pullSecret": "pull"},
                     gpu={"driver": {"mode": mode}, "products": ["NVIDIA-L40S"]})
    assert off_mirror(run_program(values), mirror, set()) == []


def test_the_walk_catches_upstream_references(run_stack: Runner) -> None:
    """The same walk over a plan without a mirror names the chart source, operand repositories left at the chart
    defaults, and an upstream image in any object."""
    records = run_stack("vks-prod")
    pod = Registered(type="kubernetes:batch/v1:Job", name="probe", parent=None, custom=True, inputs={
        "apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "probe"},
        "spec": {"template": {"spec": {"initContainers": [{"name": "a", "image": f"{MIRROR}/x/y:1"}],
                                       "containers": [{"name": "b", "image": "busybox:1.36"}]}}}})
    problems = off_mirror([*records, pod], MIRROR, allowed_private(VGPU_DRIVER))
    assert "platform-gpu-operator-release: chart: https://helm.ngc.nvidia.com/nvidia#gpu-operator" in problems
    assert "Job/probe: docker.io/library/busybox:1.36" in problems
    assert not [p for p in problems if f"{MIRROR}/x/y" in p]
    assert [p for p in problems if "values toolkit leaves nvcr.io/nvidia/k8s/container-toolkit:v1.20.0" in p]
    assert [p for p in problems if "values node-feature-discovery.image leaves" in p]


def test_a_private_registry_other_than_the_driver_is_not_allowed(run_program: Program) -> None:
    """Only the vGPU driver itself may come from outside the mirror, not anything else on that registry."""
    values = minimal(registry={"mirror": MIRROR}, gpu={
        "driver": {"mode": "vgpu", "version": "580.95.05", "image": VGPU_DRIVER}, "products": ["GRID-L40S-48C"]})
    records = run_program(values, {"nlsClientToken": "T"})
    assert off_mirror(records, MIRROR, allowed_private(VGPU_DRIVER)) == []
    other = allowed_private("harbor.pai.prod.example.internal/other/driver")
    assert off_mirror(records, MIRROR, other) == ["platform-gpu-operator-release: values driver.repository: "
                                                  "harbor.pai.prod.example.internal/nvidia"]


def test_stack_config_helper_keeps_the_mirror() -> None:
    """The BOM of a config with a mirror lists upstream references, never mirrored ones."""
    values = minimal(registry={"mirror": MIRROR}, gpu={"driver": {"mode": "preinstalled"}, "products": ["X"]})
    bom = stack_bill_of_materials(stack_config(values))
    assert bom.images and not [i for i in bom.images if i.startswith(MIRROR)]
