"""GPU Operator: Kubernetes range, driver branch."""

from __future__ import annotations

from validation.facts import Facts, KubernetesFacts, OperatorFacts
from validation.matrix import Matrix, branch_of
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
from validation.rules.registry import Check, rule


@rule("operator-kubernetes")
def operator_kubernetes(facts: Facts, m: Matrix) -> list[Check]:
    """The GPU Operator release in force against the cluster's Kubernetes minor version."""
    operator, kube = facts.operator_version, facts.kubernetes
    if operator is None or kube is None:
        return _skip("operator-kubernetes", "gpu-operator", "no GPU Operator or no Kubernetes version is known")
    return [_operator_kubernetes("operator-kubernetes", facts, operator, kube, m)]


def _operator_kubernetes(check_id: str, facts: Facts, operator: OperatorFacts, kube: KubernetesFacts,
                         m: Matrix) -> Check:
    version, k8s = operator.version, kube.version
    subject = f"gpu-operator {version} on Kubernetes {k8s}"
    release = m.operator(version)
    if release is None:
        return Check(check_id, "warn", subject, f"gpu-operator {version} is not in the matrix",
                     "add the release to validation/data/gpu_operator.yaml", _sources(facts, [operator, kube]))
    rng = release.kubernetes
    text = f"gpu-operator {version} supports Kubernetes {rng.min}-{rng.max}; the cluster is {k8s}"
    if rng.contains(k8s):
        return Check(check_id, "pass", subject, text + _unverified([release]), "",
                     _sources(facts, [operator, kube], [release]))
    fits = [r for r in _installable(m) if r.kubernetes.contains(k8s)]
    ranges = ", ".join(f"{r.version}: {r.kubernetes.min}-{r.kubernetes.max}" for r in _installable(m))
    fix = (f"use gpu-operator {fits[-1].version} (Kubernetes {fits[-1].kubernetes.min}-{fits[-1].kubernetes.max})"
           if fits else _none_installable(f"supports Kubernetes {k8s} ({ranges}): run a Kubernetes version in "
                                          "one of those ranges", m))
    return Check(check_id, "fail", subject, text + _unverified([release]), fix,
                 _sources(facts, [operator, kube], [release]))


@rule("operator-driver-branch")
def operator_driver_branch(facts: Facts, m: Matrix) -> list[Check]:
    """Each driver version in use (or planned) against the branches the GPU Operator release supports."""
    operator = facts.operator_version
    groups = _driver_groups(facts)
    if operator is None or not groups:
        return _skip("operator-driver-branch", "gpu-operator", "no GPU Operator or no driver version is known")
    release = m.operator(operator.version)
    if release is None:
        return [Check("operator-driver-branch", "warn", f"gpu-operator {operator.version}",
                      f"gpu-operator {operator.version} is not in the matrix",
                      "add the release to validation/data/gpu_operator.yaml", _sources(facts, [operator]))]
    datacenter = facts.driver is not None and facts.driver.mode == "datacenter"
    checks = []
    for driver, nodes in groups.items():
        subject = f"driver {driver} with gpu-operator {operator.version}"
        sources = _sources(facts, [operator, *nodes], [release])
        note = _unverified([release], _mark(release.supported_branches_unverified,
                                                  f"supported branches of {release.version}"))
        branches = ", ".join(release.supported_branches)
        if branch_of(driver) not in release.supported_branches:
            checks.append(Check("operator-driver-branch", "fail", subject,
                                f"gpu-operator {operator.version} supports driver branches {branches}; "
                                f"{_node_list(nodes)} run {driver} ({branch_of(driver)}){note}",
                                f"use a driver on {branches} (the release's default is {release.default_driver})"
                                + _branch_releases(branch_of(driver), m), sources))
        elif datacenter and release.supported_drivers and driver not in release.supported_drivers:
            checks.append(Check("operator-driver-branch", "warn", subject,
                                f"{branch_of(driver)} is supported by gpu-operator {operator.version}, but {driver} "
                                f"is not one of its listed data-center driver containers "
                                f"({', '.join(release.supported_drivers)}){note}",
                                f"use a listed driver, e.g. {release.default_driver}", sources))
        else:
            checks.append(Check("operator-driver-branch", "pass", subject,
                                f"gpu-operator {operator.version} supports driver branches {branches}; "
                                f"{driver} is {branch_of(driver)}{note}", "", sources))
    return checks


def _branch_releases(branch: str, m: Matrix) -> str:
    """The newest installable operator release that supports a driver branch, as the second half of a fix."""
    fits = [r.version for r in _installable(m) if branch in r.supported_branches]
    if fits:
        return f" or gpu-operator {fits[-1]}, which supports {branch}"
    return f"; {_none_installable(f'supports {branch}', m)}"
