"""Grafana dashboards as code: the GPU dashboard (DCGM exporter) and the inference dashboard (the serving
runtimes' own metrics, per routing name). Each is dashboard JSON as Grafana's file provisioning reads it; the
Monitoring component ships them as ConfigMaps that Grafana's dashboard sidecar picks up."""

from __future__ import annotations

import json
from typing import Any

DATASOURCE = {"type": "prometheus", "uid": "prometheus"}  # the chart's default datasource (sidecar.datasources.uid)
SCHEMA_VERSION = 39
PANEL_WIDTH = 12
PANEL_HEIGHT = 8

Dashboard = dict[str, Any]


def target(expr: str, legend: str, ref: str) -> dict[str, Any]:
    return {"datasource": DATASOURCE, "expr": expr, "legendFormat": legend, "refId": ref}


def panel(index: int, title: str, unit: str, targets: list[tuple[str, str]], kind: str = "timeseries",
          maximum: float | None = None) -> dict[str, Any]:
    """One panel in a two-column grid; `targets` are (PromQL, legend) pairs."""
    defaults: dict[str, Any] = {"unit": unit}
    if maximum is not None:
        defaults |= {"min": 0, "max": maximum}
    return {
        "id": index + 1,
        "type": kind,
        "title": title,
        "datasource": DATASOURCE,
        "gridPos": {"x": (index % 2) * PANEL_WIDTH, "y": (index // 2) * PANEL_HEIGHT,
                    "w": PANEL_WIDTH, "h": PANEL_HEIGHT},
        "fieldConfig": {"defaults": defaults, "overrides": []},
        "options": {"legend": {"displayMode": "table", "placement": "bottom"}} if kind == "timeseries" else {},
        "targets": [target(expr, legend, chr(ord("A") + i)) for i, (expr, legend) in enumerate(targets)],
    }


def variable(name: str, label: str, query: str) -> dict[str, Any]:
    """A multi-value query variable with an `All` option (regex `.*`)."""
    return {
        "name": name, "label": label, "type": "query", "datasource": DATASOURCE,
        "query": {"query": query, "refId": f"{name}-values"}, "definition": query,
        "refresh": 2, "includeAll": True, "multi": True, "allValue": ".*", "sort": 1,
        "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
    }


def dashboard(uid: str, title: str, tags: list[str], variables: list[dict[str, Any]],
              panels: list[tuple[str, str, list[tuple[str, str]]]], maxima: dict[str, float]) -> Dashboard:
    return {
        "uid": uid, "title": title, "tags": ["pai", *tags], "timezone": "utc", "editable": False,
        "schemaVersion": SCHEMA_VERSION, "version": 1, "refresh": "30s",
        "time": {"from": "now-6h", "to": "now"},
        "templating": {"list": variables},
        "panels": [panel(i, title, unit, targets, maximum=maxima.get(title))
                   for i, (title, unit, targets) in enumerate(panels)],
    }


def gpu_dashboard() -> Dashboard:
    """Utilisation, memory, temperature, power and XID errors, per node and GPU and per pod."""
    sel = 'hostname=~"$node"'
    pod = f'{sel},pod!=""'
    return dashboard("pai-gpus", "PAI / GPUs", ["gpu", "dcgm"], [
        variable("node", "Node", "label_values(DCGM_FI_DEV_GPU_UTIL, hostname)"),
    ], [
        ("GPU utilisation per GPU", "percent", [(f"DCGM_FI_DEV_GPU_UTIL{{{sel}}}", "{{hostname}} GPU {{gpu}}")]),
        ("GPU utilisation per pod", "percent", [
            (f"avg by (namespace, pod) (DCGM_FI_DEV_GPU_UTIL{{{pod}}})", "{{namespace}}/{{pod}}")]),
        ("Framebuffer used per GPU", "percentunit", [
            (f"DCGM_FI_DEV_FB_USED{{{sel}}} / (DCGM_FI_DEV_FB_USED{{{sel}}} + DCGM_FI_DEV_FB_FREE{{{sel}}})",
             "{{hostname}} GPU {{gpu}}")]),
        ("Framebuffer used per pod", "decmbytes", [
            (f"sum by (namespace, pod) (DCGM_FI_DEV_FB_USED{{{pod}}})", "{{namespace}}/{{pod}}")]),
        ("Tensor core activity per GPU", "percentunit", [
            (f"DCGM_FI_PROF_PIPE_TENSOR_ACTIVE{{{sel}}}", "{{hostname}} GPU {{gpu}}")]),
        ("Temperature", "celsius", [
            (f"DCGM_FI_DEV_GPU_TEMP{{{sel}}}", "{{hostname}} GPU {{gpu}}"),
            (f"DCGM_FI_DEV_MEMORY_TEMP{{{sel}}}", "{{hostname}} GPU {{gpu}} memory")]),
        ("Power draw per GPU", "watt", [(f"DCGM_FI_DEV_POWER_USAGE{{{sel}}}", "{{hostname}} GPU {{gpu}}")]),
        ("Power draw per node", "watt", [(f"sum by (hostname) (DCGM_FI_DEV_POWER_USAGE{{{sel}}})", "{{hostname}}")]),
        ("Power draw per pod", "watt", [
            (f"sum by (namespace, pod) (DCGM_FI_DEV_POWER_USAGE{{{pod}}})", "{{namespace}}/{{pod}}")]),
        ("Hottest GPU per node", "celsius", [
            (f"max by (hostname) (DCGM_FI_DEV_GPU_TEMP{{{sel}}})", "{{hostname}}")]),
        ("Last XID error per GPU", "none", [
            (f"max_over_time(DCGM_FI_DEV_XID_ERRORS{{{sel}}}[$__range])", "{{hostname}} GPU {{gpu}}")]),
        ("Last XID error per pod", "none", [
            (f"max by (namespace, pod) (max_over_time(DCGM_FI_DEV_XID_ERRORS{{{pod}}}[$__range]))",
             "{{namespace}}/{{pod}}")]),
        ("Throttled time (thermal, power)", "percentunit", [
            (f"rate(DCGM_FI_DEV_THERMAL_VIOLATION{{{sel}}}[$__rate_interval]) / 1e9",
             "{{hostname}} GPU {{gpu}} thermal"),
            (f"rate(DCGM_FI_DEV_POWER_VIOLATION{{{sel}}}[$__rate_interval]) / 1e9",
             "{{hostname}} GPU {{gpu}} power")]),
        ("ECC errors (volatile)", "short", [
            (f"increase(DCGM_FI_DEV_ECC_DBE_VOL_TOTAL{{{sel}}}[$__range])", "{{hostname}} GPU {{gpu}} double-bit"),
            (f"increase(DCGM_FI_DEV_ECC_SBE_VOL_TOTAL{{{sel}}}[$__range])", "{{hostname}} GPU {{gpu}} single-bit")]),
        ("GPUs per product", "short", [("count by (modelName) (DCGM_FI_DEV_GPU_UTIL)", "{{modelName}}")]),
    ], {"GPU utilisation per GPU": 100, "GPU utilisation per pod": 100, "Framebuffer used per GPU": 1,
        "Tensor core activity per GPU": 1})


def inference_dashboard() -> Dashboard:
    """Requests, errors, latency percentiles, tokens per second and queue depth, per routing name."""
    sel = 'routing_name=~"$routing_name"'
    traffic = f'{sel},handler!~"/metrics|/health|/ping"'
    by = "sum by (routing_name)"

    def quantile(q: float, histogram: str, matchers: str) -> str:
        return (f"histogram_quantile({q}, sum by (routing_name, le) "
                f"(rate({histogram}_bucket{{{matchers}}}[$__rate_interval])))")

    latency = [(quantile(q, "vllm:e2e_request_latency_seconds", sel), f"{{{{routing_name}}}} p{round(q * 100)}")
               for q in (0.5, 0.95, 0.99)]
    return dashboard("pai-inference", "PAI / Inference", ["inference", "vllm", "infinity", "llamacpp"], [
        variable("routing_name", "Routing name", 'label_values(up{engine!=""}, routing_name)'),
    ], [
        ("Requests per second", "reqps", [
            (f"{by} (rate(http_requests_total{{{traffic}}}[$__rate_interval]))", "{{routing_name}}")]),
        ("Error ratio (5xx)", "percentunit", [
            (f'{by} (rate(http_requests_total{{status="5xx",{traffic}}}[$__rate_interval])) / '
             f"{by} (rate(http_requests_total{{{traffic}}}[$__rate_interval]))", "{{routing_name}}")]),
        ("Completion latency (end to end)", "s", latency),
        ("Time to first token p95", "s", [
            (quantile(0.95, "vllm:time_to_first_token_seconds", sel), "{{routing_name}}")]),
        ("Embedding latency", "s", [
            (quantile(q, "http_request_duration_seconds", f'engine="infinity",{traffic}'),
             f"{{{{routing_name}}}} p{round(q * 100)}") for q in (0.5, 0.95)]),
        ("Generated tokens per second", "short", [
            (f"{by} (rate(vllm:generation_tokens_total{{{sel}}}[$__rate_interval]))", "{{routing_name}} (vLLM)"),
            (f"{by} (rate(llamacpp:tokens_predicted_total{{{sel}}}[$__rate_interval]))",
             "{{routing_name}} (llama.cpp)")]),
        ("Prompt tokens per second", "short", [
            (f"{by} (rate(vllm:prompt_tokens_total{{{sel}}}[$__rate_interval]))", "{{routing_name}} (vLLM)"),
            (f"{by} (rate(llamacpp:prompt_tokens_total{{{sel}}}[$__rate_interval]))", "{{routing_name}} (llama.cpp)")]),
        ("Queue depth (waiting requests)", "short", [
            (f"{by} (vllm:num_requests_waiting{{{sel}}})", "{{routing_name}} (vLLM)"),
            (f"{by} (llamacpp:requests_deferred{{{sel}}})", "{{routing_name}} (llama.cpp)")]),
        ("Requests in flight", "short", [
            (f"{by} (vllm:num_requests_running{{{sel}}})", "{{routing_name}} (vLLM)"),
            (f"{by} (llamacpp:requests_processing{{{sel}}})", "{{routing_name}} (llama.cpp)")]),
        ("KV cache usage", "percentunit", [
            (f"max by (routing_name) (vllm:kv_cache_usage_perc{{{sel}}})", "{{routing_name}}")]),
        ("Serving replicas up", "short", [(f'{by} (up{{engine!="",{sel}}})', "{{routing_name}}")]),
    ], {"KV cache usage": 1})


def dashboards(gpu: bool) -> dict[str, Dashboard]:
    """The dashboards a stack ships, by file name: inference always, GPUs where there are GPUs."""
    found = {"pai-inference.json": inference_dashboard()}
    if gpu:
        found["pai-gpus.json"] = gpu_dashboard()
    return found


def render(board: Dashboard) -> str:
    return json.dumps(board, indent=2, sort_keys=True)
