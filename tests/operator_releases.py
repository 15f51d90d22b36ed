"""What each GPU Operator release's chart says, for every catalog release: read from its reference chart facts
(tests/reference, derived from ../shared/reference) where there are some, else from the facts read at the release tag
(data/gpu_operator_releases.yaml).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from schemas import chart_defaults, chart_dependencies, has_chart

DERIVED: dict[str, dict[str, Any]] = yaml.safe_load(
    (Path(__file__).with_name("data") / "gpu_operator_releases.yaml").read_text())["releases"]


@dataclass(frozen=True)
class OperatorChart:
    """A release's default driver, licensingConfig keys, bundled NFD version and operand images (values path ->
    repository/image:tag; the driver tagged with its version, the operator appends the node OS)."""

    driver: str
    licensing: frozenset[str]
    nfd: str
    operands: dict[str, str]


def has_reference(version: str) -> bool:
    return has_chart("gpu-operator", version)


def operator_chart(version: str) -> OperatorChart:
    if not has_reference(version):
        facts = DERIVED[version]
        return OperatorChart(facts["driver"], frozenset(facts["licensing"]), facts["nfd"], dict(facts["operands"]))
    defaults = chart_defaults("gpu-operator", version)
    dependencies = chart_dependencies("gpu-operator", version)
    (nfd,) = [d["version"] for d in dependencies if d["name"] == "node-feature-discovery"]
    return OperatorChart(defaults["driver"]["version"], frozenset(defaults["driver"]["licensingConfig"]),
                         "v" + nfd.removeprefix("v"), operands(defaults, version))


def operands(defaults: dict[str, Any], version: str) -> dict[str, str]:
    """Every operand image block of a chart's values: repository/image, tagged with the block's version or, where
    it has none, the release tag (the chart's appVersion); blocks with an empty repository are unused."""
    found: dict[str, str] = {}

    def walk(block: dict[str, Any], path: str) -> None:
        if block.get("repository") and "image" in block:
            found[path] = f"{block['repository']}/{block['image']}:{block.get('version') or version}"
        for key, value in block.items():
            if isinstance(value, dict) and key != "node-feature-discovery":
                walk(value, f"{path}.{key}" if path else key)

    walk(defaults, "")
    return found
