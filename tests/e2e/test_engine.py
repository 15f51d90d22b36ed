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

from pathlib import Path
from typing import Any

from e2e.cluster import ApiServer, require_tools
from e2e.engine import (
    collect_deleted,
    keys,
    leaked,
    mock_run,
    new_stack,
    set_secrets,
    set_values,
    skip_await,
    still_there,
    with_transforms,
)

TENANT_GROUPS = ("team-a-ml",)
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


def test_preview_up_update_destroy(api_server: ApiServer, chart_registry: tuple[str, Path], tmp_path: Path) -> None:
    require_tools("pulumi", "pulumi-resource-kubernetes")
    host, ca_file = chart_registry
    stack, state = new_stack(tmp_path, ca_file, with_transforms(skip_await))
    first = stack_values(host, [TEAM_A], [model("qwen-chat", "team-a", host)])
    second = stack_values(host, [TEAM_A, TEAM_B],
                          [model("qwen-chat", "team-a", host), model("qwen-coder", "team-b", host)])
    set_values(stack, first)
    set_secrets(stack, {**SECRETS, "kubeconfig": api_server.admin_kubeconfig.read_text()})
    outputs: list[str] = []

    secrets = {**SECRETS, "kubeconfig": "placeholder"}
    before, after = mock_run(first, secrets), mock_run(second, secrets)
    expected = len(before) + 1  # and the stack itself
    preview = stack.preview(on_output=outputs.append)
    assert preview.change_summary == {"create": expected}

    up = stack.up(on_output=outputs.append)
    assert up.summary.resource_changes == {"create": expected}

    again = stack.preview(on_output=outputs.append)
    assert again.change_summary == {"same": expected}

    added = keys(after) - keys(before)
    set_values(stack, second)
    update = stack.up(on_output=outputs.append)
    changes = {str(op): count for op, count in (update.summary.resource_changes or {}).items()}
    assert changes.get("create") == len(added), changes
    assert not {"replace", "delete", "create-replacement", "delete-replaced"} & set(changes), changes

    with collect_deleted(api_server.api(), after):
        destroyed = stack.destroy(on_output=outputs.append)
    assert destroyed.summary.resource_changes == {"delete": expected + len(added)}
    assert still_there(api_server.api(), after) == []

    found = leaked(SECRETS, outputs, state)
    assert not found, f"secrets in the engine's output or state: {found}"
