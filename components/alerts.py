"""Prometheus alert and recording rules as data: GPU faults and saturation (DCGM exporter), the model
endpoints' error rate and latency SLOs (multi-window burn rate), and unlicensed vGPUs.

Every rule group here is shipped as a PrometheusRule, checked by `promtool check rules` and unit-tested with
`promtool test rules` (tests/test_alerts.py)."""

from __future__ import annotations

from typing import Any

from components.config import Slo

Rule = dict[str, Any]
Group = dict[str, Any]

# Labels the serving PodMonitor puts on every series of a model endpoint (see monitoring.serving_pod_monitor).
ENDPOINT = "namespace, model, engine, routing_name"
# Handlers of the runtimes' own HTTP metrics that are not model traffic.
NOT_TRAFFIC = 'handler!~"/metrics|/health|/ping"'
# XIDs that mean the GPU needs a reset or the node a drain: double-bit ECC (48), NVLink (74), fallen off the
# bus (79), contained / uncontained ECC (94, 95), GSP errors (119, 120).
FATAL_XIDS = (48, 74, 79, 94, 95, 119, 120)
# Multi-window burn rates over a 30-day budget (Google SRE workbook, ch. 5): page when 2% of the budget burns in
# an hour (14.4x, confirmed over 5m), open a ticket when 5% burns in six hours (6x, confirmed over 30m).
BURN_WINDOWS = (("1h", "5m", 14.4, "critical"), ("6h", "30m", 6.0, "warning"))
RATE_WINDOWS = sorted({w for long, short, _, _ in BURN_WINDOWS for w in (long, short)})
GPU = "DCGM exporter GPU"


def alert(name: str, expr: str, summary: str, severity: str, for_: str = "0m", **labels: str) -> Rule:
    rule: Rule = {"alert": name, "expr": expr, "labels": {"severity": severity, **labels},
                  "annotations": {"summary": summary}}
    if for_ != "0m":
        rule["for"] = for_
    return rule


def gpu_rules(vgpu: bool) -> list[Group]:
    """GPU faults (XID, ECC, throttling), saturation and, on vGPU guests, licensing."""
    gpu_id = "{{ $labels.hostname }} GPU {{ $labels.gpu }}"
    fatal = " or ".join(f"DCGM_FI_DEV_XID_ERRORS == {x}" for x in FATAL_XIDS)
    faults = [
        alert("GpuXidError", "DCGM_FI_DEV_XID_ERRORS != 0",
              f"{gpu_id} reported XID {{{{ $value }}}}", "warning"),
        alert("GpuFatalXidError", fatal,
              f"{gpu_id} reported XID {{{{ $value }}}}: reset the GPU or drain the node", "critical"),
        alert("GpuUncorrectableEccErrors", "increase(DCGM_FI_DEV_ECC_DBE_VOL_TOTAL[10m]) > 0",
              f"{gpu_id} had uncorrectable (double-bit) ECC errors", "critical"),
        alert("GpuCorrectableEccErrorsHigh", "increase(DCGM_FI_DEV_ECC_SBE_VOL_TOTAL[1h]) > 100",
              f"{gpu_id} corrects many single-bit ECC errors", "warning"),
        alert("GpuRowRemapFailure", "DCGM_FI_DEV_ROW_REMAP_FAILURE > 0",
              f"{gpu_id} could not remap a memory row: replace the GPU", "critical"),
        alert("GpuThermalThrottling", "rate(DCGM_FI_DEV_THERMAL_VIOLATION[5m]) / 1e9 > 0.1",
              f"{gpu_id} spends over 10% of the time throttled for temperature", "warning", "10m"),
        alert("GpuPowerThrottling", "rate(DCGM_FI_DEV_POWER_VIOLATION[5m]) / 1e9 > 0.5",
              f"{gpu_id} spends over half the time throttled at its power limit", "info", "30m"),
        alert("GpuTemperatureHigh", "DCGM_FI_DEV_GPU_TEMP > 85",
              f"{gpu_id} has been above 85 C for 10 minutes", "warning", "10m"),
    ]
    saturation = [
        alert("GpuSaturated", "DCGM_FI_DEV_GPU_UTIL > 95",
              f"{gpu_id} has been over 95% busy for 30 minutes", "info", "30m"),
        alert("GpuProductSaturated",
              "avg by (modelName) (DCGM_FI_DEV_GPU_UTIL) > 90",
              "{{ $labels.modelName }} GPUs are over 90% busy on average: add GPUs or move workloads", "warning",
              "1h"),
        alert("GpuMemoryFull", "DCGM_FI_DEV_FB_FREE / (DCGM_FI_DEV_FB_FREE + DCGM_FI_DEV_FB_USED) < 0.02",
              f"{gpu_id} has less than 2% of its framebuffer free", "warning", "15m"),
    ]
    groups = [{"name": "pai-gpu-faults", "rules": faults}, {"name": "pai-gpu-saturation", "rules": saturation}]
    if vgpu:
        # 0 = not licensed, 1 = licensed (NVIDIA/DCGM dcgmlib/dcgm_fields.h, DCGM_FI_DEV_VGPU_LICENSE_STATUS).
        groups.append({"name": "pai-vgpu-licensing", "rules": [
            alert("VgpuUnlicensed", "DCGM_FI_DEV_VGPU_LICENSE_STATUS == 0",
                  f"{gpu_id} runs without a vGPU licence: performance is capped until NLS licenses it",
                  "critical", "10m"),
        ]})
    return groups


def endpoint_rules(slo: Slo) -> list[Group]:
    """Recording rules for each endpoint's error and slow-request ratios per window, and burn-rate alerts on
    them. Error rate: HTTP 5xx over all model requests (vLLM and Infinity serve prometheus-fastapi-instrumentator
    metrics; llama.cpp publishes no request counter). Latency: requests slower than the SLO threshold, from
    vLLM's end-to-end histogram (completion) and Infinity's HTTP duration histogram (embedding)."""
    records: list[Rule] = []
    for window in RATE_WINDOWS:
        requests = f'sum by ({ENDPOINT}) (rate(http_requests_total{{{NOT_TRAFFIC}}}[{window}]))'
        errors = f'sum by ({ENDPOINT}) (rate(http_requests_total{{status="5xx",{NOT_TRAFFIC}}}[{window}]))'
        records.append({"record": f"pai:endpoint_errors:ratio_rate{window}", "expr": f"{errors} / {requests}"})
        records.append({"record": f"pai:endpoint_slow_requests:ratio_rate{window}", "expr": " or ".join([
            slow_ratio("vllm:e2e_request_latency_seconds", "", slo.completionSeconds, window),
            slow_ratio("http_request_duration_seconds", f'engine="infinity",{NOT_TRAFFIC}', slo.embeddingSeconds,
                       window),
        ])})
    alerts: list[Rule] = []
    for long, short, factor, severity in BURN_WINDOWS:
        for name, record, objective, what in (
            ("EndpointErrorBudgetBurn", "pai:endpoint_errors", slo.availability, "errors"),
            ("EndpointLatencyBudgetBurn", "pai:endpoint_slow_requests", slo.latencyTarget, "slow requests"),
        ):
            threshold = round(factor * (1 - objective), 6)
            alerts.append(alert(
                name,
                f"{record}:ratio_rate{long} > {threshold} and {record}:ratio_rate{short} > {threshold}",
                f"{{{{ $labels.routing_name }}}} ({{{{ $labels.namespace }}}}) burns its {what} budget "
                f"{factor:g}x too fast ({long} window)", severity, window=long))
    alerts.append(alert("EndpointDown", 'up{engine!=""} == 0',
                        "{{ $labels.routing_name }} replica {{ $labels.pod }} is not serving metrics", "warning",
                        "5m"))
    return [{"name": "pai-endpoint-slo-records", "rules": records}, {"name": "pai-endpoint-slo", "rules": alerts}]


def slow_ratio(histogram: str, selector: str, seconds: float, window: str) -> str:
    """Share of requests slower than `seconds`, per endpoint: 1 - (requests under the bucket bound) / all."""
    matchers = f"{selector}," if selector else ""
    fast = f'sum by ({ENDPOINT}) (rate({histogram}_bucket{{{matchers}le="{float(seconds)!r}"}}[{window}]))'
    total = f"sum by ({ENDPOINT}) (rate({histogram}_count{{{selector}}}[{window}]))"
    return f"(1 - {fast} / {total})"


def rule_groups(slo: Slo, gpu: bool, vgpu: bool) -> list[Group]:
    """Every rule group the platform ships: endpoint SLOs always, GPU rules where there are GPUs."""
    return [*endpoint_rules(slo), *(gpu_rules(vgpu) if gpu else [])]
