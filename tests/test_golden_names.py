"""A guard against accidental replacements on `pulumi up`: every bundled stack's resources by the part of their URN
the program decides (the parent type chain, the type and the name), against a golden list in tests/golden/.

Pulumi identifies a resource by its URN: a new name, type or parent is a different resource, so `pulumi up`
deletes the old one and creates the new (a Namespace and everything in it, a PVC and its data). A diff here shows
such a change in review. When it is meant, keep the existing resource with `aliases=` in its ResourceOptions (the
old name or parent) and regenerate the list:

    PAI_UPDATE_GOLDEN=1 .venv/bin/python -m pytest tests/test_golden_names.py
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import REPO

from program.offline import Registered

GOLDEN = Path(__file__).resolve().parent / "golden"
STACKS = sorted(p.name.removeprefix("Pulumi.").removesuffix(".yaml") for p in (REPO / "stacks").glob("Pulumi.*.yaml"))


def urn_names(records: list[Registered]) -> list[str]:
    """`parentType$...$type::name` of every resource, as in its URN after `project::`, sorted."""
    by_key = {r.key: r for r in records}

    def chain(record: Registered) -> str:
        types, parent = [record.type], record.parent
        while parent in by_key:
            types.append(by_key[parent].type)
            parent = by_key[parent].parent
        return "$".join(reversed(types))

    return sorted(f"{chain(r)}::{r.name}" for r in records)


def test_a_new_parent_is_a_new_urn() -> None:
    child = Registered("kubernetes:core/v1:Namespace", "ns", "pai:a:A::a", True, {})
    parents = [Registered("pai:a:A", "a", None, False, {}), Registered("pai:b:B", "a", None, False, {})]
    moved = Registered("kubernetes:core/v1:Namespace", "ns", "pai:b:B::a", True, {})
    assert urn_names([parents[0], child]) != urn_names([parents[1], moved])
    assert "pai:a:A$kubernetes:core/v1:Namespace::ns" in urn_names([parents[0], child])


@pytest.mark.parametrize("stack", STACKS)
def test_resource_urns_are_the_golden_ones(stack: str, run_stack: Callable[[str], list[Registered]]) -> None:
    names = urn_names(run_stack(stack))
    path = GOLDEN / f"{stack}.txt"
    if os.environ.get("PAI_UPDATE_GOLDEN"):
        path.write_text("\n".join(names) + "\n")
    golden = path.read_text().splitlines()
    gone, new = sorted(set(golden) - set(names)), sorted(set(names) - set(golden))
    assert not gone and not new, (
        f"stack {stack}: `pulumi up` would delete {gone} and create {new}. A rename meant to keep the resource "
        "needs aliases= in its ResourceOptions; then regenerate: PAI_UPDATE_GOLDEN=1 .venv/bin/python -m pytest "
        "tests/test_golden_names.py")
