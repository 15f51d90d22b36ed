"""Every object the program writes, for each bundled stack, admitted by a real kube-apiserver with the pinned CRDs
installed (CEL rules, defaulting, immutable fields, namespaces that must exist), and the tenant RBAC it grants
holding for a real non-admin identity. The objects come from the program run under mocks (Helm releases are left
to tests/e2e/test_engine.py, which runs the real engine); this proves what the schema tests cannot: what the
server itself refuses."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException
from kubernetes.dynamic import DynamicClient

from components.kube import DOCKER_CONFIG_JSON, docker_config
from e2e.cluster import TOOLS, ApiServer, install_crds, refused, require_tools
from program.deploy import deploy
from program.offline import SECRET, load_stack_file, run_offline, stack_path
from program.plan import is_kubernetes_object

REPO = Path(__file__).resolve().parents[2]
TENANT_GROUPS = ("team-a-ml",)  # the dev stack's deployers of tenant team-a


def pinned_versions() -> dict[str, str]:
    """Each tool's version as scripts/tools.sh pins it (module_tool/tool NAME MODULE-or-PACKAGE VERSION)."""
    found = re.findall(r"^(?:module_)?tool ([\w-]+) \S+ \\?\s*(v[\w.-]+)", (REPO / "scripts/tools.sh").read_text(),
                       re.M)
    return dict(found)


def stack_objects(stack: str) -> list[dict[str, Any]]:
    """The Kubernetes objects the program writes for a bundled stack, under mocks. The offline run masks secrets
    as `[secret]`, which the server rightly refuses as a `.dockerconfigjson`: a pull secret gets one written as
    the program writes it (test_engine.py writes the real ones)."""
    records = run_offline(deploy, load_stack_file(stack_path(stack), stack))
    found = [r.inputs for r in records if is_kubernetes_object(r)]
    for obj in found:
        if obj.get("type") == DOCKER_CONFIG_JSON and obj["stringData"][".dockerconfigjson"] == SECRET:
            obj["stringData"] = {".dockerconfigjson": docker_config("mirror.example.internal", "puller", "pw")}
    return found


def test_tools_answer_with_the_pinned_versions() -> None:
    pins = pinned_versions()
    answers = {"pulumi": ["version"], "kube-apiserver": ["--version"], "etcd": ["--version"]}
    require_tools(*answers)
    for name, argv in answers.items():
        out = subprocess.run([str(TOOLS / name), *argv], capture_output=True, text=True, check=True).stdout
        assert pins[name].lstrip("v") in out, f"{name} {' '.join(argv)}: {out!r}, pinned {pins[name]}"


@pytest.mark.parametrize("stack", ["dev", "airgap", "vks-prod", "vks-cluster"])
def test_the_server_admits_every_object_of_the_stack(api_server: ApiServer, stack: str) -> None:
    """vks-cluster: its Cluster against the Cluster API CRDs in the vSphere namespace (which a vSphere admin
    creates, not the program), the platform's objects beside it, as if this server were the workload cluster."""
    dynamic = DynamicClient(api_server.api())  # type: ignore[no-untyped-call]
    install_crds(dynamic)
    written = stack_objects(stack)
    vsphere = [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": o["metadata"]["namespace"]}}
               for o in written if o["kind"] == "Cluster"]
    namespaces = vsphere + [o for o in written if o["kind"] == "Namespace"]
    rest = [o for o in written if o["kind"] != "Namespace"]
    errors = [error for obj in namespaces + rest if (error := refused(dynamic, obj))]
    assert not errors, "the API server refused:\n" + "\n".join(errors)


def test_a_tenant_deployer_may_deploy_in_its_namespace_only(api_server: ApiServer) -> None:
    dynamic = DynamicClient(api_server.api())  # type: ignore[no-untyped-call]
    install_crds(dynamic)
    for obj in stack_objects("dev"):
        if obj["kind"] in ("Namespace", "Role", "RoleBinding"):
            assert refused(dynamic, obj) is None
    tenant = client.CoreV1Api(api_server.api(api_server.tenant_kubeconfig))
    secret = client.V1Secret(metadata=client.V1ObjectMeta(name="model-s3"), string_data={"key": "value"})
    assert tenant.create_namespaced_secret("team-a", secret).to_dict()["metadata"]["name"] == "model-s3"
    with pytest.raises(ApiException) as outside:
        tenant.create_namespaced_secret("kube-system", secret)
    assert outside.value.status == 403
    with pytest.raises(ApiException) as escalation:  # its Role does not let it grant itself more
        client.RbacAuthorizationV1Api(api_server.api(api_server.tenant_kubeconfig)).create_namespaced_role(
            "team-a", client.V1Role(metadata=client.V1ObjectMeta(name="more"), rules=[
                client.V1PolicyRule(api_groups=[""], resources=["nodes"], verbs=["*"])]))
    assert escalation.value.status == 403
