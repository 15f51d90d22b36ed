"""The gallery sits above the program layer: nothing below it (components, validation, airgap, the offline runner)
imports `models`; only paictl and the stack entry point do."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
BELOW = [*(REPO / "components").rglob("*.py"), *(REPO / "validation").rglob("*.py"), *(REPO / "airgap").rglob("*.py"),
         REPO / "paictl" / "offline.py", REPO / "paictl" / "plan.py"]


def imported(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module.split(".")[0])
    return found


@pytest.mark.parametrize("path", BELOW, ids=lambda p: str(p.relative_to(REPO)))
def test_nothing_below_the_gallery_imports_it(path: Path) -> None:
    assert "models" not in imported(path)


def test_models_imports_only_what_is_below_it() -> None:
    for path in (REPO / "models").glob("*.py"):
        assert imported(path) & {"paictl", "stacks"} == set(), path
