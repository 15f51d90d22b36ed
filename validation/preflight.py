"""The program's preflight (DESIGN section 5): the interop checks on the parsed config, before the program
registers anything. A failing check stops `pulumi up` with its message, unless its id is listed in
`pai:validation.allowFailures`; warnings are logged.

With pai:supervisor the preflight also reads the vSphere namespace on the Supervisor (VM classes, quotas,
ClusterClass, images) through the decrypted pai:supervisorKubeconfig, when the program runs under the Pulumi
engine; under the mocks of the offline plan that value is a placeholder, and the checks that need the Supervisor
skip (logged)."""

from __future__ import annotations

import pulumi
from pulumi.runtime.mocks import MockMonitor
from pulumi.runtime.settings import get_monitor

from components.config import ConfigError, PlatformConfig
from validation.facts import Facts, merge
from validation.rules import Check, allow, check_ids, run_checks
from validation.sources.config import config_facts
from validation.sources.kubernetes import ClusterError
from validation.sources.supervisor import read_supervisor_text

SUPERVISOR_KUBECONFIG = "pai:supervisorKubeconfig"


class InteropError(pulumi.RunError):
    """The stack combines versions that do not work together; one line per failed check."""


def preflight(cfg: PlatformConfig, source: str) -> list[Check]:
    """Run the checks (with the Supervisor's facts under the engine); raise InteropError on a failure that is not
    allowed. Returns every check."""
    return check_or_stop(cfg, source, supervisor_facts(cfg, source, engine_supervisor_kubeconfig(cfg)))


def check_or_stop(cfg: PlatformConfig, source: str, live: Facts) -> list[Check]:
    """The checks of the config's facts and `live` ones (the Supervisor's); InteropError on a failure that
    pai:validation.allowFailures does not list, ConfigError on an unknown id there."""
    known = check_ids()
    unknown = [f"{source}: pai:validation.allowFailures[{i}]: {c!r} is not a check id; allowed: {', '.join(known)}"
               for i, c in enumerate(cfg.validation.allowFailures) if c not in known]
    if unknown:
        raise ConfigError("\n".join(unknown))
    checks = allow(run_checks(merge(config_facts(cfg, source), live)), cfg.validation.allowFailures)
    failed = [c for c in checks if c.status == "fail"]
    if failed:
        raise InteropError("\n".join(
            f"{source}: interop check {c.id} failed for {c.subject}: {c.message}"
            + (f"; fix: {c.fix}" if c.fix else "")
            + f" (to deploy anyway, add {c.id} to pai:validation.allowFailures)" for c in failed))
    for c in checks:
        if c.status == "warn":
            pulumi.log.warn(f"interop check {c.id} warns for {c.subject}: {c.message}")
    return checks


def engine_supervisor_kubeconfig(cfg: PlatformConfig) -> str | None:
    """The decrypted pai:supervisorKubeconfig the engine hands the program; None without pai:supervisor and under
    the mocks of the offline plan, where it is a placeholder (logged: the checks that need it skip)."""
    if cfg.supervisor is None:
        return None
    if isinstance(get_monitor(), MockMonitor):
        pulumi.log.info(f"preflight: the offline plan does not read the Supervisor ({SUPERVISOR_KUBECONFIG} is a "
                        "placeholder there); the VKS checks that need it skip")
        return None
    text = pulumi.runtime.get_config(SUPERVISOR_KUBECONFIG)
    return str(text) if text else None


def supervisor_facts(cfg: PlatformConfig, source: str, kubeconfig: str | None) -> Facts:
    """The vSphere namespace's facts read with the Supervisor kubeconfig `kubeconfig` (a secret's value); none
    without pai:supervisor or a kubeconfig. An unreadable Supervisor stops the program (InteropError naming the
    key, never its value)."""
    sup = cfg.supervisor
    if sup is None or kubeconfig is None:
        return Facts()
    try:
        return read_supervisor_text(kubeconfig, SUPERVISOR_KUBECONFIG, sup.namespace,
                                    (sup.clusterClassNamespace, sup.clusterClass))
    except ClusterError as exc:
        raise InteropError(f"{source}: the preflight could not read the vSphere namespace {sup.namespace} on the "
                           f"Supervisor: {exc}") from None
