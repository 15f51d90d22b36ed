"""The catalog pins every chart and image once, never `latest`, with reference data for each pinned chart."""

from __future__ import annotations

import re
import runpy
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO
from operator_releases import DERIVED
from schemas import REFERENCE, chart_defaults

from components.catalog import CATALOG, CATALOG_FILE, load_catalog

EXPECTED = {"gpu-operator": "v26.7.0", "kserve-crd": "v0.20.0", "kserve-resources": "v0.20.0", "kueue": "0.19.2",
            "harbor": "1.19.1", "kube-prometheus-stack": "88.5.3", "mlflow": "1.11.5", "cert-manager": "v1.21.1",
            "envoy-gateway": "v1.9.0", "ai-gateway": "v1.1.0", "ai-gateway-crds": "v1.1.0"}


def test_catalog_pins_the_reference_versions() -> None:
    assert {k: CATALOG.chart(k).version for k in EXPECTED} == EXPECTED


@pytest.mark.parametrize("key", sorted(CATALOG.charts))
def test_every_pinned_chart_has_reference_values(key: str) -> None:
    pin = CATALOG.chart(key)
    for version in pin.versions or [pin.version]:
        # GPU Operator releases without a reference chart have their chart's facts read at the tag instead.
        assert version in DERIVED or isinstance(chart_defaults(pin.chart, version), dict)


def test_runtime_images_record_their_cuda_build() -> None:
    assert CATALOG.image("vllm").cuda == "13.0"
    assert CATALOG.image("llamacpp").cuda is None and CATALOG.image("infinity-cpu").cuda is None
    assert all(re.fullmatch(r"\d+\.\d+", i.cuda) for i in CATALOG.images.values() if i.cuda)


def test_a_latest_tag_is_refused(tmp_path: Path) -> None:
    broken = tmp_path / "catalog.yaml"
    broken.write_text(CATALOG_FILE.read_text().replace("tag: v0.20.0", "tag: latest"))
    with pytest.raises(ValueError, match="the tag 'latest' is not a pin"):
        load_catalog(broken)


def test_no_latest_tag_anywhere_in_the_project() -> None:
    tracked = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True).stdout.split()
    sources = [REPO / f for f in tracked if f.endswith((".py", ".yaml", ".yml")) and not f.startswith("tests/")]
    offenders = [str(p) for p in sources if re.search(r":latest\b|tag:\s*latest\b", p.read_text())]
    assert offenders == []


SHARED_REFERENCE = REPO.parent / "shared" / "reference"


@pytest.mark.skipif(not (SHARED_REFERENCE / "SOURCES.tsv").is_file(), reason="no ../shared/reference beside the clone")
def test_committed_reference_facts_are_a_fresh_derivation() -> None:
    """tests/reference is what scripts/derive-reference.py derives from ../shared/reference now."""
    run = subprocess.run([sys.executable, str(REPO / "scripts" / "derive-reference.py"), "--check"],
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stderr


def test_the_reference_check_names_a_stale_or_extra_file(tmp_path: Path) -> None:
    """The check the test above runs catches an edited, a missing and an extra file."""
    derive = runpy.run_path(str(REPO / "scripts" / "derive-reference.py"))
    files = {"a.json": "{}\n", "crds/b.json": "[]\n", "c.json": "1\n"}
    (tmp_path / "crds").mkdir()
    (tmp_path / "a.json").write_text("{}\n")
    (tmp_path / "crds" / "b.json").write_text("[1]\n")
    (tmp_path / "extra.json").write_text("{}\n")
    assert derive["stale"](files, tmp_path) == ["c.json", "crds/b.json", "extra.json"]


def test_reference_facts_are_committed_for_every_pinned_chart() -> None:
    assert (REFERENCE / "interop.json").is_file() and list((REFERENCE / "crds").glob("*.json"))
    assert list((REFERENCE / "crds-older").glob("*.json")) and list((REFERENCE / "vks").glob("*.json"))
