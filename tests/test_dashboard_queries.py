"""Every dashboard query returns data from a real Prometheus holding an hour of synthetic series: every metric of
every scraped exporter's list (tests/data/exporter_metrics.yaml), labelled as the exporters and the serving
PodMonitor label them. Catches queries that parse and name real metrics but select nothing (wrong label, wrong
suffix, a grouping that drops the legend's label)."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from promql import exporters, promtool
from test_dashboards import BOARDS, grafana_substituted, queries

STEP = 15  # seconds between samples
SAMPLES = 240  # one hour
BUCKETS = ("0.1", "0.5", "1.0", "10.0", "+Inf")
HOST = exporters()["dcgm-exporter"]["host_label"]  # the node label dcgm-exporter puts on every series
GPU = {HOST: "gpu-node-1", "gpu": "0", "UUID": "GPU-0a1b", "modelName": "NVIDIA H100 80GB HBM3",
       "namespace": "research", "pod": "gpt-oss-20b-predictor-7d9f", "container": "kserve-container",
       "job": "nvidia-dcgm-exporter"}
ENDPOINTS = {
    "vllm": {"namespace": "research", "model": "gpt-oss-20b", "engine": "vllm", "routing_name": "openai/gpt-oss-20b",
             "pod": "gpt-oss-20b-predictor-7d9f"},
    "infinity": {"namespace": "apps", "model": "bge-m3", "engine": "infinity", "routing_name": "baai/bge-m3",
                 "pod": "bge-m3-predictor-5c4b"},
    "llamacpp": {"namespace": "apps", "model": "qwen-cpu", "engine": "llamacpp",
                 "routing_name": "qwen/qwen2.5-1.5b-instruct", "pod": "qwen-cpu-predictor-6a3e"},
}
# Which endpoints publish which exporter's metrics.
PUBLISHERS = {"vllm": ["vllm"], "fastapi-instrumentator": ["vllm", "infinity"], "llamacpp": ["llamacpp"],
              "prometheus": ["vllm", "infinity", "llamacpp"]}


def label_sets(exporter: str) -> list[dict[str, str]]:
    if exporter.startswith("dcgm-exporter"):
        return [GPU]
    if exporter == "kserve-controller":
        return [{"namespace": "kserve", "controller": "inferenceservice"}]
    http = {"handler": "/v1/chat/completions", "method": "POST"}
    return [{**ENDPOINTS[e], "job": "monitoring/pai-serving-runtimes",
             **(http if exporter == "fastapi-instrumentator" else {})} for e in PUBLISHERS[exporter]]


def exposition(end: int) -> str:
    """OpenMetrics text: every listed metric and histogram, one series per label set, monotonic values."""
    lines: list[str] = []
    start = end - STEP * (SAMPLES - 1)

    def series(name: str, labels: dict[str, str], per_step: float) -> None:
        matchers = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
        lines.extend(f"{name}{{{matchers}}} {1 + i * per_step} {start + i * STEP}" for i in range(SAMPLES))

    for exporter, entry in exporters().items():
        sets = label_sets(exporter)
        for metric in entry.get("metrics", []):
            for labels in sets:
                if metric == "http_requests_total":
                    for status, rate in (("2xx", 50.0), ("5xx", 1.0)):
                        series(metric, {**labels, "status": status}, rate)
                else:
                    series(metric, labels, 1.0 if metric != "up" else 0.0)
        for histogram in entry.get("histograms", []):
            for labels in sets:
                for index, le in enumerate(BUCKETS):
                    series(f"{histogram}_bucket", {**labels, "le": le}, 10.0 * (index + 1))
            for labels in sets:
                series(f"{histogram}_sum", labels, 25.0)
            for labels in sets:
                series(f"{histogram}_count", labels, 10.0 * len(BUCKETS))
    return "\n".join(lines) + "\n# EOF\n"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int]]:
    """A real Prometheus (Debian `prometheus`) on a free local port over backfilled blocks; (URL, query time)."""
    binary = shutil.which("prometheus")
    assert binary, "prometheus is missing: run ./scripts/system-deps.sh (Debian package prometheus)"
    root = tmp_path_factory.mktemp("prometheus")
    end = int(time.time()) // STEP * STEP - STEP
    (root / "series.om").write_text(exposition(end))
    created = promtool("tsdb", "create-blocks-from", "openmetrics", "series.om", "data", cwd=root)
    assert created.returncode == 0, created.stdout + created.stderr
    (root / "prometheus.yml").write_text("global:\n  scrape_interval: 1h\n")
    port = free_port()
    server = subprocess.Popen(
        [binary, f"--config.file={root / 'prometheus.yml'}", f"--storage.tsdb.path={root / 'data'}",
         f"--web.listen-address=127.0.0.1:{port}", "--storage.tsdb.retention.time=10y", "--log.level=warn"],
        stdout=subprocess.DEVNULL, stderr=(root / "prometheus.log").open("w"))
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{url}/-/ready", timeout=2) as ready:
                    if ready.status == 200:
                        break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError((root / "prometheus.log").read_text()) from None
                time.sleep(0.2)  # polling a readiness endpoint until a deadline
        yield url, end
    finally:
        server.terminate()
        server.wait(timeout=30)


def query(prometheus: tuple[str, int], expr: str) -> list[dict[str, Any]]:
    url, at = prometheus
    answer = get(f"{url}/api/v1/query?" + urllib.parse.urlencode({"query": expr, "time": at}))
    assert answer["status"] == "success", answer
    result: list[dict[str, Any]] = answer["data"]["result"]
    return result


TARGETS = [(board, panel["title"], target["expr"], target["legendFormat"])
           for board in sorted(BOARDS) for panel in BOARDS[board]["panels"] for target in panel["targets"]]


@pytest.mark.parametrize(("board", "title", "expr", "legend"), TARGETS,
                         ids=[f"{b}:{t}:{i}" for i, (b, t, _, _) in enumerate(TARGETS)])
def test_every_panel_query_returns_series_with_its_legend_labels(prometheus: tuple[str, int], board: str,
                                                                 title: str, expr: str, legend: str) -> None:
    result = query(prometheus, grafana_substituted(expr))
    assert result, f"{board} / {title}: no data for {expr}"
    legend_labels = {part.split("}}")[0] for part in legend.split("{{")[1:]}
    for sample in result:
        assert legend_labels <= set(sample["metric"]), f"{title}: {sample['metric']} lacks {legend_labels}"


@pytest.mark.parametrize(("board", "variable", "expected"), [
    ("gpus", "node", {"gpu-node-1"}),
    ("inference", "routing_name", {e["routing_name"] for e in ENDPOINTS.values()}),
])
def test_template_variables_list_their_values(prometheus: tuple[str, int], board: str, variable: str,
                                              expected: set[str]) -> None:
    (definition,) = [v for v in BOARDS[board]["templating"]["list"] if v["name"] == variable]
    selector, label = definition["query"]["query"].removeprefix("label_values(").removesuffix(")").rsplit(", ", 1)
    url, at = prometheus
    answer = get(f"{url}/api/v1/label/{label}/values?" + urllib.parse.urlencode(
        {"match[]": selector, "start": at - 3600, "end": at}))
    assert set(answer["data"]) == expected


def test_every_board_is_covered() -> None:
    assert {b for b, _, _, _ in TARGETS} == set(BOARDS) and len(TARGETS) == sum(
        1 for board in BOARDS.values() for e in queries(board) if not e.startswith("label_values("))

