"""Every bundled stack plans, and everything it emits validates against the real schemas."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from conftest import STACKS, objects, releases
from schemas import validate_helm_values, validate_object, validate_topology_variables

from program.offline import Registered, load_stack_file, stack_path

Runner = Callable[[str], list[Registered]]


def test_the_design_stacks_exist() -> None:
    assert {"dev", "vks-prod", "vks-cluster", "airgap"} <= set(STACKS)


@pytest.mark.parametrize("stack", STACKS)
def test_stack_emits_only_valid_objects(stack: str, run_stack: Runner) -> None:
    records = run_stack(stack)
    version = load_stack_file(stack_path(stack)).values["pai:cluster"]
    kubernetes_version = __import__("json").loads(version)["kubernetesVersion"]
    emitted = objects(records)
    assert emitted, f"{stack} emits no Kubernetes objects"
    for obj in emitted:
        validate_object(obj, kubernetes_version)
        if obj["kind"] == "Cluster":  # a VKS workload cluster: its ClusterClass variables too
            validate_topology_variables(obj)
    for release in releases(records):
        validate_helm_values(release["chart"].rsplit("/", 1)[-1], release["version"], release.get("values", {}))


@pytest.mark.parametrize("stack", STACKS)
def test_every_resource_is_named_under_its_component(stack: str, run_stack: Runner) -> None:
    """Style rule: every child is named `<component>-<role>` and parented, so URNs stay stable."""
    records = run_stack(stack)
    for record in records:
        if record.parent is None:
            continue
        parent_name = record.parent.split("::", 1)[1]
        assert record.name.startswith(f"{parent_name}-"), f"{record.key} is not named under {record.parent}"
