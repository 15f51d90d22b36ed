"""`paictl validate`: the interop checks of a stack, offline from its config or live against the cluster, and
of an upgrade to a target stack. Exit 0 on pass or warn, 1 on fail (2, a usage or config error, is paictl's)."""

from __future__ import annotations

import argparse
from pathlib import Path

from components.config import PlatformConfig
from program.offline import StackConfig, load_stack_file, run_offline, stack_path
from validation import live
from validation.facts import Facts, ReleaseFacts, observed_over
from validation.preflight import InteropError
from validation.releases import release_checks
from validation.report import FORMATS, verdict
from validation.rules import Check, allow, run_checks, run_upgrade_checks
from validation.sources.config import config_facts


def parse_stack(config: StackConfig) -> PlatformConfig:
    """A stack file's PlatformConfig, parsed by the program's own parser (ConfigError on a bad config)."""
    parsed: list[PlatformConfig] = []
    run_offline(lambda: parsed.append(PlatformConfig.from_pulumi()), config)
    return parsed[0]


def stack_or_file(ref: str) -> StackConfig:
    """--upgrade-to NAME|PATH: a stack in stacks/, or a stack file anywhere."""
    path = Path(ref)
    if path.suffix in (".yaml", ".yml") or path.is_file():
        return load_stack_file(path)
    return load_stack_file(stack_path(ref), ref)


def checks_for(config: StackConfig, target: StackConfig | None, live_facts: Facts | None) -> list[Check]:
    """The checks of a stack (and of an upgrade to `target`), with the stack's allowed failures applied."""
    cfg = parse_stack(config)
    current = config_facts(cfg, config.source)
    if live_facts is not None:
        current = observed_over(current, live_facts)
    if target is None:
        return allow(run_checks(current), cfg.validation.allowFailures)
    target_cfg = parse_stack(target)
    checks = run_upgrade_checks(current, config_facts(target_cfg, target.source))
    return allow(checks, target_cfg.validation.allowFailures)


def planned_releases(config: StackConfig) -> list[ReleaseFacts]:
    """The Helm releases a stack's offline plan installs: name, namespace, chart, version and values."""
    from program.plan import HELM_RELEASE, plan

    return [ReleaseFacts(origin="config", name=i.get("name", r.name), namespace=i.get("namespace") or "default",
                         chart=i["chart"].rsplit("/", 1)[-1], version=i["version"], status="planned",
                         values=i.get("values") or {})
            for r in plan(config) if r.type == HELM_RELEASE for i in [r.inputs]]


def installed_vs_planned(installed: list[ReleaseFacts], stack: StackConfig) -> list[Check]:
    """The `helm-release` checks of what is installed against what `stack` plans; skipped when the program itself
    refuses the stack (its interop checks say why)."""
    try:
        planned = planned_releases(stack)
    except InteropError:
        return [Check("helm-release", "skip", "releases", "the program refuses this stack before it plans releases "
                      "(see the failed interop checks)")]
    return allow(release_checks(installed, planned), parse_stack(stack).validation.allowFailures)


def run(args: argparse.Namespace, config: StackConfig) -> int:
    target = stack_or_file(args.upgrade_to) if args.upgrade_to else None
    live_facts = live.live_facts(args, parse_stack(target or config).supervisor) if args.live else None
    checks = checks_for(config, target, live_facts)
    if live_facts is not None:  # what is installed now against what the stack (or the upgrade target) plans
        checks += installed_vs_planned(live_facts.releases, target or config)
    print(FORMATS[args.format](checks), end="")
    return 1 if verdict(checks) == "fail" else 0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--live", action="store_true", help="also read the cluster, vCenter and the node probes")
    parser.add_argument("--upgrade-to", metavar="NAME|PATH", help="check an upgrade to this stack or stack file")
    parser.add_argument("--format", choices=sorted(FORMATS), default="table")
    live.add_arguments(parser)
