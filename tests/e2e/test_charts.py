"""The stand-in charts as Helm itself reads them from the local registry over TLS: the pinned name and version,
and the real chart's CRDs (tests/e2e/charts.py says what they prove and what not)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from components.catalog import CATALOG
from e2e.charts import CHART_CRDS
from e2e.cluster import TOOLS, require_tools


@pytest.mark.parametrize("key", ["kueue", "kserve-crd", "envoy-gateway"])
def test_helm_pulls_a_stand_in_with_the_real_charts_crds(chart_registry: tuple[str, Path], key: str) -> None:
    require_tools("helm")
    host, _ = chart_registry
    pin = CATALOG.chart(key)
    ref = f"oci://{host}/mirror/charts/{pin.chart}"
    helm = [str(TOOLS / "helm"), "show"]
    chart = yaml.safe_load(subprocess.run([*helm, "chart", ref, "--version", pin.version],
                                          capture_output=True, text=True, check=True).stdout)
    assert (chart["name"], chart["version"]) == (pin.chart, pin.version)
    crds = [doc for doc in yaml.safe_load_all(subprocess.run(
        [*helm, "crds", ref, "--version", pin.version], capture_output=True, text=True, check=True).stdout) if doc]
    assert crds and all(doc["kind"] == "CustomResourceDefinition" for doc in crds)
    assert len(crds) == sum(len(yaml.safe_load(p.read_text())["crds"]) for p in
                            (Path(__file__).parent / "crds" / f"{s}.json" for s in CHART_CRDS[pin.chart]))
