"""The program's preflight (DESIGN section 5): the offline interop checks on the parsed config, before the
program registers anything. A failing check stops `pulumi up` with its message, unless its id is listed in
`pai:validation.allowFailures`; warnings are logged."""

from __future__ import annotations

import pulumi

from components.config import ConfigError, PlatformConfig
from validation.rules import Check, allow, check_ids, run_checks
from validation.sources.config import config_facts


class InteropError(pulumi.RunError):
    """The stack combines versions that do not work together; one line per failed check."""


def preflight(cfg: PlatformConfig, source: str) -> list[Check]:
    """Run the offline checks; raise InteropError on a failure that is not allowed. Returns every check."""
    known = check_ids()
    unknown = [f"{source}: pai:validation.allowFailures[{i}]: {c!r} is not a check id; allowed: {', '.join(known)}"
               for i, c in enumerate(cfg.validation.allowFailures) if c not in known]
    if unknown:
        raise ConfigError("\n".join(unknown))
    checks = allow(run_checks(config_facts(cfg, source)), cfg.validation.allowFailures)
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
