"""Alert rules: `promtool check rules` passes, and `promtool test rules` shows every alert firing on a synthetic
series that breaks it and staying quiet on a healthy one. Rules only read published metric names."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import of_kind
from promql import all_published, exporters, metric_names, promtool

from components.alerts import Rule, rule_groups
from components.config import Slo
from program.offline import Registered

SLO = Slo()
GROUPS = rule_groups(SLO, gpu=True, vgpu=True)
ALERTS = [r for g in GROUPS for r in g["rules"] if "alert" in r]
NAMES = {r["alert"] for r in ALERTS}
HOST = exporters()["dcgm-exporter"]["host_label"]  # the node label dcgm-exporter puts on every series
GPU = {HOST: "gpu-node-1", "gpu": "0", "UUID": "GPU-0a1b", "modelName": "NVIDIA H100 80GB HBM3"}
GPU2 = {**GPU, "gpu": "1", "UUID": "GPU-2c3d"}
ENDPOINT = {"namespace": "research", "model": "gpt-oss-20b", "engine": "vllm", "routing_name": "openai/gpt-oss-20b",
            "pod": "gpt-oss-20b-predictor-0", "job": "monitoring/pai-serving-runtimes"}
EMBEDDER = {**ENDPOINT, "model": "bge-m3", "engine": "infinity", "routing_name": "baai/bge-m3",
            "pod": "bge-m3-predictor-0"}
CHAT = {"handler": "/v1/chat/completions", "method": "POST"}
RECORDED = ("namespace", "model", "engine", "routing_name")


def series(metric: str, labels: dict[str, str], values: str) -> dict[str, str]:
    matchers = ",".join(f'{k}="{v}"' for k, v in labels.items())
    return {"series": f"{metric}{{{matchers}}}", "values": values}


@dataclass(frozen=True)
class Case:
    """Input series, when to evaluate, and the label sets of the alerts expected then (empty: quiet)."""

    series: list[dict[str, str]]
    at: str
    alerts: list[dict[str, str]]
    value: str = ""


def requests(labels: dict[str, str], ok: str, errors: str) -> list[dict[str, str]]:
    return [series("http_requests_total", {**labels, **CHAT, "status": "2xx"}, ok),
            series("http_requests_total", {**labels, **CHAT, "status": "5xx"}, errors)]


def burn(labels: dict[str, str]) -> list[dict[str, str]]:
    recorded = {k: labels[k] for k in RECORDED}
    return [{**recorded, "window": "1h", "severity": "critical"}, {**recorded, "window": "6h", "severity": "warning"}]


def latency(labels: dict[str, str], histogram: str, le: str, fast: str, extra: dict[str, str]) -> list[dict[str, str]]:
    return [series(f"{histogram}_bucket", {**labels, **extra, "le": le}, fast),
            series(f"{histogram}_count", {**labels, **extra}, "0+100x90")]


FIRING: dict[str, Case] = {
    "GpuXidError": Case([series("DCGM_FI_DEV_XID_ERRORS", GPU, "13x10")], "5m", [GPU], "13"),
    "GpuFatalXidError": Case([series("DCGM_FI_DEV_XID_ERRORS", GPU, "79x10")], "5m", [GPU], "79"),
    "GpuUncorrectableEccErrors": Case([series("DCGM_FI_DEV_ECC_DBE_VOL_TOTAL", GPU, "0 0 0 0 0 1 1 1 1 1 1 1")],
                                      "10m", [GPU]),
    "GpuCorrectableEccErrorsHigh": Case([series("DCGM_FI_DEV_ECC_SBE_VOL_TOTAL", GPU, "0+5x70")], "65m", [GPU]),
    "GpuRowRemapFailure": Case([series("DCGM_FI_DEV_ROW_REMAP_FAILURE", GPU, "1x5")], "2m", [GPU]),
    "GpuThermalThrottling": Case([series("DCGM_FI_DEV_THERMAL_VIOLATION", GPU, "0+30000000000x30")], "20m", [GPU]),
    "GpuPowerThrottling": Case([series("DCGM_FI_DEV_POWER_VIOLATION", GPU, "0+45000000000x60")], "45m", [GPU]),
    "GpuTemperatureHigh": Case([series("DCGM_FI_DEV_GPU_TEMP", GPU, "90x20")], "15m", [GPU]),
    "GpuSaturated": Case([series("DCGM_FI_DEV_GPU_UTIL", GPU, "99x45")], "40m", [GPU]),
    "GpuProductSaturated": Case([series("DCGM_FI_DEV_GPU_UTIL", GPU, "95x80"),
                                 series("DCGM_FI_DEV_GPU_UTIL", GPU2, "93x80")], "70m",
                                [{"modelName": GPU["modelName"]}]),
    "GpuMemoryFull": Case([series("DCGM_FI_DEV_FB_FREE", GPU, "100x20"),
                           series("DCGM_FI_DEV_FB_USED", GPU, "81000x20")], "17m", [GPU]),
    "VgpuUnlicensed": Case([series("DCGM_FI_DEV_VGPU_LICENSE_STATUS", GPU, "0x15")], "12m", [GPU]),
    "EndpointDown": Case([series("up", ENDPOINT, "0x10")], "7m", [ENDPOINT]),
    "EndpointErrorBudgetBurn": Case(requests(ENDPOINT, "0+60x90", "0+40x90"), "70m", burn(ENDPOINT)),
    "EndpointLatencyBudgetBurn": Case(
        [*latency(ENDPOINT, "vllm:e2e_request_latency_seconds", "10.0", "0+10x90", {}),
         *latency(EMBEDDER, "http_request_duration_seconds", "1.0", "0+10x90", {**CHAT, "handler": "/embeddings"})],
        "70m", burn(ENDPOINT) + burn(EMBEDDER)),
}
HEALTHY: dict[str, Case] = {
    "GpuXidError": Case([series("DCGM_FI_DEV_XID_ERRORS", GPU, "0x10")], "5m", []),
    "GpuFatalXidError": Case([series("DCGM_FI_DEV_XID_ERRORS", GPU, "13x10")], "5m", []),  # XID 13: not fatal
    "GpuUncorrectableEccErrors": Case([series("DCGM_FI_DEV_ECC_DBE_VOL_TOTAL", GPU, "3x15")], "10m", []),
    "GpuCorrectableEccErrorsHigh": Case([series("DCGM_FI_DEV_ECC_SBE_VOL_TOTAL", GPU, "0+1x70")], "65m", []),
    "GpuRowRemapFailure": Case([series("DCGM_FI_DEV_ROW_REMAP_FAILURE", GPU, "0x5")], "2m", []),
    "GpuThermalThrottling": Case([series("DCGM_FI_DEV_THERMAL_VIOLATION", GPU, "0+1000000000x30")], "20m", []),
    "GpuPowerThrottling": Case([series("DCGM_FI_DEV_POWER_VIOLATION", GPU, "0+6000000000x60")], "45m", []),
    "GpuTemperatureHigh": Case([series("DCGM_FI_DEV_GPU_TEMP", GPU, "70x20")], "15m", []),
    "GpuSaturated": Case([series("DCGM_FI_DEV_GPU_UTIL", GPU, "99x20 60x25")], "40m", []),  # busy, then not
    "GpuProductSaturated": Case([series("DCGM_FI_DEV_GPU_UTIL", GPU, "95x80"),
                                 series("DCGM_FI_DEV_GPU_UTIL", GPU2, "50x80")], "70m", []),
    "GpuMemoryFull": Case([series("DCGM_FI_DEV_FB_FREE", GPU, "8000x20"),
                           series("DCGM_FI_DEV_FB_USED", GPU, "73000x20")], "17m", []),
    "VgpuUnlicensed": Case([series("DCGM_FI_DEV_VGPU_LICENSE_STATUS", GPU, "1x15")], "12m", []),
    "EndpointDown": Case([series("up", ENDPOINT, "1x10")], "7m", []),
    "EndpointErrorBudgetBurn": Case(requests(ENDPOINT, "0+100x90", "0x90"), "70m", []),
    "EndpointLatencyBudgetBurn": Case(
        [*latency(ENDPOINT, "vllm:e2e_request_latency_seconds", "10.0", "0+99x90", {}),
         *latency(EMBEDDER, "http_request_duration_seconds", "1.0", "0+100x90", {**CHAT, "handler": "/embeddings"})],
        "70m", []),
}
# A 10-minute burst of errors after two quiet hours trips the short windows (5m, 30m) but not the long ones:
# the multi-window rule stays quiet.
SPIKE = Case(requests(ENDPOINT, "0+100x120", "0x110 0+20x10"), "120m", [])


def rendered_annotations(rule: Rule, labels: dict[str, str], value: str) -> dict[str, str]:
    """The rule's annotations as Prometheus renders them for one alert."""
    def render(text: str) -> str:
        text = text.replace("{{ $value }}", value)
        return re.sub(r"\{\{ \$labels\.(\w+) \}\}", lambda m: labels.get(m.group(1), ""), text)
    return {k: render(v) for k, v in rule["annotations"].items()}


def rule_for(name: str, labels: dict[str, str]) -> Rule:
    """The rule an expected alert comes from: burn-rate alerts share a name, one rule per window."""
    (rule,) = [r for r in ALERTS if r["alert"] == name and r["labels"].get("window") == labels.get("window")]
    found: Rule = rule
    return found


def unit_test(name: str, case: Case) -> dict[str, Any]:
    expected = []
    for labels in case.alerts:
        rule = rule_for(name, labels)
        expected.append({"exp_labels": {**labels, **rule["labels"]},
                         "exp_annotations": rendered_annotations(rule, labels, case.value)})
    return {"interval": "1m", "input_series": case.series,
            "alert_rule_test": [{"eval_time": case.at, "alertname": name, "exp_alerts": expected}]}


def write_rules(tmp_path: Path) -> None:
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump({"groups": GROUPS}, sort_keys=False))


def run_tests(tmp_path: Path, tests: list[dict[str, Any]]) -> str:
    write_rules(tmp_path)
    (tmp_path / "tests.yaml").write_text(yaml.safe_dump({"rule_files": ["rules.yaml"], "evaluation_interval": "1m",
                                                         "tests": tests}, sort_keys=False))
    result = promtool("test", "rules", "tests.yaml", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_promtool_checks_the_rules(tmp_path: Path) -> None:
    write_rules(tmp_path)
    checked = promtool("check", "rules", "rules.yaml", cwd=tmp_path)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"SUCCESS: {sum(len(g['rules']) for g in GROUPS)} rules found" in checked.stdout


def test_every_alert_has_a_firing_and_a_healthy_case() -> None:
    assert set(FIRING) == NAMES == set(HEALTHY)
    assert all(FIRING[name].alerts for name in FIRING)


def test_each_alert_fires_on_a_breaking_series(tmp_path: Path) -> None:
    run_tests(tmp_path, [unit_test(name, case) for name, case in sorted(FIRING.items())])


def test_each_alert_stays_quiet_on_a_healthy_series(tmp_path: Path) -> None:
    run_tests(tmp_path, [unit_test(name, case) for name, case in sorted(HEALTHY.items())])


def test_a_short_error_spike_does_not_burn_the_budget(tmp_path: Path) -> None:
    run_tests(tmp_path, [unit_test("EndpointErrorBudgetBurn", SPIKE)])


def test_a_wrong_expectation_fails(tmp_path: Path) -> None:
    """The harness can fail: a healthy series claimed to fire is reported by promtool."""
    case = HEALTHY["GpuTemperatureHigh"]
    wrong = Case(case.series, case.at, [GPU])
    with pytest.raises(AssertionError, match="GpuTemperatureHigh"):
        run_tests(tmp_path, [unit_test("GpuTemperatureHigh", wrong)])


def test_rules_read_only_published_metrics() -> None:
    known = all_published()
    recorded = {r["record"] for g in GROUPS for r in g["rules"] if "record" in r}
    for group in GROUPS:
        for rule in group["rules"]:
            names = metric_names(rule["expr"])
            assert names and names <= known | recorded, f"{sorted(names - known - recorded)} in {rule['expr']}"


def test_burn_thresholds_follow_the_objectives() -> None:
    slo = Slo(availability=0.999, latencyTarget=0.9)
    alerts = {(r["alert"], r["labels"]["window"]): r["expr"] for g in rule_groups(slo, gpu=False, vgpu=False)
              for r in g["rules"] if "window" in r.get("labels", {})}
    assert "> 0.0144 and" in alerts[("EndpointErrorBudgetBurn", "1h")]
    assert "> 0.6 and" in alerts[("EndpointLatencyBudgetBurn", "6h")]


def test_promtool_checks_the_shipped_rule(run_stack: Callable[[str], list[Registered]], tmp_path: Path) -> None:
    (rule,) = of_kind(run_stack("vks-prod"), "PrometheusRule")
    assert rule["spec"] == {"groups": rule_groups(Slo(), gpu=True, vgpu=True)}
    (tmp_path / "shipped.yaml").write_text(yaml.safe_dump(rule["spec"]))
    checked = promtool("check", "rules", "shipped.yaml", cwd=tmp_path)
    assert checked.returncode == 0, checked.stdout + checked.stderr


@pytest.mark.parametrize(("stack", "gpu_groups"), [("dev", set()),
                                                   ("vks-prod", {"pai-gpu-faults", "pai-gpu-saturation",
                                                                 "pai-vgpu-licensing"})])
def test_stacks_ship_the_rules(run_stack: Callable[[str], list[Registered]], stack: str, gpu_groups: set[str]) -> None:
    (rule,) = of_kind(run_stack(stack), "PrometheusRule")
    assert rule["metadata"]["namespace"] == "monitoring"
    names = {g["name"] for g in rule["spec"]["groups"]}
    assert names == {"pai-endpoint-slo-records", "pai-endpoint-slo", *gpu_groups}
