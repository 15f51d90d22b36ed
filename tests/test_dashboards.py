"""Grafana dashboards: valid dashboard JSON, PromQL that promtool parses, and only metric names the scraped
exporters publish (tests/data/exporter_metrics.yaml, each list with its source)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import of_kind
from promql import all_published, exporters, metric_names, promtool, published
from schemas import chart_defaults

from components.dashboards import DATASOURCE, dashboards, gpu_dashboard, inference_dashboard, render
from components.gpu_operator import DCGM_DEFAULT_FIELDS, DCGM_EXTRA_FIELDS
from components.monitoring import DASHBOARD_LABEL
from program.offline import Registered

BOARDS = {"gpus": gpu_dashboard(), "inference": inference_dashboard()}
# What Grafana substitutes in queries, for promtool to parse them.
GRAFANA_VARIABLES = {"$__rate_interval": "5m", "$__range": "6h", "$node": ".*", "$routing_name": ".*"}


def queries(board: dict[str, Any]) -> Iterator[str]:
    """Every PromQL query of a dashboard: panel targets and template variable queries."""
    for panel in board["panels"]:
        for target in panel["targets"]:
            yield target["expr"]
    for variable in board["templating"]["list"]:
        yield variable["query"]["query"]


def grafana_substituted(expr: str) -> str:
    for name, value in sorted(GRAFANA_VARIABLES.items(), key=lambda item: -len(item[0])):
        expr = expr.replace(name, value)
    assert "$" not in expr, f"unknown Grafana variable in {expr}"
    return expr


@pytest.mark.parametrize(("expr", "names"), [
    ('sum by (routing_name) (rate(http_requests_total{status="5xx",handler!~"/metrics"}[5m]))',
     {"http_requests_total"}),
    ("rate(DCGM_FI_DEV_POWER_VIOLATION[5m]) / 1e9 > 0.5", {"DCGM_FI_DEV_POWER_VIOLATION"}),
    ('histogram_quantile(0.95, sum by (le) '
     '(rate(vllm:e2e_request_latency_seconds_bucket{x="a{b}"}[$__rate_interval])))',
     {"vllm:e2e_request_latency_seconds_bucket"}),
    ("a / on(pod) group_left(node) b offset 5m unless c", {"a", "b", "c"}),
    ('label_values(up{engine!=""}, routing_name)', {"up"}),
    ("count(x) by (modelName)", {"x"}),
])
def test_metric_names_are_read_from_promql(expr: str, names: set[str]) -> None:
    assert metric_names(expr) == names


@pytest.mark.parametrize("name", sorted(BOARDS))
def test_dashboard_is_valid_grafana_json(name: str) -> None:
    board = BOARDS[name]
    assert json.loads(render(board)) == board
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids))
    for panel in board["panels"]:
        assert panel["datasource"] == DATASOURCE and panel["targets"]
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        assert {t["refId"] for t in panel["targets"]} == {chr(ord("A") + i) for i in range(len(panel["targets"]))}
    assert board["uid"] and board["title"] and board["schemaVersion"] >= 36


@pytest.mark.parametrize("name", sorted(BOARDS))
def test_queries_use_only_published_metric_names(name: str) -> None:
    known = all_published()
    for expr in queries(BOARDS[name]):
        names = metric_names(expr)
        assert names, f"no metric in {expr}"
        assert names <= known, f"{sorted(names - known)} in {expr} are published by no scraped exporter"


def test_queries_parse_with_promtool(tmp_path: Path) -> None:
    exprs = [grafana_substituted(e) for board in BOARDS.values() for e in queries(board)
             if not e.startswith("label_values(")]
    rules = {"groups": [{"name": "dashboards", "rules": [
        {"record": f"dashboard:query{i}", "expr": e} for i, e in enumerate(exprs)]}]}
    (tmp_path / "queries.yaml").write_text(yaml.safe_dump(rules))
    checked = promtool("check", "rules", "queries.yaml", cwd=tmp_path)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_gpu_dashboard_covers_each_signal_per_node_and_per_pod() -> None:
    board = BOARDS["gpus"]
    used = set().union(*(metric_names(e) for e in queries(board)))
    for metric in ("DCGM_FI_DEV_GPU_UTIL", "DCGM_FI_DEV_FB_USED", "DCGM_FI_DEV_GPU_TEMP", "DCGM_FI_DEV_POWER_USAGE",
                   "DCGM_FI_DEV_XID_ERRORS"):
        assert metric in used, metric
    exprs = list(queries(board))
    for metric in ("GPU_UTIL", "FB_USED", "POWER_USAGE", "XID_ERRORS"):
        assert any("by (namespace, pod)" in e and metric in e for e in exprs), f"{metric} per pod"
    host = exporters()["dcgm-exporter"]["host_label"]
    for metric in ("POWER_USAGE", "GPU_TEMP"):
        assert any(f"by ({host})" in e and metric in e for e in exprs), f"{metric} per node"
    assert f"label_values(DCGM_FI_DEV_GPU_UTIL, {host})" in exprs, "the node variable reads the exporter's label"


def test_inference_dashboard_is_per_routing_name() -> None:
    board = BOARDS["inference"]
    titles = {p["title"] for p in board["panels"]}
    assert {"Requests per second", "Completion latency (end to end)", "Generated tokens per second",
            "Queue depth (waiting requests)"} <= titles
    for expr in queries(board):
        if expr.startswith("label_values("):
            continue
        # Every series selector of every panel query filters by the variable, so choosing a routing name narrows
        # each panel to it (the error ratio's numerator and denominator alike).
        selectors = re.findall(r"[A-Za-z_:][\w:]*\{[^}]*\}", expr)
        assert selectors, expr
        for selector in selectors:
            assert 'routing_name=~"$routing_name"' in selector, (selector, expr)
    latency = next(p for p in board["panels"] if p["title"] == "Completion latency (end to end)")
    assert [re.search(r"histogram_quantile\(([\d.]+)", t["expr"]).group(1)  # type: ignore[union-attr]
            for t in latency["targets"]] == ["0.5", "0.95", "0.99"]


def test_dcgm_metrics_file_is_the_exporter_default_plus_the_platform_fields() -> None:
    """The CSV the GPU Operator is given keeps every default counter and adds only the platform's fields."""
    data = exporters()["dcgm-exporter"]
    assert [f for f, kind, _ in DCGM_DEFAULT_FIELDS if kind != "label"] == data["metrics"]
    assert [f for f, kind, _ in DCGM_DEFAULT_FIELDS if kind == "label"] == data["labels"]
    assert {f for f, _, _ in DCGM_EXTRA_FIELDS} == published("dcgm-exporter-platform")


def test_every_exporter_list_names_its_source() -> None:
    for name, entry in exporters().items():
        assert re.match(r"^[\w.-]+/[\w.-]+(@[0-9a-f]{7,40})?[:\s]", entry["source"]), name
        assert entry.get("metrics") or entry.get("histograms"), name


def test_sidecar_label_and_datasource_are_the_charts() -> None:
    sidecar = chart_defaults("kube-prometheus-stack", "88.5.3")["grafana"]["sidecar"]
    assert (sidecar["dashboards"]["label"], sidecar["dashboards"]["labelValue"]) == DASHBOARD_LABEL
    assert sidecar["dashboards"]["searchNamespace"] == "ALL"
    assert sidecar["datasources"]["uid"] == DATASOURCE["uid"]


@pytest.mark.parametrize(("stack", "files"), [("dev", {"pai-inference.json"}),
                                              ("vks-prod", {"pai-inference.json", "pai-gpus.json"})])
def test_stacks_ship_dashboards_as_sidecar_config_maps(run_stack: Callable[[str], list[Registered]], stack: str,
                                                       files: set[str]) -> None:
    maps = [m for m in of_kind(run_stack(stack), "ConfigMap") if DASHBOARD_LABEL[0] in m["metadata"]["labels"]]
    assert {f for m in maps for f in m["data"]} == files
    for config_map in maps:
        assert config_map["metadata"]["namespace"] == "monitoring"
        assert config_map["metadata"]["labels"][DASHBOARD_LABEL[0]] == DASHBOARD_LABEL[1]
        (text,) = config_map["data"].values()
        assert json.loads(text) == dashboards(gpu=True)[next(iter(config_map["data"]))]
