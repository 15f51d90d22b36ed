"""The facts contract: merge precedence and concatenation, a JSON round trip, and what the config source plans."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from components.config import PlatformConfig
from paictl.validate import parse_stack
from program.offline import load_stack_file, stack_path
from validation.facts import (
    DriverFacts,
    Facts,
    KubernetesFacts,
    NodeFacts,
    ReleaseFacts,
    merge,
    observed_over,
)
from validation.sources.config import config_facts, planned_node


def test_merge_concatenates_lists_and_takes_the_last_scalar() -> None:
    planned = Facts(sources={"config": "stacks/Pulumi.x.yaml"},
                    kubernetes=KubernetesFacts(origin="config", version="1.33"),
                    driver=DriverFacts(origin="config", mode="vgpu", version="580.95.05"),
                    nodes=[NodeFacts(origin="config", name="planned A", driver_version="580.95.05")])
    seen = Facts(sources={"cluster": "https://127.0.0.1:6443"},
                 kubernetes=KubernetesFacts(origin="cluster", version="v1.32.4"),
                 nodes=[NodeFacts(origin="cluster", name="gpu-1", driver_version="570.148.08")])
    merged = merge(planned, seen)
    assert merged.kubernetes == seen.kubernetes
    assert merged.driver == planned.driver                       # the cluster part has none: kept
    assert [n.name for n in merged.nodes] == ["planned A", "gpu-1"]
    assert merged.sources == {"config": "stacks/Pulumi.x.yaml", "cluster": "https://127.0.0.1:6443"}
    assert Facts.model_validate_json(merged.model_dump_json()) == merged


def test_deployed_release_is_the_operator_in_force() -> None:
    facts = Facts(releases=[ReleaseFacts(origin="cluster", name="gpu-operator", namespace="gpu-operator",
                                         chart="gpu-operator", version="v25.3.0", status="deployed")])
    assert facts.operator_version is not None and facts.operator_version.version == "v25.3.0"
    assert facts.operator_version.origin == "cluster"


def test_records_reject_unknown_origins_and_fields() -> None:
    with pytest.raises(ValidationError):
        NodeFacts(origin="guess", name="x")  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        NodeFacts.model_validate({"origin": "nvml", "name": "x", "driver": "580"})


def test_config_source_plans_one_node_per_product_with_the_planned_driver() -> None:
    config = load_stack_file(stack_path("vks-prod"), "vks-prod")
    facts = config_facts(parse_stack(config), config.source)
    assert facts.sources == {"config": "stacks/Pulumi.vks-prod.yaml"}
    assert [(n.name, n.driver_version) for n in facts.nodes] == [
        (planned_node("GRID-H100XM-80C"), "580.95.05"), (planned_node("GRID-L40S-48C"), "580.95.05")]
    assert [(h.name, h.vgpu_manager_version) for h in facts.hosts] == [("pai:gpu.hosts", "580.95.02")]
    assert {i.engine: i.cuda for i in facts.runtime_images} == {"infinity": "12.9", "vllm": "13.0"}
    assert {c.name: c.stored_versions for c in facts.crds} == {"clusterpolicies.nvidia.com": ["v1"],
                                                               "nvidiadrivers.nvidia.com": ["v1alpha1"]}
    assert all(r.origin == "config" for r in [*facts.nodes, *facts.hosts, *facts.runtime_images, *facts.models])


def test_config_source_takes_the_operator_default_driver_in_datacenter_mode() -> None:
    cfg = PlatformConfig.model_validate({
        "cluster": {"target": "generic", "kubernetesVersion": "1.33"},
        "gpu": {"driver": {"mode": "datacenter"}, "products": ["NVIDIA-L40S"]},
    })
    facts = config_facts(cfg, "stacks/Pulumi.x.yaml")
    assert facts.driver is not None and facts.driver.version == "595.91.07"   # v26.7.0's default driver
    assert {n.driver_version for n in facts.nodes} == {"595.91.07"} and facts.hosts == []


def test_cpu_only_stack_plans_no_gpu_facts() -> None:
    config = load_stack_file(stack_path("dev"), "dev")
    facts = config_facts(parse_stack(config), config.source)
    assert facts.operator is None and facts.nodes == [] and facts.runtime_images == []
    assert {m.engine for m in facts.models} == {"llamacpp", "infinity"}


@pytest.mark.parametrize(("image", "cuda"), [
    ("vllm", "13.0"),                                         # a catalog key
    ("docker.io/vllm/vllm-openai:v0.20.0", "13.0"),           # the same image by reference
    ("docker.io/vllm/vllm-openai:v0.9.2", "12.8.1"),          # not in the catalog: the matrix's upstream rows
    ("harbor.example.com/mirror/vllm/vllm-openai:v0.12.0", "12.9.1"),  # the same upstream image on a mirror
    ("docker.io/kserve/huggingfaceserver:v0.13.1", "12.4.1"),
    ("docker.io/vllm/vllm-openai:v0.33.0", "13.0"),           # newer than the matrix: the newest row's, assumed
    ("registry.example.com/own/vllm:v0.9.2", None),           # another repository
])
def test_runtime_image_cuda_comes_from_the_catalog(image: str, cuda: str | None) -> None:
    cfg = PlatformConfig.model_validate({
        "cluster": {"target": "generic", "kubernetesVersion": "1.33"},
        "gpu": {"driver": {"mode": "datacenter"}, "products": ["NVIDIA-L40S"]},
        "runtimes": {"vllm": {"image": image}},
        "models": [{"name": "chat", "routingName": "openai/gpt-oss-20b", "type": "completion",
                    "format": "safetensors", "source": "s3://models/chat", "gpus": 1, "tenant": "team-a"}],
    })
    (runtime,) = config_facts(cfg, "stacks/Pulumi.x.yaml").runtime_images
    assert runtime.cuda == cuda
    assert runtime.assumed == image.endswith(":v0.33.0")


def test_observed_lists_replace_the_planned_ones() -> None:
    planned = Facts(driver=DriverFacts(origin="config", mode="vgpu", version="580.95.05"),
                    nodes=[NodeFacts(origin="config", name="planned A", driver_version="580.95.05")],
                    models=[], kubernetes=KubernetesFacts(origin="config", version="1.33"))
    observed = Facts(nodes=[NodeFacts(origin="cluster", name="gpu-1", driver_version="570.148.08")])
    live = observed_over(planned, observed)
    assert [n.name for n in live.nodes] == ["gpu-1"]
    assert live.driver == planned.driver and live.kubernetes == planned.kubernetes
