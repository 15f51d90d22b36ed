"""The real engine for the end-to-end tests: a throw-away stack of the program as an inline Automation API program
(the Pulumi CLI and the Kubernetes provider from .tools/bin, a file backend, real secrets set as secrets), and the
steps of the controllers that do not run on the test API server.

The program runs as an inline program: the Python language host (pulumi-language-python) is not served by the Go
module proxy, and an inline program needs none."""

from __future__ import annotations

import json
import subprocess
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pulumi
from kubernetes import client
from kubernetes.dynamic import DynamicClient
from kubernetes.dynamic.exceptions import NotFoundError
from pulumi import automation as auto

from e2e.cluster import TOOLS
from program.deploy import deploy
from program.offline import Registered, StackConfig, run_offline
from program.plan import is_kubernetes_object

PROVIDER_VERSION = "v4.25.0"  # the provider scripts/tools.sh builds, and the pulumi-kubernetes SDK pin
# What the provider waits for and what would never come without controllers: a ResourceQuota's status (the quota
# controller). The e2e stacks mark them `pulumi.com/skipAwait`; everything else is awaited as in production.
WAITS_ON_A_CONTROLLER = {"kubernetes:core/v1:ResourceQuota"}


def mock_run(values: dict[str, Any], secrets: dict[str, str]) -> list[Registered]:
    """The resources the program registers for `values` and the secrets' keys under mocks."""
    config = StackConfig(stack="e2e", source="stacks/Pulumi.e2e.yaml")
    config.values = {f"pai:{k}": json.dumps(v) for k, v in values.items()}
    config.values |= {f"pai:{k}": v for k, v in secrets.items()}
    config.secret_keys = [f"pai:{k}" for k in secrets]
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


def skip_await(args: pulumi.ResourceTransformArgs) -> pulumi.ResourceTransformResult | None:
    if args.type_ not in WAITS_ON_A_CONTROLLER:
        return None
    metadata: dict[str, Any] = dict(args.props["metadata"])  # type: ignore[arg-type]  # a plain dict here
    metadata["annotations"] = {**(metadata.get("annotations") or {}), "pulumi.com/skipAwait": "true"}
    return pulumi.ResourceTransformResult({**args.props, "metadata": metadata}, args.opts)


def with_transforms(*transforms: pulumi.ResourceTransform) -> Callable[[], None]:
    """The program as `stacks/__main__.py` runs it, with the e2e stack's transforms registered first."""

    def program() -> None:
        for transform in transforms:
            pulumi.runtime.register_resource_transform(transform)
        deploy()

    return program


def new_stack(tmp_path: Path, ca_file: Path, program: Callable[[], None]) -> tuple[auto.Stack, Path]:
    """A throw-away stack `e2e` of project `pai` on a file backend under tmp_path, with the provider plugin of
    .tools/bin installed; (stack, the backend's state folder). The chart registry's CA is trusted through
    SSL_CERT_FILE."""
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
    return stack, state


def set_values(stack: auto.Stack, values: dict[str, Any]) -> None:
    """`pulumi config set` of each pai: key, as JSON."""
    stack.set_all_config({f"pai:{k}": auto.ConfigValue(json.dumps(v)) for k, v in values.items()})


def set_secrets(stack: auto.Stack, secrets: dict[str, str]) -> None:
    """`pulumi config set --secret` of each pai: key."""
    for key, value in secrets.items():
        stack.set_config(f"pai:{key}", auto.ConfigValue(value, secret=True))


def leaked(secrets: dict[str, str], outputs: list[str], state: Path) -> list[str]:
    """The keys of the secrets whose values show in the engine's output or its state files."""
    state_text = "".join(p.read_text() for p in state.rglob("*.json"))
    text = "".join(outputs)
    return [key for key, value in secrets.items() if value in text or value in state_text]
