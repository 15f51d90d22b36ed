"""ModelEndpoints: one InferenceService per model in its tenant's namespace, on the engine rule's runtime, with the
endpoint contract (labels, routing-name annotation, served model name), GPU requests and node selection, and
storage from oci:// (modelcar), s3:// (storage Secret and ServiceAccount, keys kept secret) or pvc://."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from conftest import Program, minimal, of_kind
from schemas import validate_object

from components import namespaces
from program.offline import Registered

GPU = {"driver": {"mode": "datacenter"}, "products": ["NVIDIA-L40S"]}
S3_STORE = {"endpoint": "minio.example.com:9000", "region": "eu-west-1", "useHttps": False}
S3_KEYS = {"s3AccessKeyId": "AKIA-VISIBLE-ID", "s3SecretAccessKey": "very-secret-key"}
Runner = Callable[[str], list[Registered]]


def model(**fields: Any) -> dict[str, Any]:
    base = {"name": "m", "routingName": "acme/m", "type": "completion", "format": "gguf",
            "source": "oci://harbor.example.com/models/m:v1", "tenant": "team-a"}
    return {**base, **fields}


def endpoints(records: list[Registered]) -> dict[str, dict[str, Any]]:
    return {i["metadata"]["name"]: i for i in of_kind(records, "InferenceService")}


def served(predictor: dict[str, Any], flag: str) -> str:
    args: list[str] = predictor["model"]["args"]
    return args[args.index(flag) + 1]


def test_vks_prod_serves_each_model_on_its_engine(run_stack: Runner) -> None:
    found = endpoints(run_stack("vks-prod"))
    placed = {n: (i["metadata"]["namespace"], i["spec"]["predictor"]["model"]["runtime"]) for n, i in found.items()}
    assert placed == {"gpt-oss-20b": ("research", "pai-vllm"), "bge-m3": ("apps", "pai-infinity"),
                      "qwen-cpu": ("apps", "pai-llamacpp")}
    gpt = found["gpt-oss-20b"]["spec"]["predictor"]
    assert gpt["model"]["resources"]["requests"]["nvidia.com/gpu"] == "1"
    assert gpt["model"]["resources"]["limits"]["nvidia.com/gpu"] == "1"
    # vks-prod runs vGPU VMs: GPU Feature Discovery labels them with the vGPU type, not the board.
    assert gpt["nodeSelector"] == {"nvidia.com/gpu.product": "GRID-H100XM-80C"}
    assert served(gpt, "--served-model-name") == "openai/gpt-oss-20b"
    assert found["bge-m3"]["spec"]["predictor"]["nodeSelector"] == {"nvidia.com/gpu.product": "GRID-L40S-48C"}
    qwen = found["qwen-cpu"]["spec"]["predictor"]
    assert "nvidia.com/gpu" not in json.dumps(qwen["model"]["resources"]) and "nodeSelector" not in qwen
    assert served(qwen, "--alias") == "qwen/qwen2.5-1.5b-instruct"


def test_dev_runs_on_cpu_only(run_stack: Runner) -> None:
    found = endpoints(run_stack("dev"))
    chat, embed = found["qwen-chat"]["spec"]["predictor"], found["minilm-embed"]["spec"]["predictor"]
    assert (chat["model"]["runtime"], embed["model"]["runtime"]) == ("pai-llamacpp", "pai-infinity-cpu")
    assert served(embed, "--engine") == "optimum"  # ONNX weights
    assert "nvidia.com/gpu" not in json.dumps(found)


@pytest.mark.parametrize("stack", ["dev", "vks-prod", "vks-cluster", "airgap"])
def test_every_endpoint_keeps_the_contract(run_stack: Runner, stack: str) -> None:
    records = run_stack(stack)
    for name, isvc in endpoints(records).items():
        meta, predictor = isvc["metadata"], isvc["spec"]["predictor"]
        engine = meta["labels"][namespaces.ENGINE_LABEL]
        expected = {namespaces.ENGINE_LABEL: engine, namespaces.MODEL_LABEL: name,
                    namespaces.QUEUE_LABEL: namespaces.TENANT_QUEUE}
        assert expected.items() <= meta["labels"].items()
        assert predictor["labels"] == expected  # on the predictor's pods
        routing = meta["annotations"][namespaces.ROUTING_NAME_ANNOTATION]
        assert predictor["annotations"] == {namespaces.ROUTING_NAME_ANNOTATION: routing}
        assert meta["annotations"]["serving.kserve.io/deploymentMode"] == "Standard"
        assert predictor["securityContext"] == {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}}
        flag = "--alias" if engine == "llamacpp" else "--served-model-name"
        assert served(predictor, flag) == routing
        assert predictor["model"]["runtime"].removeprefix("pai-").removesuffix("-cpu") == engine
        validate_object(isvc, "1.33")


def test_endpoints_wait_for_their_namespace_runtime_kserve_and_kueue(run_stack: Runner) -> None:
    records = [r for r in run_stack("vks-prod") if r.type.endswith(":InferenceService")]
    (gpt,) = [r for r in records if r.name == "platform-model-endpoints-gpt-oss-20b"]
    assert set(gpt.dependencies) == {
        "kubernetes:core/v1:Namespace::platform-tenancy-research-namespace",
        "kubernetes:helm.sh/v3:Release::platform-kserve-release",
        "kubernetes:helm.sh/v3:Release::platform-kueue-release",  # its webhooks admit the pods via the queue
        "kubernetes:serving.kserve.io/v1alpha1:ClusterServingRuntime::platform-serving-runtimes-pai-vllm",
        # From the gallery: the tenant's pull Secret and the ServiceAccount that lists it.
        "kubernetes:core/v1:Secret::platform-model-endpoints-research-gallery-pull-secret",
        "kubernetes:core/v1:ServiceAccount::platform-model-endpoints-research-model-service-account",
    }


def test_replicas_and_multi_gpu(run_program: Program) -> None:
    values = minimal(gpu=GPU, models=[model(format="safetensors", gpus=2, replicas=3, product="NVIDIA-L40S")],
                     tenants=[{"name": "team-a", "quota": {"gpus": {"NVIDIA-L40S": 6}}}])
    isvc = endpoints(run_program(values))["m"]
    predictor = isvc["spec"]["predictor"]
    assert (predictor["minReplicas"], predictor["maxReplicas"]) == (3, 3)
    assert isvc["metadata"]["annotations"]["serving.kserve.io/autoscalerClass"] == "none"  # KServe runs minReplicas
    assert served(predictor, "--tensor-parallel-size") == "2"
    assert predictor["tolerations"] == [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]


def test_gpu_endpoints_tolerate_the_gpu_nodes_configured_taints(run_program: Program) -> None:
    dedicated = {"key": "dedicated", "operator": "Equal", "value": "ml", "effect": "NoSchedule"}
    gpu_taint = {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
    values = minimal(gpu={**GPU, "tolerations": [gpu_taint, dedicated]},
                     tenants=[{"name": "team-a", "quota": {"gpus": {"NVIDIA-L40S": 1}}}],
                     models=[model(format="safetensors", gpus=1), model(name="cpu", routingName="acme/cpu")])
    found = endpoints(run_program(values))
    assert found["m"]["spec"]["predictor"]["tolerations"] == [gpu_taint, dedicated]
    assert "tolerations" not in found["cpu"]["spec"]["predictor"]


def test_gpus_without_a_product_select_no_node(run_program: Program) -> None:
    values = minimal(gpu=GPU, models=[model(format="safetensors", gpus=1)],
                     tenants=[{"name": "team-a", "quota": {"gpus": {"NVIDIA-L40S": 1}}}])
    predictor = endpoints(run_program(values))["m"]["spec"]["predictor"]
    assert "nodeSelector" not in predictor and predictor["model"]["runtime"] == "pai-vllm"


def test_pvc_source(run_program: Program) -> None:
    isvc = endpoints(run_program(minimal(models=[model(source="pvc://models/qwen")])))["m"]
    assert isvc["spec"]["predictor"]["model"]["storageUri"] == "pvc://models/qwen"
    assert "serviceAccountName" not in isvc["spec"]["predictor"]


def test_s3_source_reads_its_keys_through_a_service_account(run_program: Program) -> None:
    records = run_program(minimal(s3=S3_STORE, models=[model(source="s3://models/qwen")]), S3_KEYS)
    (secret,) = of_kind(records, "Secret")
    (account,) = of_kind(records, "ServiceAccount")
    assert secret["metadata"]["namespace"] == account["metadata"]["namespace"] == "team-a"
    assert secret["stringData"] == {"AWS_ACCESS_KEY_ID": "[secret]", "AWS_SECRET_ACCESS_KEY": "[secret]"}
    assert secret["metadata"]["annotations"] == {
        "serving.kserve.io/s3-endpoint": "minio.example.com:9000", "serving.kserve.io/s3-usehttps": "0",
        "serving.kserve.io/s3-verifyssl": "1", "serving.kserve.io/s3-region": "eu-west-1"}
    assert account["secrets"] == [{"name": secret["metadata"]["name"]}]
    predictor = endpoints(records)["m"]["spec"]["predictor"]
    assert predictor["serviceAccountName"] == account["metadata"]["name"]
    assert predictor["model"]["storageUri"] == "s3://models/qwen"
    for obj in (secret, account):
        validate_object(obj, "1.33")
    text = json.dumps([r.inputs for r in records])
    assert all(value not in text for value in S3_KEYS.values())


def test_only_tenants_reading_s3_get_the_secret(run_program: Program) -> None:
    values = minimal(s3=S3_STORE, tenants=[{"name": "team-a"}, {"name": "team-b"}],
                     models=[model(source="s3://models/qwen"), model(name="n", routingName="acme/n", tenant="team-b")])
    records = run_program(values, S3_KEYS)
    assert [s["metadata"]["namespace"] for s in of_kind(records, "Secret")] == ["team-a"]
    assert "serviceAccountName" not in endpoints(records)["n"]["spec"]["predictor"]


def test_endpoint_requests_fit_the_dev_tenant_quota(run_stack: Runner) -> None:
    """The dev tenant's quota (16 CPU, 64Gi) holds both endpoints: the runtime defaults are sized for it."""
    found = endpoints(run_stack("dev"))
    cpu = sum(float(i["spec"]["predictor"]["model"]["resources"]["requests"]["cpu"]) for i in found.values())
    memory = sum(int(i["spec"]["predictor"]["model"]["resources"]["requests"]["memory"].removesuffix("Gi"))
                 for i in found.values())
    assert cpu <= 16 and memory <= 64
