"""ServingRuntimes: the four ClusterServingRuntimes, valid against the reference CRD, serving on the shared port
with probes, resource defaults, non-root security contexts and metrics, with images from the catalog (on the
mirror in air-gap mode)."""

from __future__ import annotations

from typing import Any

import pytest
from conftest import Program, minimal, of_kind, releases
from schemas import crd_storage_version, validate_object

from components import namespaces
from components.catalog import CATALOG
from components.config import ENGINE_FORMATS
from components.serving_runtimes import RUNTIMES

MIRROR = "harbor.example.com/mirror"
KSERVE_RELEASE = "kubernetes:helm.sh/v3:Release::platform-kserve-release"
IMAGE_KEYS = {"vllm": "vllm", "infinity": "infinity", "infinityCpu": "infinity-cpu", "llamacpp": "llamacpp"}


def runtimes(run_program: Program, **values: Any) -> dict[str, dict[str, Any]]:
    return {r["metadata"]["name"]: r for r in of_kind(run_program(minimal(**values)), "ClusterServingRuntime")}


def container(runtime: dict[str, Any]) -> dict[str, Any]:
    found: list[dict[str, Any]] = runtime["spec"]["containers"]
    assert len(found) == 1
    return found[0]


def test_one_valid_runtime_per_server(run_program: Program) -> None:
    found = runtimes(run_program)
    assert set(found) == {"pai-vllm", "pai-infinity", "pai-infinity-cpu", "pai-llamacpp"}
    for runtime in found.values():
        assert runtime["apiVersion"] == "serving.kserve.io/" + crd_storage_version("serving.kserve.io",
                                                                                   "ClusterServingRuntime")
        validate_object(runtime, "1.33")


def test_runtimes_wait_for_kserve(run_program: Program) -> None:
    records = [r for r in run_program(minimal()) if r.type.endswith(":ClusterServingRuntime")]
    assert len(records) == 4 and all(KSERVE_RELEASE in r.dependencies for r in records)


@pytest.mark.parametrize("key", sorted(RUNTIMES))
def test_model_formats_encode_the_engine_rule(run_program: Program, key: str) -> None:
    runtime = runtimes(run_program)[RUNTIMES[key].name]
    formats = [f["name"] for f in runtime["spec"]["supportedModelFormats"]]
    assert formats == list(ENGINE_FORMATS[RUNTIMES[key].engine])
    assert runtime["metadata"]["labels"][namespaces.ENGINE_LABEL] == RUNTIMES[key].engine


def test_llamacpp_serves_gguf_only_and_vllm_no_gguf(run_program: Program) -> None:
    found = runtimes(run_program)
    assert [f["name"] for f in found["pai-llamacpp"]["spec"]["supportedModelFormats"]] == ["gguf"]
    assert "gguf" not in [f["name"] for f in found["pai-vllm"]["spec"]["supportedModelFormats"]]


@pytest.mark.parametrize("name", [r.name for r in RUNTIMES.values()])
def test_port_probes_metrics_and_resources(run_program: Program, name: str) -> None:
    runtime = runtimes(run_program)[name]
    spec = container(runtime)
    assert spec["ports"] == [{"name": namespaces.SERVING_PORT_NAME, "containerPort": namespaces.SERVING_PORT,
                              "protocol": "TCP"}]
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert spec[probe]["httpGet"] == {"path": "/health", "port": namespaces.SERVING_PORT}, probe
    assert runtime["spec"]["annotations"] == {"prometheus.kserve.io/port": str(namespaces.SERVING_PORT),
                                              "prometheus.kserve.io/path": "/metrics"}
    assert {"cpu", "memory"} <= set(spec["resources"]["requests"])
    assert spec["resources"]["limits"]["memory"] == spec["resources"]["requests"]["memory"]
    # The server is told to listen on the shared port.
    words = spec["command"] + spec["args"]
    assert words[words.index("--port") + 1] == str(namespaces.SERVING_PORT)


@pytest.mark.parametrize("name", [r.name for r in RUNTIMES.values()])
def test_non_root_and_restricted(run_program: Program, name: str) -> None:
    context = container(runtimes(run_program)[name])["securityContext"]
    assert context["runAsNonRoot"] is True and context["runAsUser"] > 0
    # The modelcar runs as this UID too, so the server can read the model it mounts.
    kserve = next(r for r in releases(run_program(minimal())) if r["chart"].endswith("/kserve-resources"))
    assert context["runAsUser"] == kserve["values"]["kserve"]["storage"]["uidModelcar"]
    assert context["allowPrivilegeEscalation"] is False
    assert context["capabilities"] == {"drop": ["ALL"]}
    assert context["seccompProfile"] == {"type": "RuntimeDefault"}


def test_server_commands(run_program: Program) -> None:
    found = {name: container(r) for name, r in runtimes(run_program).items()}
    vllm = found["pai-vllm"]
    assert vllm["command"] == ["vllm", "serve"] and vllm["args"][0] == "/mnt/models"
    assert {"name": "dshm", "mountPath": "/dev/shm"} in vllm["volumeMounts"]
    for name, device in (("pai-infinity", "cuda"), ("pai-infinity-cpu", "cpu")):
        args = found[name]["args"]
        assert found[name]["command"] == ["infinity_emb", "v2"]
        assert args[args.index("--device") + 1] == device
        assert args[args.index("--url-prefix") + 1] == "/v1"  # OpenAI paths: /v1/embeddings, /v1/models
    llamacpp = found["pai-llamacpp"]
    assert "--metrics" in llamacpp["args"]  # llama-server serves /metrics only when asked
    assert "/app/llama-server" in llamacpp["command"][2] and '"$@"' in llamacpp["command"][2]


def test_images_come_from_the_catalog(run_program: Program) -> None:
    found = runtimes(run_program)
    for key, runtime in RUNTIMES.items():
        assert container(found[runtime.name])["image"] == CATALOG.image(IMAGE_KEYS[key]).ref
        assert "imagePullSecrets" not in found[runtime.name]["spec"]


def test_an_explicit_runtime_image_is_used(run_program: Program) -> None:
    image = "registry.example.com/serving/vllm-openai:v0.20.0-custom"
    assert container(runtimes(run_program, runtimes={"vllm": {"image": image}})["pai-vllm"])["image"] == image


def test_air_gap_runs_every_runtime_from_the_mirror(run_program: Program) -> None:
    found = runtimes(run_program, registry={"mirror": MIRROR, "pullSecret": "mirror-pull"})
    for key, runtime in RUNTIMES.items():
        upstream = CATALOG.image(IMAGE_KEYS[key]).ref
        assert container(found[runtime.name])["image"] == f"{MIRROR}/{upstream.split('/', 1)[1]}"
        assert found[runtime.name]["spec"]["imagePullSecrets"] == [{"name": "mirror-pull"}]
        validate_object(found[runtime.name], "1.33")
