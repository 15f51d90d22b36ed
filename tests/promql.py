"""Test helpers for PromQL: the metric names an expression reads, the exporters' published names (test data),
and running the real `promtool`."""

from __future__ import annotations

import functools
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml

DATA = Path(__file__).parent / "data" / "exporter_metrics.yaml"
# Words that are neither metric names nor functions (functions and aggregations are followed by "(").
KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "offset", "bool", "and", "or",
            "unless", "inf", "nan"}
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_MATCHERS = re.compile(r"\{[^}]*\}")
_RANGE = re.compile(r"\[[^\]]*\]")
_LABEL_LIST = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_VARIABLE = re.compile(r"\$\{?\w+\}?")
_NAME = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*")


def metric_names(expr: str) -> set[str]:
    """Every metric name a PromQL expression selects (also in a Grafana `label_values(selector, label)` query)."""
    labels_query = re.fullmatch(r"\s*label_values\((.*),\s*\w+\s*\)\s*", expr, re.S)
    if labels_query:
        expr = labels_query.group(1)
    text = _STRING.sub('""', expr)
    for pattern in (_MATCHERS, _RANGE, _LABEL_LIST):
        text = pattern.sub(" ", text)
    text = _VARIABLE.sub("1", text)
    names = set()
    for match in _NAME.finditer(text):
        before = text[match.start() - 1] if match.start() else " "
        if before.isdigit() or before == ".":  # the exponent or unit of a number: 1e9, 5m
            continue
        if text[match.end():].lstrip().startswith("(") or match.group().lower() in KEYWORDS:
            continue
        names.add(match.group())
    return names


@functools.cache
def exporters() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(DATA.read_text())["exporters"]
    return loaded


def published(exporter: str) -> set[str]:
    """The series names one exporter publishes: its metrics and each histogram's _bucket, _sum and _count."""
    entry = exporters()[exporter]
    histograms = {f"{h}_{suffix}" for h in entry.get("histograms", []) for suffix in ("bucket", "sum", "count")}
    return {*entry.get("metrics", []), *histograms}


def all_published() -> set[str]:
    return set().union(*(published(name) for name in exporters()))


def promtool(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run the real promtool (Debian package `prometheus`, listed in scripts/deps/monitoring.list)."""
    binary = shutil.which("promtool")
    assert binary, "promtool is missing: run ./scripts/system-deps.sh (Debian package prometheus)"
    return subprocess.run([binary, *args], cwd=cwd, capture_output=True, text=True, timeout=120, check=False)
