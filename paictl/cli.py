"""paictl: the platform's command line. Exit codes: 0 success, 1 a failed check, 2 a usage or config error."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from airgap.bom import BomError, stack_bill_of_materials
from components.config import ConfigError
from paictl import plan as plan_cmd
from paictl import validate as validate_cmd
from paictl.offline import StackConfig, StackFileError, load_stack_file, stack_path
from validation.live import LiveUnavailable
from validation.preflight import InteropError

EXIT_FAILED_CHECK = 1
EXIT_USAGE = 2


def _add_stack_source(parser: argparse.ArgumentParser) -> None:
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--stack", help="a stack in stacks/ (dev, vks-prod, airgap, ...)")
    source.add_argument("--config-file", type=Path, help="a Pulumi.<stack>.yaml file anywhere")


def _stack_config(args: argparse.Namespace) -> StackConfig:
    if args.stack:
        return load_stack_file(stack_path(args.stack), args.stack)
    return load_stack_file(args.config_file)


def _plan(args: argparse.Namespace) -> int:
    config = _stack_config(args)
    records = plan_cmd.plan(config)
    if args.out:
        written = plan_cmd.write_files(records, args.out)
        print(f"wrote {len(written)} files to {args.out}", file=sys.stderr)
    text = plan_cmd.to_json(config.stack, records) if args.format == "json" else plan_cmd.to_table(
        config.stack, records)
    sys.stdout.write(text)
    return 0


def _validate(args: argparse.Namespace) -> int:
    return validate_cmd.run(args, _stack_config(args))


def _bom(args: argparse.Namespace) -> int:
    bom = stack_bill_of_materials(_stack_config(args))
    sys.stdout.write(bom.to_json() if args.format == "json" else bom.to_table())
    return 0


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="paictl", description="Private-AI platform: plan, validate, air-gap.")
    commands = root.add_subparsers(dest="command", required=True)
    plan = commands.add_parser("plan", help="evaluate the Pulumi program offline and print its plan")
    _add_stack_source(plan)
    plan.add_argument("--format", choices=["table", "json"], default="table")
    plan.add_argument("--out", type=Path, help="also write one YAML file per object and per Helm release here")
    plan.set_defaults(run=_plan)
    validate = commands.add_parser("validate", help="check the driver / CUDA / vGPU / Kubernetes interop matrix")
    _add_stack_source(validate)
    validate_cmd.add_arguments(validate)
    validate.set_defaults(run=_validate)
    airgap = commands.add_parser("airgap", help="air-gapped sites: bill of materials, mirroring, bundles")
    airgap_commands = airgap.add_subparsers(dest="airgap_command", required=True)
    bom = airgap_commands.add_parser("bom", help="every image, chart and model the stack needs")
    _add_stack_source(bom)
    bom.add_argument("--format", choices=["table", "json"], default="table")
    bom.set_defaults(run=_bom)
    return root


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        code: int = args.run(args)
    except (ConfigError, StackFileError, LiveUnavailable, BomError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except InteropError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILED_CHECK
    return code


if __name__ == "__main__":
    sys.exit(main())
