"""Node-probe facts: NVML via nvidia-ml-py on this machine, or the GPU probe Job's output read from its log.

The probe itself is validation/smoke.py (standard library only at load time); `probe_job` renders the Job
that runs it unchanged inside a serving runtime image on a GPU node and prints its JSON result to the log,
and `probe_facts` turns that log back into facts.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from components.namespaces import GPU_OPERATOR
from validation import smoke
from validation.facts import Facts, NodeFacts, SmokeFacts

PROBE_JOB = "pai-gpu-probe"
GPU_NODES = {"nvidia.com/gpu.present": "true"}  # GPU Feature Discovery's label on every GPU node


def gfd_product(nvml_name: str) -> str:
    """An NVML product name as GPU Feature Discovery labels it: NVIDIA H100 80GB HBM3 -> NVIDIA-H100-80GB-HBM3."""
    return "-".join(nvml_name.split())


def node_from_probe(node: str, probe: dict[str, Any]) -> NodeFacts:
    """One NodeFacts from an NVML probe result: products counted, the lowest compute capability of its GPUs."""
    gpus: list[dict[str, Any]] = probe["gpus"]
    products: dict[str, int] = {}
    for gpu in gpus:
        products[gfd_product(gpu["product"])] = products.get(gfd_product(gpu["product"]), 0) + 1
    capabilities = sorted((g["compute_capability"] for g in gpus), key=lambda c: tuple(map(int, c.split("."))))
    migs = {g["mig_mode"] for g in gpus}
    return NodeFacts(origin="nvml", name=node, products=products, driver_version=probe["driver_version"],
                     cuda_driver_version=probe["cuda_driver_version"],
                     compute_capability=capabilities[0] if capabilities else None,
                     mig_mode="enabled" if "enabled" in migs else ("disabled" if "disabled" in migs else None))


def nvml_facts(node: str, library: Any = None) -> Facts:
    """NVML on this machine. Without an NVIDIA driver: no node, and the source line says so."""
    try:
        probe = smoke.nvml_probe(library)
    except smoke.NvmlUnavailable as exc:
        return Facts(sources={"nvml": f"{node}: {exc}"})
    return Facts(sources={"nvml": f"NVML on {node}"}, nodes=[node_from_probe(node, probe)])


def probe_facts(log: str) -> Facts:
    """Facts from the probe Job's log: its last JSON line (NVML node facts and the smoke result)."""
    lines = [line for line in log.splitlines() if line.startswith("{")]
    if not lines:
        raise ValueError("the probe log has no JSON result line")
    result = json.loads(lines[-1])
    node = result["node"]
    nodes = [node_from_probe(node, result["nvml"])] if result.get("nvml") else []
    run = SmokeFacts(origin="smoke", node=node, image=result.get("image", ""), level=result["level"],
                     ok=result["ok"], detail=result.get("detail", ""))
    return Facts(sources={"nvml": f"probe job on {node}", "smoke": f"level {run.level} on node {node}"},
                 nodes=nodes, smoke=[run])


def probe_job(image: str, namespace: str = GPU_OPERATOR, node_selector: dict[str, str] | None = None,
              pull_secret: str | None = None, level: str | None = None) -> dict[str, Any]:
    """The Job running the probe in `image` (a serving runtime image from the catalog) on one GPU node."""
    args = ["--level", level] if level else []
    container = {
        "name": "probe", "image": image,
        "command": ["python3", "-c", Path(smoke.__file__).read_text(), *args],
        "env": [{"name": "NODE_NAME", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
                {"name": "PAI_PROBE_IMAGE", "value": image}],
        "resources": {"limits": {"nvidia.com/gpu": "1"}, "requests": {"cpu": "1", "memory": "4Gi"}},
        "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
    }
    pod: dict[str, Any] = {
        "restartPolicy": "Never", "nodeSelector": node_selector or GPU_NODES, "containers": [container],
        "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
        "securityContext": {"seccompProfile": {"type": "RuntimeDefault"}},
    }
    if pull_secret:
        pod["imagePullSecrets"] = [{"name": pull_secret}]
    labels = {"app.kubernetes.io/name": PROBE_JOB, "app.kubernetes.io/part-of": "private-ai-platform"}
    return {
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": PROBE_JOB, "namespace": namespace, "labels": labels},
        "spec": {"backoffLimit": 0, "activeDeadlineSeconds": 900, "ttlSecondsAfterFinished": 3600,
                 "template": {"metadata": {"labels": labels}, "spec": pod}},
    }
