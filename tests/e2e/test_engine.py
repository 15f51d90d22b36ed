"""The program under the real engine: the Pulumi CLI and the Kubernetes provider built by scripts/tools.sh, a file
backend, a throw-away stack with real secrets, against a real kube-apiserver, in air-gap mode with its charts on a
local registry. preview, up, a preview that shows no changes, an update that only adds, and destroy.

The program runs through the Automation API as an inline program: the Python language host
(pulumi-language-python) is not served by the Go module proxy, and an inline program needs none. The charts are
stand-ins (tests/e2e/charts.py: the real charts' names, versions and CRDs, no operators): this proves the engine,
the provider, the OCI chart path and our objects against the real CRD schemas, not the operators. Harbor is left
out: its provider (pulumiverse-harbor) talks to a Harbor API that cannot run here. Nothing becomes ready (no
kubelet, no controllers): a ResourceQuota is marked skipAwait, and the garbage collector's and the namespace
controller's last steps on deletion are done by this test (collect_deleted)."""

from __future__ import annotations

import json
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pulumi
import pytest
from kubernetes import client
from kubernetes.dynamic import DynamicClient
from kubernetes.dynamic.exceptions import NotFoundError
from pulumi import automation as auto

from e2e.cluster import TOOLS, ApiServer, tools_missing
from program.deploy import deploy
from program.offline import Registered, StackConfig, run_offline
from program.plan import is_kubernetes_object

TENANT_GROUPS = ("team-a-ml",)
PROVIDER_VERSION = "v4.25.0"  # the provider scripts/tools.sh builds, and the pulumi-kubernetes SDK pin
SECRETS = {  # real secrets, set with `pulumi config set --secret`: none may show in the engine's output or state
    "grafanaAdminPassword": "e2e-grafana-Zq81", "mlflowDbPassword": "e2e-db-Xv02",
    "mlflowAdminPassword": "e2e-mlflow-Wc93", "s3AccessKeyId": "E2EACCESSKEY74",
    "s3SecretAccessKey": "e2e-s3-secret-Pm65", "mirrorPullUsername": "e2e-puller",
    "mirrorPullPassword": "e2e-pull-Ks56",
}
TEAM_A = {"name": "team-a", "deployers": [{"kind": "Group", "name": "team-a-ml"}],
          "quota": {"cpu": "16", "memory": "64Gi"}}
TEAM_B = {"name": "team-b", "deployers": [{"kind": "Group", "name": "team-b-ml"}],
          "quota": {"cpu": "8", "memory": "32Gi"}}


def model(name: str, tenant: str, host: str) -> dict[str, Any]:
    return {"name": name, "routingName": f"qwen/{name}", "type": "completion", "format": "gguf",
            "source": f"oci://{host}/models/{name}:q4-k-m", "tenant": tenant}


def stack_values(host: str, tenants: list[dict[str, Any]], models: list[dict[str, Any]]) -> dict[str, Any]:
    """The e2e stack: air gap on the local registry, Kueue, monitoring, MLflow on external stores; no Harbor."""
    return {
        "cluster": {"target": "generic", "kubernetesVersion": "1.33",
                    "ingress": {"className": "envoy", "domain": "pai.e2e.example.internal"}},
        "registry": {"mirror": f"{host}/mirror", "pullSecret": "mirror-pull"},
        "kueue": {"cohort": "pai"},
        "monitoring": {"retention": "7d", "storageSize": "20Gi"},
        "mlflow": {"database": {"host": "postgres.e2e.example.internal", "name": "mlflow",
                                "authName": "mlflow_auth", "user": "mlflow"},
                   "artifacts": {"endpoint": "https://s3.e2e.example.internal", "bucket": "mlflow-artifacts"}},
        "tenants": tenants,
        "models": models,
    }


def mock_run(values: dict[str, Any]) -> list[Registered]:
    """The resources the program registers for `values` under mocks."""
    config = StackConfig(stack="e2e", source="stacks/Pulumi.e2e.yaml")
    config.values = {f"pai:{k}": json.dumps(v) for k, v in values.items()}
    config.values |= {f"pai:{k}": v for k, v in {**SECRETS, "kubeconfig": "placeholder"}.items()}
    config.secret_keys = [f"pai:{k}" for k in [*SECRETS, "kubeconfig"]]
    return run_offline(deploy, config)


def keys(records: list[Registered]) -> set[str]:
    return {f"{r.type}::{r.name}" for r in records}


def still_there(api: client.ApiClient, records: list[Registered]) -> list[str]:
    """The program's Kubernetes objects the API server still holds."""
    dynamic = DynamicClient(api)  # type: ignore[no-untyped-call]
    found = []
    for obj in (r.inputs for r in records if is_kubernetes_object(r)):
        meta = obj["metadata"]
        try:
            dynamic.resources.get(api_version=obj["apiVersion"], kind=obj["kind"]).get(
                name=meta["name"], namespace=meta.get("namespace"))
        except NotFoundError:
            continue
        found.append(f"{obj['kind']} {meta.get('namespace', '')}/{meta['name']}")
    return found


@contextmanager
def collect_deleted(api: client.ApiClient, records: list[Registered]) -> Iterator[None]:
    """While the block runs, finish deletions as the controllers that do not run here would: the garbage
    collector drops `foregroundDeletion` from an object of ours being deleted (none has dependents), and the
    namespace controller finalizes a namespace being deleted (the engine deletes its contents first)."""
    dynamic = DynamicClient(api)  # type: ignore[no-untyped-call]
    kinds = {(r.inputs["apiVersion"], r.inputs["kind"]) for r in records if is_kubernetes_object(r)}
    core = client.CoreV1Api(api)
    stop = threading.Event()

    def loop() -> None:
        while not stop.wait(0.2):
            for api_version, kind in sorted(kinds):
                resource = dynamic.resources.get(api_version=api_version, kind=kind)
                for obj in resource.get().to_dict()["items"]:
                    meta = obj["metadata"]
                    if not meta.get("deletionTimestamp"):
                        continue
                    if "foregroundDeletion" in (meta.get("finalizers") or []):
                        resource.patch(name=meta["name"], namespace=meta.get("namespace"),
                                       body={"metadata": {"finalizers": None}},
                                       content_type="application/merge-patch+json")
                    elif kind == "Namespace" and (obj.get("spec") or {}).get("finalizers"):
                        core.replace_namespace_finalize(meta["name"], client.V1Namespace(
                            metadata=client.V1ObjectMeta(name=meta["name"]),
                            spec=client.V1NamespaceSpec(finalizers=[])))

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(10)


# What the provider waits for and what would never come without controllers: a ResourceQuota's status (the quota
# controller). The e2e stack marks them `pulumi.com/skipAwait`; everything else is awaited as in production.
WAITS_ON_A_CONTROLLER = {"kubernetes:core/v1:ResourceQuota"}


def skip_await(args: pulumi.ResourceTransformArgs) -> pulumi.ResourceTransformResult | None:
    if args.type_ not in WAITS_ON_A_CONTROLLER:
        return None
    metadata: dict[str, Any] = dict(args.props["metadata"])  # type: ignore[arg-type]  # a plain dict here
    metadata["annotations"] = {**(metadata.get("annotations") or {}), "pulumi.com/skipAwait": "true"}
    return pulumi.ResourceTransformResult({**args.props, "metadata": metadata}, args.opts)


def program() -> None:
    """The program as `stacks/__main__.py` runs it, with skip_await."""
    pulumi.runtime.register_resource_transform(skip_await)
    deploy()


def test_preview_up_update_destroy(api_server: ApiServer, chart_registry: tuple[str, Path], tmp_path: Path) -> None:
    missing = tools_missing("pulumi", "pulumi-resource-kubernetes")
    if missing:
        pytest.skip(f"{', '.join(missing)} not in .tools/bin: run scripts/tools.sh")
    host, ca_file = chart_registry
    home, state = tmp_path / "pulumi-home", tmp_path / "state"
    state.mkdir()
    env = {"PULUMI_HOME": str(home), "PULUMI_CONFIG_PASSPHRASE": "e2e-passphrase", "SSL_CERT_FILE": str(ca_file),
           "PULUMI_SKIP_UPDATE_CHECK": "true", "PULUMI_DIY_BACKEND_NO_LEGACY_WARNING": "true",
           **{f"HELM_{kind}_HOME": str(tmp_path / "helm" / kind.lower()) for kind in ("CACHE", "CONFIG", "DATA")}}
    subprocess.run([str(TOOLS / "pulumi"), "plugin", "install", "resource", "kubernetes", PROVIDER_VERSION,
                    "--file", str(TOOLS / "pulumi-resource-kubernetes")],
                   env={"PATH": "/usr/bin:/bin", **env}, check=True, capture_output=True)
    stack = auto.create_stack("e2e", project_name="pai", program=program, opts=auto.LocalWorkspaceOptions(
        work_dir=str(tmp_path), pulumi_home=str(home), env_vars=env, secrets_provider="passphrase",
        pulumi_command=auto.PulumiCommand(root=str(TOOLS.parent)),
        project_settings=auto.ProjectSettings(name="pai", runtime="python",
                                              backend=auto.ProjectBackend(url=f"file://{state}"))))
    first = stack_values(host, [TEAM_A], [model("qwen-chat", "team-a", host)])
    second = stack_values(host, [TEAM_A, TEAM_B],
                          [model("qwen-chat", "team-a", host), model("qwen-coder", "team-b", host)])
    stack.set_all_config({f"pai:{k}": auto.ConfigValue(json.dumps(v)) for k, v in first.items()})
    for key, value in {**SECRETS, "kubeconfig": api_server.admin_kubeconfig.read_text()}.items():
        stack.set_config(f"pai:{key}", auto.ConfigValue(value, secret=True))  # pulumi config set --secret
    outputs: list[str] = []

    before, after = mock_run(first), mock_run(second)
    expected = len(before) + 1  # and the stack itself
    preview = stack.preview(on_output=outputs.append)
    assert preview.change_summary == {"create": expected}

    up = stack.up(on_output=outputs.append)
    assert up.summary.resource_changes == {"create": expected}

    again = stack.preview(on_output=outputs.append)
    assert again.change_summary == {"same": expected}

    added = keys(after) - keys(before)
    stack.set_all_config({f"pai:{k}": auto.ConfigValue(json.dumps(v)) for k, v in second.items()})
    update = stack.up(on_output=outputs.append)
    changes = {str(op): count for op, count in (update.summary.resource_changes or {}).items()}
    assert changes.get("create") == len(added), changes
    assert not {"replace", "delete", "create-replacement", "delete-replaced"} & set(changes), changes

    with collect_deleted(api_server.api(), after):
        destroyed = stack.destroy(on_output=outputs.append)
    assert destroyed.summary.resource_changes == {"delete": expected + len(added)}
    assert still_there(api_server.api(), after) == []

    state_text = "".join(p.read_text() for p in state.rglob("*.json"))
    leaked = [key for key, value in SECRETS.items() if value in "".join(outputs) or value in state_text]
    assert not leaked, f"secrets in the engine's output or state: {leaked}"
