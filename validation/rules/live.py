"""Live state: ClusterPolicy, driver and validator pods, smoke probe."""

from __future__ import annotations

from validation.facts import Facts
from validation.matrix import Matrix
from validation.rules.helpers import _skip, _sources
from validation.rules.registry import FAILING_PODS, Check, rule


@rule("cluster-policy")
def cluster_policy(facts: Facts, m: Matrix) -> list[Check]:
    """The GPU Operator's ClusterPolicy reports ready."""
    if not facts.cluster_policies:
        return _skip("cluster-policy", "ClusterPolicy", "no ClusterPolicy was read from the cluster")
    return [Check("cluster-policy", "pass" if p.state == "ready" else "fail", f"ClusterPolicy {p.name}",
                  f"ClusterPolicy {p.name} is {p.state or 'without a state'}",
                  "" if p.state == "ready" else "look at the driver and validator pods in the gpu-operator namespace",
                  _sources(facts, [p])) for p in facts.cluster_policies]


@rule("driver-pods")
def driver_pods(facts: Facts, m: Matrix) -> list[Check]:
    """Driver and validator pods are ready, none crash-looping or failing to pull."""
    pods = [p for p in facts.pods if p.component in ("driver", "validator")]
    if not pods:
        return _skip("driver-pods", "driver pods", "no driver or validator pod was read from the cluster")
    bad = [p for p in pods if not p.ready or p.waiting_reason in FAILING_PODS]
    checks = [Check("driver-pods", "fail", f"pod {p.namespace}/{p.name}",
                    f"{p.component} pod {p.name} on {p.node or 'no node'} is "
                    f"{p.waiting_reason or p.phase or 'not ready'} ({p.restarts} restarts)",
                    "read its logs (kubectl logs --previous); a driver that does not load is often a vGPU host/guest "
                    "or kernel mismatch", _sources(facts, [p])) for p in bad]
    if not bad:
        checks.append(Check("driver-pods", "pass", "driver pods", f"{len(pods)} driver and validator pods are ready",
                            "", _sources(facts, pods)))
    return checks


@rule("smoke")
def smoke(facts: Facts, m: Matrix) -> list[Check]:
    """The smoke probe ran in the runtime image on a GPU node, at the level it reports."""
    if not facts.smoke:
        return _skip("smoke", "smoke probe", "the smoke probe did not run")
    return [Check("smoke", "pass" if s.ok else "fail", f"{s.image} on {s.node}",
                  f"smoke probe at level {s.level} {'passed' if s.ok else 'failed'}"
                  f"{': ' + s.detail if s.detail else ''}",
                  "" if s.ok else "see the cuda-driver and engine-compute-capability checks for this node",
                  _sources(facts, [s])) for s in facts.smoke]
