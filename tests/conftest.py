"""Test harness: run the Pulumi program fresh per test under Pulumi's mocks and validate what it emits."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from registries import RegistryProcess

from components import namespaces
from program.deploy import deploy
from program.offline import RecordingMonitor, Registered, StackConfig, load_stack_file, run_offline, stack_path
from program.plan import HELM_RELEASE, is_kubernetes_object

REPO = Path(__file__).resolve().parents[1]
STACKS = sorted(p.name.removeprefix("Pulumi.").removesuffix(".yaml") for p in (REPO / "stacks").glob("Pulumi.*.yaml"))

Program = Callable[..., list[Registered]]
# Where Harbor and what serves it run: they pull from pai:registry.bootstrap when the mirror is on that Harbor.
HARBOR_CHAIN_NAMESPACES = frozenset({namespaces.HARBOR, namespaces.CERT_MANAGER, namespaces.GATEWAY,
                                     namespaces.AI_GATEWAY})


def stack_config(values: dict[str, Any], secrets: dict[str, str] | None = None, stack: str = "test") -> StackConfig:
    """A config as the engine hands it over: objects as JSON text, `pai:` prefixed, secrets listed."""
    config = StackConfig(stack=stack, source=f"stacks/Pulumi.{stack}.yaml")
    for key, value in {**values, **(secrets or {})}.items():
        config.values[f"pai:{key}"] = value if isinstance(value, str) else json.dumps(value)
    config.secret_keys = [f"pai:{k}" for k in secrets or {}]
    return config


def minimal(**overrides: Any) -> dict[str, Any]:
    """The smallest valid config, with top-level keys replaced by `overrides`."""
    base: dict[str, Any] = {
        "cluster": {"target": "generic", "kubernetesVersion": "1.33"},
        "tenants": [{"name": "team-a"}],
    }
    return {**base, **overrides}


def supervised(**overrides: Any) -> dict[str, Any]:
    """A pai:supervisor block (a CPU pool and a GPU pool), with keys replaced by `overrides`."""
    base: dict[str, Any] = {
        "namespace": "ml-team", "cluster": "pai-gpu", "release": "v1.33.3---vmware.1-fips-vkr.1",
        "clusterClass": "builtin-generic-v3.4.0", "storageClass": "vsan-default-storage-policy",
        "controlPlane": {"replicas": 3, "vmClass": "best-effort-large"},
        "nodePools": [{"name": "cpu", "replicas": 3, "vmClass": "best-effort-2xlarge"},
                      {"name": "gpu", "replicas": 2, "vmClass": "vgpu-h100-80c", "gpu": True}],
    }
    return {**base, **overrides}


# The config of a VKS workload cluster with a GPU pool (datacenter driver: no licensing secrets needed), and the
# Supervisor's kubeconfig.
SUPERVISED = minimal(cluster={"target": "vks", "kubernetesVersion": "1.33"}, supervisor=supervised(),
                     gpu={"driver": {"mode": "datacenter"}, "products": ["NVIDIA-H100-80GB-HBM3"]})
SUPERVISOR_SECRET = {"supervisorKubeconfig": "apiVersion: v1\nkind: Config\n"}


def with_supervisor(**fields: Any) -> dict[str, Any]:
    """SUPERVISED with pai:supervisor keys replaced by `fields`."""
    return {**SUPERVISED, "supervisor": supervised(**fields)}


@pytest.fixture
def run_program() -> Program:
    """Run the program on a config given as dicts; returns the resources it registered."""

    def run(values: dict[str, Any], secrets: dict[str, str] | None = None,
            monitor: RecordingMonitor | None = None) -> list[Registered]:
        return run_offline(deploy, stack_config(values, secrets), monitor)

    return run


@pytest.fixture
def run_stack() -> Callable[[str], list[Registered]]:
    """Run the program on one of the stacks in stacks/."""

    def run(name: str) -> list[Registered]:
        return run_offline(deploy, load_stack_file(stack_path(name), name))

    return run


def objects(records: list[Registered]) -> list[dict[str, Any]]:
    """The Kubernetes objects among the registered resources."""
    return [r.inputs for r in records if is_kubernetes_object(r)]


def of_kind(records: list[Registered], kind: str) -> list[dict[str, Any]]:
    return [o for o in objects(records) if o["kind"] == kind]


def cluster_of(records: list[Registered]) -> dict[str, Any]:
    """The one Cluster API Cluster the program registered."""
    (cluster,) = of_kind(records, "Cluster")
    return cluster


def bundled_cluster(api_version: str) -> dict[str, Any]:
    """The Cluster the program writes for stacks/Pulumi.vks-cluster.yaml with pai:supervisor.apiVersion
    `api_version`."""
    config = load_stack_file(stack_path("vks-cluster"), "vks-cluster")
    supervisor = json.loads(config.values["pai:supervisor"])
    config.values["pai:supervisor"] = json.dumps({**supervisor, "apiVersion": api_version})
    return cluster_of(run_offline(deploy, config))


def releases(records: list[Registered]) -> list[dict[str, Any]]:
    return [r.inputs for r in records if r.type == HELM_RELEASE]


def strings(value: Any) -> Iterator[str]:
    """Every string anywhere in a nested value."""
    if isinstance(value, dict):
        for item in value.values():
            yield from strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from strings(item)
    elif isinstance(value, str):
        yield value


def at(values: dict[str, Any], path: str) -> Any:
    """The value at a dotted path of nested dicts."""
    for key in path.split("."):
        values = values[key]
    return values


class DependencyMonitor(RecordingMonitor):
    """Also keeps, by resource name, the names of the resources each one waits for."""

    def __init__(self) -> None:
        super().__init__()
        self.deps: dict[str, set[str]] = {}

    def RegisterResource(self, request: Any) -> Any:
        self.deps[request.name] = {urn.rsplit("::", 1)[-1] for urn in request.dependencies}
        return super().RegisterResource(request)


StartRegistry = Callable[..., RegistryProcess]


@pytest.fixture
def start_registry(tmp_path: Path) -> Iterator[StartRegistry]:
    started: list[RegistryProcess] = []

    def start(name: str, auth: dict[str, object] | None = None) -> RegistryProcess:
        registry = RegistryProcess(tmp_path / name, auth=auth).start()
        started.append(registry)
        return registry

    yield start
    for registry in started:
        registry.stop()


@pytest.fixture(autouse=True)
def paictl_state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each test's own record of bundle imports (what a delta may mount from), never the user's."""
    state = tmp_path / "paictl-state"
    monkeypatch.setenv("PAICTL_STATE_DIR", str(state))
    return state
