"""Checks, the registry of rules and upgrade rules, and running them over a set of facts."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Literal

from validation.facts import Facts
from validation.matrix import Matrix, load_matrix

Status = Literal["pass", "warn", "fail", "skip"]
STATUSES: tuple[Status, ...] = ("pass", "warn", "fail", "skip")
NOT_APPLICABLE = "not applicable"
UNVERIFIED_SOURCE = "unverified: "
# _unverified marks what a message rests on between these; _finished moves it from the message to the sources.
_NOTE, _SEP = "\x00", "\x1f"
_NOTES = re.compile(f"{_NOTE}([^{_NOTE}]*){_NOTE}")
FAILING_PODS = {"CrashLoopBackOff", "ImagePullBackOff", "ErrImagePull", "CreateContainerConfigError", "Error"}


@dataclass(frozen=True)
class Check:
    id: str
    status: Status
    subject: str
    message: str
    fix: str = ""
    sources: tuple[str, ...] = field(default=())


Rule = Callable[[Facts, Matrix], list[Check]]
UpgradeRule = Callable[[Facts, Facts, Matrix], list[Check]]
RULES: dict[str, Rule] = {}
UPGRADE_RULES: dict[str, UpgradeRule] = {}


def rule(check_id: str) -> Callable[[Rule], Rule]:
    def register(fn: Rule) -> Rule:
        @functools.wraps(fn)
        def finished(facts: Facts, m: Matrix) -> list[Check]:
            return [_finished(c) for c in fn(facts, m)]
        RULES[check_id] = finished
        return finished
    return register


def upgrade_rule(check_id: str) -> Callable[[UpgradeRule], UpgradeRule]:
    def register(fn: UpgradeRule) -> UpgradeRule:
        @functools.wraps(fn)
        def finished(current: Facts, target: Facts, m: Matrix) -> list[Check]:
            return [_finished(c) for c in fn(current, target, m)]
        UPGRADE_RULES[check_id] = finished
        return finished
    return register


def _finished(check: Check) -> Check:
    """The research notes an unverified mark rests on leave the message for the sources."""
    notes = [n for found in _NOTES.findall(check.message) for n in found.split(_SEP)]
    if not notes:
        return check
    sources = (*check.sources, *(f"{UNVERIFIED_SOURCE}{n}" for n in notes if f"{UNVERIFIED_SOURCE}{n}"
                                 not in check.sources))
    return replace(check, message=_NOTES.sub("", check.message), sources=tuple(dict.fromkeys(sources)))


def run_checks(facts: Facts, matrix: Matrix | None = None) -> list[Check]:
    """Every rule over one set of facts."""
    m = matrix or load_matrix()
    return [check for fn in RULES.values() for check in fn(facts, m)]


def run_upgrade_checks(current: Facts, target: Facts, matrix: Matrix | None = None) -> list[Check]:
    """The target's own checks, then every upgrade rule of the target against what runs now."""
    m = matrix or load_matrix()
    return run_checks(target, m) + [check for fn in UPGRADE_RULES.values() for check in fn(current, target, m)]


def allow(checks: list[Check], allowed: Iterable[str]) -> list[Check]:
    """Failures of the check ids in `allowed` (pai:validation.allowFailures) downgraded to warnings."""
    ids = set(allowed)
    return [replace(c, status="warn", message=f"{c.message} (failure allowed by pai:validation.allowFailures)")
            if c.status == "fail" and c.id in ids else c for c in checks]


def check_ids() -> list[str]:
    return [*RULES, *UPGRADE_RULES]
