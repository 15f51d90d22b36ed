"""pai:cluster.target: what a VKS cluster needs that a generic one does not (config.Cluster's docstring)."""

from __future__ import annotations

from typing import Any

from conftest import Program, minimal, of_kind

from components import namespaces

PSA = "pod-security.kubernetes.io/enforce"
DOMAIN = "pai.example.com"
PLATFORM = {namespaces.CERT_MANAGER, namespaces.KSERVE, namespaces.GATEWAY, namespaces.AI_GATEWAY, namespaces.KUEUE,
            namespaces.HARBOR, namespaces.MLFLOW}
PRIVILEGED = {namespaces.GPU_OPERATOR, namespaces.MONITORING}
SECRETS = {k: "x" for k in ("harborAdminPassword", "grafanaAdminPassword", "mlflowDbPassword", "mlflowAdminPassword",
                            "s3AccessKeyId", "s3SecretAccessKey")}


def stack(target: str) -> dict[str, Any]:
    return minimal(
        cluster={"target": target, "kubernetesVersion": "1.33", "ingress": {"domain": DOMAIN},
                 "storageClass": "vsan-default-storage-policy"},
        gpu={"driver": {"mode": "datacenter"}, "products": ["NVIDIA-L40S"]},
        kueue={}, monitoring={}, harbor={}, mlflow={},
        models=[{"name": "chat", "routingName": "acme/chat", "type": "completion", "format": "gguf",
                 "source": "oci://registry.example.com/models/chat:v1", "tenant": "team-a"}])


def enforced(run_program: Program, target: str) -> dict[str, str | None]:
    labels = {ns["metadata"]["name"]: ns["metadata"].get("labels", {})
              for ns in of_kind(run_program(stack(target), SECRETS), "Namespace")}
    return {name: labels[name].get(PSA) for name in PLATFORM | PRIVILEGED}


def test_vks_namespaces_enforce_baseline_in_place_of_the_supervisors_restricted(run_program: Program) -> None:
    vks, generic = enforced(run_program, "vks"), enforced(run_program, "generic")
    assert {n: vks[n] for n in PLATFORM} == dict.fromkeys(PLATFORM, "baseline")
    assert {n: generic[n] for n in PLATFORM} == dict.fromkeys(PLATFORM, None)  # the cluster's default applies
    assert {n: vks[n] for n in PRIVILEGED} == {n: generic[n] for n in PRIVILEGED} == dict.fromkeys(PRIVILEGED,
                                                                                                  "privileged")
