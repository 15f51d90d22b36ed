"""Upgrades: a target stack against what runs now."""

from __future__ import annotations

from validation.facts import Facts
from validation.matrix import Matrix, branch_of, version_key
from validation.rules.cuda import _cuda_checks
from validation.rules.helpers import (
    _driver_groups,
    _installable,
    _mark,
    _node_list,
    _none_installable,
    _skip,
    _sources,
    _unverified,
)
from validation.rules.operator import _operator_kubernetes
from validation.rules.registry import Check, upgrade_rule
from validation.rules.vgpu import _host_guest_checks


@upgrade_rule("upgrade-operator-path")
def upgrade_operator_path(current: Facts, target: Facts, m: Matrix) -> list[Check]:
    """Within a major release or to the next one; never a downgrade."""
    now, then = current.operator_version, target.operator
    if now is None or then is None:
        return _skip("upgrade-operator-path", "gpu-operator", "no current or target GPU Operator release is known")
    subject = f"gpu-operator {now.version} -> {then.version}"
    a, b = version_key(now.version), version_key(then.version)
    sources = _sources(current, [now]) + _sources(target, [then])
    if b < a:
        return [Check("upgrade-operator-path", "fail", subject, f"{then.version} is older than {now.version}: "
                      "downgrades are not supported", "pick a target release at or after the running one", sources)]
    ok = b[0] - a[0] <= 1
    text = f"{m.operator_upgrade_rule} {now.version} -> {then.version}"
    steps = [r.version for r in _installable(m) if version_key(r.version)[0] == a[0] + 1]
    step = (f"upgrade through gpu-operator {steps[-1]} first" if steps else
            f"upgrade through a {a[0] + 1}.x release first; {_none_installable(f'is {a[0] + 1}.x', m)}")
    return [Check("upgrade-operator-path", "pass" if ok else "fail", subject, text, "" if ok else step,
                  (*sources, f"matrix: gpu_operator upgrade_rule: {m.operator_upgrade_rule_source}"))]


@upgrade_rule("upgrade-driver")
def upgrade_driver(current: Facts, target: Facts, m: Matrix) -> list[Check]:
    """A driver change restarts the driver on every GPU node; a branch change is a major upgrade."""
    planned = target.driver.version if target.driver else None
    groups = _driver_groups(current)
    if planned is None or not groups:
        return _skip("upgrade-driver", "driver", "no current or target driver version is known")
    checks = []
    for driver, nodes in groups.items():
        subject = f"driver {driver} -> {planned} on {_node_list(nodes)}"
        sources = _sources(current, nodes) + _sources(target, [target.driver] if target.driver else [])
        if driver == planned:
            checks.append(Check("upgrade-driver", "pass", subject, f"the driver stays at {driver}", "", sources))
        elif branch_of(driver) != branch_of(planned):
            checks.append(Check("upgrade-driver", "warn", subject,
                                f"driver branch change {branch_of(driver)} -> {branch_of(planned)}: every GPU node is "
                                "drained and its driver reloaded",
                                "plan a maintenance window; cordon and drain GPU nodes one at a time "
                                "(driver.upgradePolicy maxUnavailable)", sources))
        else:
            checks.append(Check("upgrade-driver", "warn", subject,
                                f"driver update within {branch_of(driver)}: GPU pods are evicted node by node while "
                                "the driver reloads", "let the operator's upgrade controller roll the nodes", sources))
    return checks


@upgrade_rule("upgrade-runtime-cuda")
def upgrade_runtime_cuda(current: Facts, target: Facts, m: Matrix) -> list[Check]:
    """New runtime images against the drivers that run now: images roll before nodes get a new driver."""
    running = {i.image for i in current.runtime_images}
    changed = [i for i in target.runtime_images if i.image not in running]
    if not changed:
        return [Check("upgrade-runtime-cuda", "pass", "runtime images", "no runtime image changes")]
    return _cuda_checks("upgrade-runtime-cuda", current, changed, m)


@upgrade_rule("upgrade-vgpu-host-guest")
def upgrade_vgpu_host_guest(current: Facts, target: Facts, m: Matrix) -> list[Check]:
    """The target guest driver against the host managers that run now."""
    return _host_guest_checks("upgrade-vgpu-host-guest", current, target, m)


@upgrade_rule("upgrade-operator-kubernetes")
def upgrade_operator_kubernetes(current: Facts, target: Facts, m: Matrix) -> list[Check]:
    """The target GPU Operator release against the Kubernetes version that runs now."""
    if target.operator is None or current.kubernetes is None:
        return _skip("upgrade-operator-kubernetes", "gpu-operator", "no target operator or current Kubernetes "
                     "version is known")
    facts = current.model_copy(update={"sources": {**target.sources, **current.sources}})
    return [_operator_kubernetes("upgrade-operator-kubernetes", facts, target.operator, current.kubernetes, m)]


@upgrade_rule("upgrade-crd-versions")
def upgrade_crd_versions(current: Facts, target: Facts, m: Matrix) -> list[Check]:
    """Every CRD version stored now must still be served by the target operator release."""
    release = m.operator(target.operator.version) if target.operator else None
    if release is None or release.crds is None or not current.crds:
        return _skip("upgrade-crd-versions", "CRDs", "no current CRD stored versions or no target CRD versions in "
                     "the matrix")
    checks = []
    for crd in current.crds:
        served = release.crds.get(crd.name)
        subject = f"CRD {crd.name}"
        sources = _sources(current, [crd], [release])
        note = _unverified([], _mark(release.crds_unverified, release.crds_source))
        if served is None:
            checks.append(Check("upgrade-crd-versions", "warn", subject,
                                f"gpu-operator {release.version} no longer ships {crd.name}{note}",
                                "delete its objects or keep them managed elsewhere", sources))
            continue
        removed = [v for v in crd.stored_versions if v not in served]
        text = (f"stored versions {', '.join(crd.stored_versions)}; gpu-operator {release.version} serves "
                f"{', '.join(served)}{note}")
        checks.append(Check("upgrade-crd-versions", "fail" if removed else "pass", subject,
                            text + (f": the upgrade removes {', '.join(removed)}" if removed else ""),
                            f"migrate stored objects to {served[-1]} and drop {', '.join(removed)} from "
                            f"status.storedVersions before upgrading" if removed else "", sources))
    return checks
