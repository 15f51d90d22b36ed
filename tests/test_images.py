"""One image-reference normaliser (components/images.py) for config, Helm values, validation and the air gap: a
Docker Hub short name is the same image everywhere, as docker and skopeo read it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from conftest import Program, minimal, of_kind, stack_config

from airgap.bom import bill_of_materials
from airgap.mirror import read_image_list
from airgap.oci import Reference
from components.config import PlatformConfig
from components.images import normalized, repository_path
from components.values import mirrored
from program.offline import run_offline
from validation.rules import run_checks
from validation.sources.config import config_facts

SHORT = "vllm/vllm-openai:v0.20.0"
FULL = "docker.io/vllm/vllm-openai:v0.20.0"
MIRROR = "harbor.example.com/mirror"
RTX = "NVIDIA-GeForce-RTX-4090"


@pytest.mark.parametrize(("ref", "expected"), [
    ("busybox:1.36", "docker.io/library/busybox:1.36"),
    ("busybox", "docker.io/library/busybox"),
    (SHORT, FULL),
    (FULL, FULL),
    ("docker.io/busybox:1.36", "docker.io/library/busybox:1.36"),
    ("index.docker.io/library/busybox:1.36", "docker.io/library/busybox:1.36"),
    ("localhost/x:1", "localhost/x:1"),
    ("localhost:5000/x:1", "localhost:5000/x:1"),
    ("nvcr.io/nvidia/driver", "nvcr.io/nvidia/driver"),
    ("ghcr.io/ggml-org/llama.cpp:server@sha256:" + "a" * 64, "ghcr.io/ggml-org/llama.cpp:server@sha256:" + "a" * 64),
])
def test_normalized_as_the_container_tools_read_it(ref: str, expected: str) -> None:
    assert normalized(ref) == expected
    assert normalized(expected) == expected


def test_repository_path_and_mirror_keep_a_short_names_whole_path() -> None:
    assert repository_path("vllm/vllm-openai") == "vllm/vllm-openai"
    assert repository_path("nvcr.io/nvidia/k8s/dcgm") == "nvidia/k8s/dcgm"
    assert mirrored("vllm/vllm-openai", MIRROR) == f"{MIRROR}/vllm/vllm-openai"
    assert mirrored("docker.io/vllm/vllm-openai", MIRROR) == f"{MIRROR}/vllm/vllm-openai"


def gpu_stack(**overrides: Any) -> dict[str, Any]:
    return minimal(
        gpu={"driver": {"mode": "datacenter", "version": "535.261.03"}, "products": [RTX]},
        runtimes={"vllm": {"image": SHORT}}, tenants=[{"name": "team-a", "quota": {"gpus": {RTX: 1}}}],
        models=[{"name": "chat", "routingName": "acme/chat", "type": "completion", "format": "safetensors",
                 "source": "oci://registry.example.com/models/chat:v1", "tenant": "team-a", "gpus": 1}],
        **overrides)


def parse(values: dict[str, Any]) -> PlatformConfig:
    parsed: list[PlatformConfig] = []
    run_offline(lambda: parsed.append(PlatformConfig.from_pulumi()), stack_config(values))
    return parsed[0]


def test_config_normalizes_a_short_runtime_image() -> None:
    assert parse(gpu_stack()).runtimes.image("vllm") == FULL


def test_cuda_check_runs_on_a_short_name_and_fails_an_old_driver() -> None:
    """The short name used to miss the matrix row (docker.io/vllm/vllm-openai), so the check was skipped and the
    verdict passed on a driver that cannot run the image."""
    checks = [c for c in run_checks(config_facts(parse(gpu_stack()), "test")) if c.id == "cuda-driver"]
    assert [(c.status, c.subject.split(" on ")[0]) for c in checks] == [("fail", FULL)]
    assert "CUDA 13.0" in checks[0].message


def test_air_gap_plan_pulls_a_short_name_where_mirror_and_import_put_it(run_program: Program, tmp_path: Path) -> None:
    records = run_program(gpu_stack(registry={"mirror": MIRROR}, validation={"allowFailures": ["cuda-driver"]}))
    runtime = next(o for o in of_kind(records, "ClusterServingRuntime") if o["metadata"]["name"] == "pai-vllm")
    pulled = runtime["spec"]["containers"][0]["image"]
    listed = tmp_path / "images.txt"
    listed.write_text(f"{SHORT}\n")
    [ref] = read_image_list(listed)
    assert ref == Reference.parse(FULL)
    assert pulled == f"{MIRROR}/{ref.path}:{ref.tag}"  # mirror and import land at <to>/<path>:<tag>


def test_bill_of_materials_lists_a_short_name_once_in_full() -> None:
    bom = bill_of_materials(parse(gpu_stack()))
    assert [i for i in bom.images if "vllm-openai" in i] == [FULL]
