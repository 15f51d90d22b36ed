"""Pre-upgrade checks of the Helm releases: what is installed (read by helm through pyhelm3) against what the
stack plans (name, namespace, chart, version, values). Check id `helm-release`, one check per planned release and
per installed release of a planned chart that the plan leaves alone. Values are compared by path only: a message
names the paths that change, never a value (installed values may hold secrets)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from validation.facts import ReleaseFacts
from validation.matrix import version_key
from validation.rules import Check

CHECK = "helm-release"
UNKNOWN = ("[secret]", "[unknown]")  # what the offline plan records for a secret or a value known only on apply
SHOWN = 8  # changed value paths named in a message


def release_checks(installed: list[ReleaseFacts], planned: list[ReleaseFacts]) -> list[Check]:
    """Each planned release against the installed one of the same namespace and name."""
    now = {(r.namespace, r.name): r for r in installed}
    checks = [_check(now.get((p.namespace, p.name)), p) for p in planned]
    planned_keys = {(p.namespace, p.name) for p in planned}
    charts = {p.chart for p in planned}
    for other in installed:
        if other.chart in charts and (other.namespace, other.name) not in planned_keys:
            checks.append(Check(CHECK, "warn", f"release {other.namespace}/{other.name}",
                                f"installed chart {other.chart} {other.version} is not in the plan, which installs "
                                f"the same chart under another name or namespace: both would own its CRDs and "
                                f"cluster-wide objects", "uninstall the old release once the planned one runs",
                                ("cluster: helm",)))
    return checks


def _check(installed: ReleaseFacts | None, planned: ReleaseFacts) -> Check:
    subject = f"release {planned.namespace}/{planned.name}"
    sources = ("cluster: helm", "config: plan")
    if installed is None:
        return Check(CHECK, "pass", subject, f"not installed: a new install of {planned.chart} {planned.version}",
                     sources=sources)
    was = f"{installed.chart} {installed.version}"
    if installed.status.startswith("pending-"):
        return Check(CHECK, "fail", subject, f"installed {was} is {installed.status}: helm refuses another "
                     "operation while one is in progress", "wait for it to finish, or `helm rollback` the release",
                     sources)
    if installed.chart != planned.chart:
        return Check(CHECK, "fail", subject, f"installed chart {installed.chart}, the plan installs chart "
                     f"{planned.chart} under the same release", "uninstall the installed release first", sources)
    if version_key(planned.version) < version_key(installed.version):
        return Check(CHECK, "fail", subject, f"a downgrade: installed {was}, planned {planned.version}",
                     "pin the chart at the installed version or later in components/catalog.yaml", sources)
    changed = sorted(_changed(installed.values, planned.values))
    change = (f"; values change at {', '.join(changed[:SHOWN])}" + (f" and {len(changed) - SHOWN} more"
              if len(changed) > SHOWN else "")) if changed else "; values unchanged"
    step = (f"an upgrade of {was} to {planned.version}" if installed.version != planned.version
            else f"installed {was}, planned the same version")
    if installed.status == "failed":
        return Check(CHECK, "warn", subject, f"installed {was} failed its last install or upgrade; this one retries "
                     f"it ({step}{change})", "read `helm history` for why it failed", sources)
    return Check(CHECK, "pass", subject, step + change, sources=sources)


def _changed(installed: Any, planned: Any, path: str = "") -> Iterator[str]:
    """Value paths whose installed value differs from the planned one (planned secrets and unknowns skipped)."""
    if isinstance(installed, dict) and isinstance(planned, dict):
        for key in sorted(set(installed) | set(planned), key=str):
            yield from _changed(installed.get(key), planned.get(key), f"{path}.{key}" if path else str(key))
    elif planned not in UNKNOWN and installed != planned:
        yield path or "(all)"
