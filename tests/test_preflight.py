"""The program's interop preflight: an incompatible stack registers nothing and fails with the check's message;
pai:validation.allowFailures lets it through; an unknown check id there is a config error."""

from __future__ import annotations

from typing import Any

import pytest
from conftest import Program, minimal

from components.config import ConfigError
from program.offline import RecordingMonitor
from validation.preflight import InteropError

H100 = "NVIDIA-H100-80GB-HBM3"


def config(**validation: Any) -> dict[str, Any]:
    """vLLM (catalog image, CUDA 13.0) on H100s with the R570 data-center driver under GPU Operator v25.3.0."""
    return minimal(
        cluster={"target": "generic", "kubernetesVersion": "1.32"},
        gpu={"operator": {"version": "v25.3.0"}, "driver": {"mode": "datacenter", "version": "570.148.08"},
             "products": [H100]},
        models=[{"name": "chat", "routingName": "openai/gpt-oss-20b", "type": "completion", "format": "safetensors",
                 "source": "oci://harbor.example.com/models/gpt-oss-20b:v1", "gpus": 1, "tenant": "team-a"}],
        tenants=[{"name": "team-a", "quota": {"gpus": {H100: 1}}}],
        **({"validation": validation} if validation else {}),
    )


def test_incompatible_stack_registers_nothing(run_program: Program) -> None:
    monitor = RecordingMonitor()
    with pytest.raises(InteropError) as exc:
        run_program(config(), monitor=monitor)
    assert monitor.records == []
    message = str(exc.value)
    assert message.startswith("stacks/Pulumi.test.yaml: interop check cuda-driver failed for ")
    assert "built with CUDA 13.0, which needs driver >= 580.65.06" in message and "570.148.08" in message
    assert "fix: upgrade the driver to the R580 branch" in message
    assert "add cuda-driver to pai:validation.allowFailures" in message


def test_allow_failures_lets_it_through(run_program: Program) -> None:
    records = run_program(config(allowFailures=["cuda-driver"]))
    assert any(r.type == "pai:gpu:GpuOperator" for r in records)


def test_allowing_another_check_does_not(run_program: Program) -> None:
    with pytest.raises(InteropError):
        run_program(config(allowFailures=["vgpu-host-guest"]))


def test_unknown_check_id_is_a_config_error(run_program: Program) -> None:
    monitor = RecordingMonitor()
    with pytest.raises(ConfigError) as exc:
        run_program(config(allowFailures=["cuda-drvier"]), monitor=monitor)
    assert monitor.records == []
    assert "pai:validation.allowFailures[0]: 'cuda-drvier' is not a check id; allowed: cuda-driver," in str(exc.value)
