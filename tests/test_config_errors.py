"""Bad stack configs: each stops the program before any resource, with a message naming file, key and rule."""

from __future__ import annotations

from typing import Any

import pytest
from conftest import SUPERVISED, SUPERVISOR_SECRET, Program, minimal, stack_config, with_supervisor
from hypothesis import given, settings
from hypothesis import strategies as st

from components.config import ConfigError, PlatformConfig
from program.deploy import deploy
from program.offline import RecordingMonitor, run_offline

FILE = "stacks/Pulumi.test.yaml"
GPU = {"driver": {"mode": "datacenter"}, "products": ["NVIDIA-L40S"]}
KUEUE_TENANTS = [{"name": "team-a", "quota": {"gpus": {"NVIDIA-L40S": 4}}},
                 {"name": "team-b", "quota": {"gpus": {"NVIDIA-L40S": 4}}}]
GPU_TENANTS = [{"name": "team-a", "quota": {"gpus": {"NVIDIA-L40S": 2}}}]
DOMAIN = {"target": "generic", "kubernetesVersion": "1.33", "ingress": {"domain": "pai.example.com"}}
HARBOR_SECRET = {"harborAdminPassword": "x"}
SEED = "registry.example.com/seed"
AIRGAP = {"mirror": "harbor.example.com/mirror", "pullSecret": "mirror-pull"}
MIRROR_ACCOUNT = {"mirrorPullUsername": "puller", "mirrorPullPassword": "pw"}
MLFLOW_SECRETS = {k: "x" for k in ("mlflowDbPassword", "mlflowAdminPassword", "s3AccessKeyId", "s3SecretAccessKey")}


def model(**fields: Any) -> dict[str, Any]:
    base = {"name": "m", "routingName": "acme/m", "type": "completion", "format": "gguf",
            "source": "oci://harbor.example.com/models/m:v1", "tenant": "team-a"}
    return {**base, **fields}


CASES: list[tuple[str, dict[str, Any], dict[str, str], str]] = [
    ("unknown top-level key", minimal(clustr={}), {},
     "pai:clustr: unknown key; allowed: pai:cluster, pai:gpu, pai:registry, pai:s3, pai:runtimes, pai:models, "
     "pai:tenants, pai:kueue, pai:monitoring, pai:harbor, pai:gallery, pai:mlflow, pai:supervisor, pai:validation, "
     "pai:harborAdminPassword, pai:nlsClientToken, pai:grafanaAdminPassword, pai:mlflowDbPassword, "
     "pai:s3AccessKeyId, pai:s3SecretAccessKey, pai:mlflowAdminPassword, pai:kubeconfig, pai:mirrorPullUsername, "
     "pai:mirrorPullPassword, pai:supervisorKubeconfig"),
    ("unknown nested key", minimal(cluster={"target": "vks", "kubernetesVersion": "1.33", "ingres": {}}), {},
     "pai:cluster.ingres: unknown key; allowed: target, kubernetesVersion, ingress, storageClass"),
    ("missing required key", {"tenants": []}, {}, "pai:cluster: required key is missing"),
    ("bad enum", minimal(cluster={"target": "eks", "kubernetesVersion": "1.33"}), {},
     "pai:cluster.target: 'eks' is not one of vks, generic"),
    ("bad Kubernetes version", minimal(cluster={"target": "vks", "kubernetesVersion": "v1.33"}), {},
     "pai:cluster.kubernetesVersion: 'v1.33' is not a Kubernetes minor version like 1.33"),
    ("bad engine", minimal(models=[model(engine="vlm")]), {},
     "pai:models[0].engine: 'vlm' is not one of vllm, infinity, llamacpp"),
    ("wrong type", minimal(models=[model(gpus="two")]), {}, "pai:models[0].gpus: 'two' is not an integer"),
    ("bad driver version", minimal(gpu={**GPU, "driver": {"mode": "datacenter", "version": "580.95"}}), {},
     "pai:gpu.driver.version: '580.95' is not a driver version like 580.95.05"),
    ("operator version outside the catalog", minimal(gpu={**GPU, "operator": {"version": "v26.7"}}), {},
     "pai:gpu.operator.version: 'v26.7' is not one of v25.10.1, v25.3.0, v26.3.3, v26.7.0"),
    ("node OS without a driver image", minimal(gpu={**GPU, "driver": {"mode": "datacenter", "os": "photon5"}}), {},
     "pai:gpu.driver.os: 'photon5' is not one of ubuntu20.04, ubuntu22.04, ubuntu24.04, rhel8.10, rhel9.4, rhel9.6"),
    ("duplicate model name", minimal(models=[model(), model(routingName="acme/other")]), {},
     "pai:models[1].name: 'm' is used by more than one model"),
    ("duplicate routing name", minimal(models=[model(), model(name="other")]), {},
     "pai:models[1].routingName: 'acme/m' is used by more than one model"),
    ("safetensors on llama.cpp", minimal(models=[model(format="safetensors", engine="llamacpp")]), {},
     "pai:models[0].format: model 'm': llamacpp serves gguf, not safetensors "
     "(a completion model with no GPU needs GGUF weights)"),
    ("completion with no GPU and no GGUF", minimal(models=[model(format="safetensors")]), {},
     "pai:models[0].format: model 'm': llamacpp serves gguf, not safetensors "
     "(a completion model with no GPU needs GGUF weights)"),
    ("engine against the rule", minimal(gpu=GPU, tenants=GPU_TENANTS, models=[model(
        type="embedding", engine="vllm", gpus=1, format="safetensors")]), {},
     "pai:models[0].engine: model 'm' is an embedding model on GPU: the engine rule serves it with infinity, not vllm"),
    ("GPUs without pai:gpu", minimal(models=[model(gpus=1, format="safetensors")]), {},
     "pai:models[0].gpus: model 'm' asks for 1 GPU(s) but pai:gpu is not configured"),
    ("unknown tenant", minimal(models=[model(tenant="nobody")]), {},
     "pai:models[0].tenant: 'nobody' is not one of the tenants in pai:tenants (team-a)"),
    ("latest tag", minimal(runtimes={"vllm": {"image": "docker.io/vllm/vllm-openai:latest"}}), {},
     "pai:runtimes.vllm.image: 'docker.io/vllm/vllm-openai:latest' uses the tag 'latest': pin a version"),
    ("bad model source", minimal(models=[model(source="https://huggingface.co/m")]), {},
     "pai:models[0].source: 'https://huggingface.co/m' is not oci://HOST/PATH:TAG or oci://HOST/PATH@sha256:DIGEST, "
     "s3://BUCKET/PATH, pvc://CLAIM/PATH or mlflow://MODEL@ALIAS"),
    ("mlflow source without an alias", minimal(models=[model(source="mlflow://chat")]), {},
     "pai:models[0].source: 'mlflow://chat' is not oci://HOST/PATH:TAG or oci://HOST/PATH@sha256:DIGEST, "
     "s3://BUCKET/PATH, pvc://CLAIM/PATH or mlflow://MODEL@ALIAS"),
    ("forwardCompatible set by hand", minimal(gpu={**GPU, "forwardCompatible": True}), {},
     "pai:gpu.forwardCompatible: unknown key; allowed: operator, driver, hosts, products, migStrategy, "
     "nodeSelector, tolerations"),
    ("GPU quota for an unknown product", minimal(gpu=GPU, tenants=[{"name": "team-a", "quota": {"gpus": {"H100": 1}}}]),
     {}, "pai:tenants[0].quota.gpus.H100: 'H100' is not a GPU product in pai:gpu.products (NVIDIA-L40S)"),
    ("bad tenant name", minimal(tenants=[{"name": "Team_A"}]), {},
     "pai:tenants[0].name: 'Team_A' is not a DNS label (lowercase letters, digits and '-', at most 63 characters)"),
    ("vgpu without its token", minimal(gpu={**GPU, "driver": {"mode": "vgpu", "version": "580.95.05",
                                                               "image": "harbor.example.com/nvidia/vgpu-driver"}}),
     {}, "pai:nlsClientToken: vgpu mode needs the NLS client configuration token "
         "(`pulumi config set --secret nlsClientToken ...`)"),
    ("S3 source without the store", minimal(models=[model(source="s3://models/m")]),
     {"s3AccessKeyId": "AKIA", "s3SecretAccessKey": "KEY"},
     "pai:s3: model 'm' reads s3://models/m: set pai:s3.endpoint (and region, useHttps, verifySsl as needed)"),
    ("S3 source without its secret key", minimal(s3={"endpoint": "minio.example.com:9000"},
                                                 models=[model(source="s3://models/m")]),
     {"s3AccessKeyId": "AKIA"},
     "pai:s3SecretAccessKey: model 'm' reads s3://models/m: set it with "
     "`pulumi config set --secret s3SecretAccessKey ...`"),
    ("bad S3 endpoint", minimal(s3={"endpoint": "https://minio.example.com"}), {},
     "pai:s3.endpoint: 'https://minio.example.com' is not a host with an optional port, like minio.example.com:9000"),
    ("unknown runtime key", minimal(runtimes={"infinity-cpu": {"image": "infinity-cpu"}}), {},
     "pai:runtimes.infinity-cpu: unknown key; allowed: vllm, infinity, infinityCpu, llamacpp"),
    ("vLLM with no GPU", minimal(models=[model(format="safetensors", engine="vllm")]), {},
     "pai:models[0].engine: model 'm' is a completion model on CPU: the engine rule serves it with llamacpp, not vllm"),
    ("embedding model in GGUF", minimal(models=[model(type="embedding")]), {},
     "pai:models[0].format: model 'm': infinity serves safetensors, onnx, not gguf"),
    ("monitoring without the Grafana password", minimal(monitoring={}), {},
     "pai:grafanaAdminPassword: pai:monitoring needs the Grafana admin password "
     "(`pulumi config set --secret grafanaAdminPassword ...`)"),
    ("bad retention", minimal(monitoring={"retention": "15 days"}), {"grafanaAdminPassword": "pw"},
     "pai:monitoring.retention: '15 days' is not a Prometheus duration like 15d or 12h"),
    ("latency threshold between buckets", minimal(monitoring={"slo": {"completionSeconds": 3}}),
     {"grafanaAdminPassword": "pw"},
     "pai:monitoring.slo.completionSeconds: 3.0 is not a bucket bound of vllm:e2e_request_latency_seconds "
     "(0.3, 0.5, 0.8, 1, 1.5, 2, 2.5, 5, 10, 15, 20, 30, 40, 50, 60, 120, 240, 480, 960, 1920, 7680)"),
    ("embedding threshold between buckets", minimal(monitoring={"slo": {"embeddingSeconds": 0.25}}),
     {"grafanaAdminPassword": "pw"},
     "pai:monitoring.slo.embeddingSeconds: 0.25 is not a bucket bound of http_request_duration_seconds "
     "(0.1, 0.5, 1)"),
    ("availability objective out of range", minimal(monitoring={"slo": {"availability": 1}}),
     {"grafanaAdminPassword": "pw"},
     "pai:monitoring.slo.availability: input should be less than 1 (got 1)"),
    ("unknown monitoring key", minimal(monitoring={"retentionDays": 15}), {"grafanaAdminPassword": "pw"},
     "pai:monitoring.retentionDays: unknown key; allowed: retention, storageSize, slo"),
    ("bad cohort name", minimal(kueue={"cohort": "All GPUs"}), {},
     "pai:kueue.cohort: 'All GPUs' is not a DNS label (lowercase letters, digits and '-', at most 63 characters)"),
    ("Harbor without its admin password", minimal(cluster=DOMAIN, harbor={}), {},
     "pai:harborAdminPassword: Harbor needs its admin password (`pulumi config set --secret harborAdminPassword ...`)"),
    ("Harbor with no host and no domain", minimal(harbor={}), HARBOR_SECRET,
     "pai:harbor.host: required when pai:cluster.ingress.domain is not set"),
    ("Harbor expose type", minimal(cluster=DOMAIN, harbor={"expose": "ingress"}), HARBOR_SECRET,
     "pai:harbor.expose: 'ingress' is not one of gateway, clusterIP"),
    ("Harbor and MLflow on one hostname",
     minimal(cluster=DOMAIN, harbor={"host": "tools.example.com"}, mlflow={"host": "tools.example.com"}),
     {**HARBOR_SECRET, **MLFLOW_SECRETS},
     "pai:mlflow.host: 'tools.example.com' is also pai:harbor.host; the Gateway needs a hostname per service"),
    ("Harbor on the model API's hostname",
     minimal(cluster=DOMAIN, harbor={"host": "pai.example.com"}, models=[{
         "name": "chat", "routingName": "acme/chat", "type": "completion", "format": "gguf",
         "source": "oci://registry.example.com/models/chat:v1", "tenant": "team-a"}]), HARBOR_SECRET,
     "pai:harbor.host: 'pai.example.com' is also pai:cluster.ingress.domain; the Gateway needs a hostname per "
     "service"),
    ("Harbor volume size", minimal(cluster=DOMAIN, harbor={"storage": {"registry": "2TB"}}), HARBOR_SECRET,
     "pai:harbor.storage.registry: '2TB' is not a Kubernetes quantity like 16, 500m or 64Gi"),
    ("gallery projects share a name", minimal(cluster=DOMAIN, harbor={}, gallery={"prod": {"name": "dev-models"}}),
     HARBOR_SECRET, "pai:gallery.prod.name: 'dev-models' is used by more than one gallery project"),
    ("gallery project is the mirror project",
     minimal(cluster=DOMAIN, harbor={}, registry={"mirror": "harbor.pai.example.com/charts", "bootstrap": SEED}),
     HARBOR_SECRET, "pai:gallery.mirror: 'charts' is used by more than one gallery project"),
    ("mirror on this stack's Harbor without a bootstrap registry",
     minimal(cluster=DOMAIN, harbor={}, registry={"mirror": "harbor.pai.example.com/mirror"}), HARBOR_SECRET,
     "pai:registry.mirror: harbor.pai.example.com/mirror is on this stack's own Harbor, which cannot serve its own "
     "images, nor those of cert-manager and the Gateway in front of it, before it runs: set pai:registry.bootstrap "
     "to a registry outside this stack that holds them"),
    ("bootstrap registry on this stack's Harbor",
     minimal(cluster=DOMAIN, harbor={}, registry={"mirror": "harbor.pai.example.com/mirror",
                                                  "bootstrap": "harbor.pai.example.com/seed"}), HARBOR_SECRET,
     "pai:registry.bootstrap: harbor.pai.example.com/seed is this stack's own Harbor; it must be a registry outside "
     "this stack"),
    ("bootstrap registry with a mirror elsewhere",
     minimal(cluster=DOMAIN, harbor={}, registry={"mirror": "registry.example.com/mirror", "bootstrap": SEED}),
     HARBOR_SECRET, "pai:registry.bootstrap: only for a pai:registry.mirror on this stack's own Harbor "
                    "(harbor.pai.example.com); registry.example.com/mirror is not"),
    ("bootstrap registry without Harbor or a mirror", minimal(registry={"bootstrap": SEED}), {},
     "pai:registry.bootstrap: only for a pai:registry.mirror on this stack's own Harbor (pai:harbor is not set); "
     "pai:registry.mirror is not set"),
    ("model from a project outside the gallery",
     minimal(cluster=DOMAIN, harbor={}, models=[model(source="oci://harbor.pai.example.com/prod-modles/m:approved")]),
     HARBOR_SECRET, "pai:models[0].source: 'prod-modles' is not a gallery project on this Harbor "
                    "(dev-models, prod-models)"),
    ("gallery quota", minimal(cluster=DOMAIN, harbor={}, gallery={"dev": {"name": "dev-models", "quotaGb": 0}}),
     HARBOR_SECRET, "pai:gallery.dev.quotaGb: input should be greater than or equal to 1 (got 0)"),
    ("gallery member role", minimal(cluster=DOMAIN, harbor={}, gallery={
        "dev": {"name": "dev-models", "members": [{"group": "ml", "role": "owner"}]}}), HARBOR_SECRET,
     "pai:gallery.dev.members[0].role: 'owner' is not one of projectadmin, maintainer, developer, guest, limitedguest"),
    ("MLflow without its secrets", minimal(mlflow={}), {"mlflowDbPassword": "x"},
     "pai:mlflowAdminPassword: MLflow needs it (`pulumi config set --secret mlflowAdminPassword ...`)\n"
     f"{FILE}: pai:s3AccessKeyId: MLflow needs it (`pulumi config set --secret s3AccessKeyId ...`)\n"
     f"{FILE}: pai:s3SecretAccessKey: MLflow needs it (`pulumi config set --secret s3SecretAccessKey ...`)"),
    ("MLflow bundled stores in air-gap mode", minimal(mlflow={}, registry={"mirror": "harbor.example.com/mirror"}),
     MLFLOW_SECRETS,
     "pai:mlflow.database.host: air-gap mode needs an external PostgreSQL (the chart's bundled PostgreSQL image is "
     "not in the catalog)"),
    ("MLflow S3 endpoint", minimal(mlflow={"artifacts": {"endpoint": "s3.example.com"}}), MLFLOW_SECRETS,
     "pai:mlflow.artifacts.endpoint: 's3.example.com' is not an http(s) URL like https://s3.example.com"),
    ("MLflow unknown key", minimal(mlflow={"database": {"hostname": "pg"}}), MLFLOW_SECRETS,
     "pai:mlflow.database.hostname: unknown key; allowed: host, port, name, authName, user, size"),
    ("mirror username without its password", minimal(registry=AIRGAP), {"mirrorPullUsername": "puller"},
     "pai:mirrorPullPassword: set together with pai:mirrorPullUsername: the mirror's pull Secret needs both "
     "(`pulumi config set --secret mirrorPullPassword ...`)"),
    ("mirror password without its username", minimal(registry=AIRGAP), {"mirrorPullPassword": "pw"},
     "pai:mirrorPullUsername: set together with pai:mirrorPullPassword: the mirror's pull Secret needs both "
     "(`pulumi config set --secret mirrorPullUsername ...`)"),
    ("mirror account without a mirror", minimal(), MIRROR_ACCOUNT,
     "pai:registry.mirror: pai:mirrorPullUsername and pai:mirrorPullPassword are an account on the air-gap mirror: "
     "set the mirror (host/prefix) too\n"
     f"{FILE}: pai:registry.pullSecret: pai:mirrorPullUsername and pai:mirrorPullPassword make the platform create "
     "the mirror's pull Secret: set its name too (e.g. mirror-pull)"),
    ("mirror account without the pull secret's name", minimal(registry={"mirror": AIRGAP["mirror"]}),
     {"mirrorPullUsername": "puller"},
     "pai:mirrorPullPassword: set together with pai:mirrorPullUsername: the mirror's pull Secret needs both "
     "(`pulumi config set --secret mirrorPullPassword ...`)\n"
     f"{FILE}: pai:registry.pullSecret: pai:mirrorPullUsername and pai:mirrorPullPassword make the platform create "
     "the mirror's pull Secret: set its name too (e.g. mirror-pull)"),
    ("GPU endpoints over the tenant's ResourceQuota",
     minimal(gpu=GPU, tenants=[{"name": "team-a", "quota": {"gpus": {"NVIDIA-L40S": 8}}}],
             models=[model(format="safetensors", gpus=4, replicas=3)]), {},
     "pai:tenants[0].quota.gpus: tenant 'team-a' may request 8 GPUs (its ResourceQuota) but its endpoints ask for 12 "
     "(m 4 x 3, GPUs x replicas): raise the quota or lower gpus or replicas"),
    ("GPU endpoint over the Kueue cohort's quota", minimal(gpu=GPU, kueue={}, tenants=KUEUE_TENANTS,
                                                           models=[model(format="safetensors", gpus=16)]), {},
     "pai:models[0].gpus: model 'm' asks for 16 GPUs per replica; Kueue admits at most 8 NVIDIA-L40S in cohort 'pai' "
     "(the sum of every tenant's pai:tenants[].quota.gpus.NVIDIA-L40S): raise a quota or lower gpus"),
    ("VKS volumes without a storage class",
     minimal(cluster={"target": "vks", "kubernetesVersion": "1.33"}, monitoring={}), {"grafanaAdminPassword": "pw"},
     "pai:cluster.storageClass: target vks with volumes (pai:monitoring): name the vSphere storage class they go on "
     "(kubectl get storageclass); a VKS cluster has a default only when its Cluster sets "
     "vsphereOptions.persistentVolumes.defaultStorageClass"),
    ("VKS GPU nodes on RHEL", minimal(cluster={"target": "vks", "kubernetesVersion": "1.33"},
                                      gpu={**GPU, "driver": {"mode": "datacenter", "os": "rhel9.4"}}), {},
     "pai:gpu.driver.os: target vks: 'rhel9.4' is not a VKS node image; VKS GPU nodes run the Ubuntu node image "
     "(ubuntu20.04, ubuntu22.04, ubuntu24.04)"),
    ("more GPUs than a node has", minimal(gpu=GPU, models=[model(format="safetensors", gpus=65)]), {},
     "pai:models[0].gpus: input should be less than or equal to 64 (got 65)"),
    ("a negative GPU quota", minimal(gpu=GPU, tenants=[{"name": "team-a", "quota": {"gpus": {"NVIDIA-L40S": -1}}}]),
     {}, "pai:tenants[0].quota.gpus.NVIDIA-L40S: input should be greater than or equal to 0 (got -1)"),
    ("gallery keeps too many artifacts", minimal(cluster=DOMAIN, harbor={}, gallery={"retainLast": 1001}),
     HARBOR_SECRET, "pai:gallery.retainLast: input should be less than or equal to 1000 (got 1001)"),
    ("licensing outside vgpu", minimal(gpu={**GPU, "driver": {"mode": "datacenter", "licensing": {}}}), {},
     "pai:gpu.driver.licensing: only vgpu mode is licensed, not datacenter"),
    # A VKS workload cluster (pai:supervisor).
    ("ungrouped ClusterClass variable", with_supervisor(variables={"nodePoolLabels": {}}), SUPERVISOR_SECRET,
     "pai:supervisor.variables: 'nodePoolLabels' is an ungrouped variable of tanzukubernetescluster and "
     "builtin-generic-v3.1.0, refused by the grouped classes; use one of osConfiguration, vsphereOptions, kubernetes, "
     "resourceConfiguration, bootstrapAddons, networks, kubeAPIServerFQDNs"),
    ("ClusterClass variable the platform writes", with_supervisor(variables={"vmClass": "x"}), SUPERVISOR_SECRET,
     "pai:supervisor.variables: 'vmClass' is written by the platform from pai:supervisor (vmClass, storageClass, "
     "nodePools); set it there"),
    ("unknown ClusterClass variable", with_supervisor(variables={"vmclass": "x"}), SUPERVISOR_SECRET,
     "pai:supervisor.variables: 'vmclass' is not one of osConfiguration, vsphereOptions, kubernetes, "
     "resourceConfiguration, bootstrapAddons, networks, kubeAPIServerFQDNs"),
    ("ClusterClass with ungrouped variables", with_supervisor(clusterClass="builtin-generic-v3.1.0"),
     SUPERVISOR_SECRET, "pai:supervisor.clusterClass: 'builtin-generic-v3.1.0' takes the ungrouped topology "
     "variables; the platform writes the grouped variables of builtin-generic-v3.2.0 and later"),
    ("the legacy ClusterClass", with_supervisor(clusterClass="tanzukubernetescluster"), SUPERVISOR_SECRET,
     "pai:supervisor.clusterClass: 'tanzukubernetescluster' takes the ungrouped topology variables; the platform "
     "writes the grouped variables of builtin-generic-v3.2.0 and later"),
    ("release not a VKS release name", with_supervisor(release="v1.33.3+vmware.1"), SUPERVISOR_SECRET,
     "pai:supervisor.release: 'v1.33.3+vmware.1' is not a VKS release name like v1.33.3---vmware.1-fips-vkr.1"),
    ("pai:gpu without a GPU pool",
     with_supervisor(nodePools=[{"name": "cpu", "replicas": 1, "vmClass": "best-effort-large"}]),
     SUPERVISOR_SECRET, "pai:supervisor.nodePools: pai:gpu is set but no node pool has gpu: true; add a pool whose "
     "vmClass carries a vGPU profile"),
    ("a GPU pool without pai:gpu", {k: v for k, v in SUPERVISED.items() if k != "gpu"}, SUPERVISOR_SECRET,
     "pai:supervisor.nodePools: 'gpu' has gpu: true but pai:gpu is not set; set pai:gpu (driver mode vgpu on VKS) "
     "or drop gpu: true"),
    ("Kubernetes version other than the release's", {**SUPERVISED, "cluster": {"target": "vks",
                                                                              "kubernetesVersion": "1.32"}},
     SUPERVISOR_SECRET, "pai:cluster.kubernetesVersion: '1.32' differs from the Kubernetes of pai:supervisor.release "
     "'v1.33.3---vmware.1-fips-vkr.1' (1.33): set the same minor"),
    ("a Supervisor cluster on a generic target", {**SUPERVISED, "cluster": {"target": "generic",
                                                                           "kubernetesVersion": "1.33"}},
     SUPERVISOR_SECRET, "pai:cluster.target: 'generic': pai:supervisor creates a VKS cluster; set vks"),
    ("no Supervisor kubeconfig", SUPERVISED, {},
     "pai:supervisorKubeconfig: pai:supervisor creates the cluster through the Supervisor's kubeconfig (a vSphere "
     "namespace user's) (`pulumi config set --secret supervisorKubeconfig ...`)"),
    ("a kubeconfig beside the Supervisor's", SUPERVISED, {**SUPERVISOR_SECRET, "kubeconfig": "x"},
     "pai:kubeconfig: with pai:supervisor the platform's kubeconfig is read from the Cluster's Secret "
     "pai-gpu-kubeconfig; remove pai:kubeconfig"),
    ("two control plane replicas", with_supervisor(controlPlane={"replicas": 2, "vmClass": "best-effort-large"}),
     SUPERVISOR_SECRET, "pai:supervisor.controlPlane.replicas: 2 is not one of 1, 3"),
    ("node pool names repeat", with_supervisor(nodePools=[{"name": "gpu", "replicas": 1, "vmClass": "a",
                                                             "gpu": True}] * 2),
     SUPERVISOR_SECRET, "pai:supervisor.nodePools: node pool names repeat: gpu"),
]


@pytest.mark.parametrize(("values", "secrets", "message"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_config_is_refused_before_any_resource(values: dict[str, Any], secrets: dict[str, str],
                                                   message: str) -> None:
    monitor = RecordingMonitor()
    with pytest.raises(ConfigError) as caught:
        run_offline(deploy, stack_config(values, secrets), monitor)
    assert str(caught.value) == f"{FILE}: {message}"
    assert monitor.records == []


@pytest.mark.parametrize("key", ["harborAdminPassword", "mirrorPullPassword"])
def test_plain_text_secret_is_refused(key: str) -> None:
    config = stack_config(minimal())
    config.values[f"pai:{key}"] = "hunter2"
    monitor = RecordingMonitor()
    with pytest.raises(ConfigError) as caught:
        run_offline(deploy, config, monitor)
    assert str(caught.value) == (f"{FILE}: pai:{key}: must be a secret: set it with "
                                 f"`pulumi config set --secret {key} ...`")
    assert "hunter2" not in str(caught.value)
    assert monitor.records == []


def test_every_problem_is_reported_at_once() -> None:
    values = minimal(cluster={"target": "eks", "kubernetesVersion": "1.33"}, models=[model(engine="vlm")])
    with pytest.raises(ConfigError) as caught:
        run_offline(deploy, stack_config(values))
    assert str(caught.value).splitlines() == [
        f"{FILE}: pai:cluster.target: 'eks' is not one of vks, generic",
        f"{FILE}: pai:models[0].engine: 'vlm' is not one of vllm, infinity, llamacpp",
    ]


@pytest.mark.parametrize(("given", "parsed"), [
    ("docker.io/vllm/vllm-openai:v0.20.0", "docker.io/vllm/vllm-openai:v0.20.0"),
    ("vllm/vllm-openai:v0.20.0", "docker.io/vllm/vllm-openai:v0.20.0"),
    ("ghcr.io/ggml-org/llama.cpp@sha256:" + "a" * 64, "ghcr.io/ggml-org/llama.cpp@sha256:" + "a" * 64),
    ("registry.example.com:5000/x/latest-build:v1", "registry.example.com:5000/x/latest-build:v1"),
])
def test_pinned_runtime_images_are_accepted_in_full(given: str, parsed: str) -> None:
    """Any tag but `latest`, or a digest, is a pin; the reference is kept as the container tools read it."""
    cfg: list[PlatformConfig] = []
    run_offline(lambda: cfg.append(PlatformConfig.from_pulumi()),
                stack_config(minimal(runtimes={"llamacpp": {"image": given}})))
    assert cfg[0].runtimes.image("llamacpp") == parsed


def test_the_bounds_themselves_are_accepted() -> None:
    values = minimal(cluster=DOMAIN, harbor={}, gallery={"retainLast": 1},
                     models=[model(replicas=100), model(name="n", routingName="acme/n", replicas=1)])
    cfg: list[PlatformConfig] = []
    run_offline(lambda: cfg.append(PlatformConfig.from_pulumi()), stack_config(values, HARBOR_SECRET))
    assert (cfg[0].gallery.retainLast, [m.replicas for m in cfg[0].models]) == (1, [100, 1])


def test_an_endpoint_that_borrows_from_the_cohort_fits() -> None:
    """Under Kueue a tenant's queue borrows idle quota of the cohort: 8 GPUs per replica fit two quotas of 4."""
    config = stack_config(minimal(gpu=GPU, kueue={}, tenants=KUEUE_TENANTS, models=[model(
        format="safetensors", gpus=8, replicas=2)]))
    assert run_offline(PlatformConfig.from_pulumi, config) is not None


def test_valid_config_registers_resources(run_program: Program) -> None:
    assert run_program(minimal(models=[model()]))


@settings(max_examples=60, deadline=None)
@given(kind=st.sampled_from(["completion", "embedding"]), gpus=st.integers(0, 2),
       fmt=st.sampled_from(["safetensors", "gguf", "onnx"]),
       engine=st.sampled_from([None, "vllm", "infinity", "llamacpp"]))
def test_engine_rule_holds_for_every_combination(kind: str, gpus: int, fmt: str, engine: str | None) -> None:
    """A model parses exactly when it is served by the rule's engine in a format that engine loads; otherwise it is
    refused with one line naming the model. Both ways: refusing every model fails as surely as accepting every one."""
    fields: dict[str, Any] = {"type": kind, "gpus": gpus, "format": fmt}
    if engine:
        fields["engine"] = engine
    config = stack_config(minimal(gpu=GPU, tenants=GPU_TENANTS, models=[model(**fields)]))
    expected = "infinity" if kind == "embedding" else ("vllm" if gpus else "llamacpp")
    loads = {"infinity": ("safetensors", "onnx"), "vllm": ("safetensors",), "llamacpp": ("gguf",)}[expected]
    if engine in (None, expected) and fmt in loads:
        parsed: list[PlatformConfig] = []
        run_offline(lambda: parsed.append(PlatformConfig.from_pulumi()), config)
        assert parsed[0].models[0].resolved_engine == expected
        return
    with pytest.raises(ConfigError) as caught:
        run_offline(PlatformConfig.from_pulumi, config)
    (line,) = str(caught.value).splitlines()
    assert line.startswith(f"{FILE}: pai:models[0].") and "model 'm'" in line
