"""The catalog pins every chart and image once, never `latest`, with reference data for each pinned chart."""

from __future__ import annotations

import re
import subprocess
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


def test_reference_data_is_present() -> None:
    assert (REFERENCE / "SOURCES.tsv").is_file()
