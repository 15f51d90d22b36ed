"""The matrix data: loads, every row has a source, and it says what the reference facts (tests/reference) say
(values, the unverified marks, the catalog's default drivers, the reference CRDs' served versions)."""

from __future__ import annotations

from typing import Any

import pytest
from schemas import interop_facts, reference_crds

from components.catalog import CATALOG
from validation.matrix import Row, load_matrix

MATRIX = load_matrix()
FACTS: dict[str, Any] = interop_facts()


def rows() -> list[Row]:
    return [*MATRIX.toolkits, *MATRIX.majors, *MATRIX.driver_branches, *MATRIX.gpus, *MATRIX.engines,
            *(v for r in MATRIX.vgpu_releases for v in r.versions), *MATRIX.operator_releases]


def test_every_row_names_a_source() -> None:
    assert all(row.source.strip() for row in rows())


def test_toolkit_minimums_and_marks_match_the_reference() -> None:
    reference = {}
    for entry in FACTS["toolkit_driver_table"]:
        version, _, update = entry["cuda"].partition(" ")
        number = 0 if update == "GA" else int(update.removeprefix("Update "))
        reference[(version, number)] = (str(entry["linux_min_driver"]), bool(entry.get("unverified")))
    ours = {(t.cuda, t.update): (t.min_driver, t.unverified) for t in MATRIX.toolkits}
    assert ours == reference


def test_vgpu_versions_match_the_reference_and_only_a_bulletin_clears_a_mark_or_fills_a_guest() -> None:
    reference = {v["release"]: (v["host_manager"], v.get("linux_guest"), bool(v.get("unverified")))
                 for r in FACTS["vgpu_releases"] for v in r["versions"]}
    ours = {v.release: v for r in MATRIX.vgpu_releases for v in r.versions}
    assert set(ours) == set(reference)
    for release, (host, guest, unverified) in reference.items():
        row = ours[release]
        assert row.host_manager == host and row.linux_guest in (guest, *([row.linux_guest] if guest is None else []))
        if (unverified and not row.unverified) or row.linux_guest != guest:
            assert "NVIDIA/product-security@" in row.source, release
        assert row.unverified <= unverified, release


def test_compute_capabilities_match_the_reference() -> None:
    for entry in FACTS["gpu_compute_capability"]:
        for name in entry["gpu"].replace(" ", "-").split("/"):
            gpu = MATRIX.gpu(f"NVIDIA-{name}")
            assert gpu is not None and gpu.cc == entry["cc"], name


@pytest.mark.parametrize("version", sorted(CATALOG.chart("gpu-operator").versions))
def test_catalog_operator_versions_are_in_the_matrix_with_the_same_default_driver(version: str) -> None:
    release = MATRIX.operator(version)
    assert release is not None
    assert release.default_driver == CATALOG.chart("gpu-operator").versions[version].defaultDriver


def test_crd_versions_of_v26_7_0_are_the_reference_crds() -> None:
    served = {crd["name"]: [v["name"] for v in crd["versions"] if v["served"]]
              for crd in reference_crds("gpu-operator-v26.7.0")}
    release = MATRIX.operator("v26.7.0")
    assert release is not None and release.crds == served and not release.crds_unverified


def test_crd_versions_read_at_the_release_tag_are_not_marked() -> None:
    release = MATRIX.operator("v25.3.0")
    assert release is not None and release.crds is not None and not release.crds_unverified
    assert release.crds_source and "@v25.3.0:" in release.crds_source


@pytest.mark.parametrize(("product", "gpu"), [
    ("NVIDIA-H100-80GB-HBM3", "H100"), ("NVIDIA-A10", "A10"), ("NVIDIA-A100-SXM4-80GB", "A100"),
    ("Tesla-V100-SXM2-32GB", "V100"), ("NVIDIA-GH200-480GB", "GH200"), ("NVIDIA-L40S", "L40S"),
    ("NVIDIA-L40", None), ("NVIDIA-A1000", None),
])
def test_products_match_by_name_not_by_prefix(product: str, gpu: str | None) -> None:
    found = MATRIX.gpu(product)
    assert (found.gpu if found else None) == gpu


@pytest.mark.parametrize("key", [k for k, pin in CATALOG.images.items() if pin.cuda])
def test_catalog_runtime_images_agree_with_the_upstream_rows(key: str) -> None:
    pin = CATALOG.image(key)
    match = MATRIX.runtime_image(pin.ref)
    assert match is None or match.row.cuda.startswith(pin.cuda or ""), (pin.ref, match)
