"""What the rules share: sources of a check, unverified marks, skips, node groups."""

from __future__ import annotations

from collections.abc import Iterable

from components.catalog import CATALOG
from validation.facts import Facts, NodeFacts, Record
from validation.matrix import Matrix, OperatorRelease, Row, version_key
from validation.rules.registry import _NOTE, _SEP, NOT_APPLICABLE, Check


def _sources(facts: Facts, records: Iterable[Record], rows: Iterable[Row | None] = ()) -> tuple[str, ...]:
    """Origins of the facts used (with where each source read) and the sources of the matrix rows."""
    seen: list[str] = []
    for record in records:
        where = facts.sources.get(record.origin)
        text = f"{record.origin}: {where}" if where else record.origin
        if text not in seen:
            seen.append(text)
    for row in rows:
        if row is not None and _cite(row) not in seen:
            seen.append(_cite(row))
    return tuple(seen)


def _cite(row: Row) -> str:
    """A matrix row as a check names it: "matrix: <table> <key>: <source>" (the report splits it)."""
    return f"matrix: {row.label}: {row.source}"


def _unverified(rows: Iterable[Row | None], *marks: str | None) -> str:
    """The note a message carries when it rests on a matrix value marked unverified: the rows marked, and any
    other unverified value the caller names (its source or what it is)."""
    marked = [r.source for r in rows if r is not None and r.unverified] + [m for m in marks if m]
    if marked:
        return f" (rests on matrix data marked unverified){_NOTE}{_SEP.join(dict.fromkeys(marked))}{_NOTE}"
    return ""


def _mark(unverified: bool, what: str | None) -> str | None:
    return what if unverified else None


def _skip(check_id: str, subject: str, missing: str) -> list[Check]:
    return [Check(check_id, "skip", subject, f"not checked: {missing}")]


def _vgpu_not_applicable(check_id: str, subject: str, facts: Facts) -> list[Check] | None:
    """A vGPU check on a stack whose driver is the data-center driver, or that has no GPU driver: not applicable
    (None where it may apply: vgpu mode, or a preinstalled driver that may be a vGPU guest driver)."""
    driver = facts.driver
    if driver is None:
        return [Check(check_id, "skip", subject, f"{NOT_APPLICABLE}: no GPU driver is configured or was read")]
    if driver.mode == "datacenter":
        return [Check(check_id, "skip", subject, f"{NOT_APPLICABLE}: the driver mode is datacenter, not vgpu")]
    return None


def _ge(a: str, b: str) -> bool:
    return version_key(a) >= version_key(b)


def _node_list(nodes: list[NodeFacts], limit: int = 3) -> str:
    """The first few node names, and how many there are when there are more."""
    names = [n.name for n in nodes]
    return ", ".join(names[:limit]) + (f", ... ({len(names)} nodes)" if len(names) > limit else "")


def _driver_groups(facts: Facts) -> dict[str, list[NodeFacts]]:
    """Nodes with a known driver version, grouped by it."""
    groups: dict[str, list[NodeFacts]] = {}
    for node in facts.nodes:
        if node.driver_version:
            groups.setdefault(node.driver_version, []).append(node)
    return groups


def _operator_release(facts: Facts, m: Matrix) -> OperatorRelease | None:
    """The matrix row of the GPU Operator release in force (deployed, else planned); None where none is known."""
    operator = facts.operator_version
    return m.operator(operator.version) if operator else None


def _installable(m: Matrix) -> list[OperatorRelease]:
    """The GPU Operator releases this project can install (components/catalog.yaml) that the matrix knows, oldest
    first: the only ones a fix may name."""
    pinned = CATALOG.chart("gpu-operator").versions
    return sorted((r for r in m.operator_releases if r.version in pinned), key=lambda r: version_key(r.version))


def _none_installable(what: str, m: Matrix) -> str:
    names = ", ".join(r.version for r in _installable(m))
    return f"no GPU Operator release this project installs ({names}) {what}"


def _products(nodes: Iterable[NodeFacts]) -> list[str]:
    return sorted({p for n in nodes for p in n.products})
