"""paictl: the platform's command line. Exit codes: 0 success, 1 a failed check, 2 a usage or config error.

The Pulumi program and the config models are imported only by commands that read a stack, so `airgap
mirror/export/import --images` start fast."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from airgap.mirror import ImageListError, TerminalProgress
from airgap.oci import Job, OciError, Reference
from paictl import model as model_cmd

if TYPE_CHECKING:
    from paictl.offline import StackConfig

EXIT_FAILED_CHECK = 1
EXIT_USAGE = 2


def _add_stack_source(parser: argparse.ArgumentParser) -> None:
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--stack", help="a stack in stacks/ (dev, vks-prod, airgap, ...)")
    source.add_argument("--config-file", type=Path, help="a Pulumi.<stack>.yaml file anywhere")


def _stack_config(args: argparse.Namespace) -> StackConfig:
    from components.config import set_model_resolver
    from models.mlflow import resolve_from_env
    from paictl.offline import load_stack_file, stack_path

    set_model_resolver(resolve_from_env)  # a model endpoint's mlflow://NAME@ALIAS source, resolved at plan time

    if args.stack:
        return load_stack_file(stack_path(args.stack), args.stack)
    return load_stack_file(args.config_file)


def _plan(args: argparse.Namespace) -> int:
    from paictl import plan as plan_cmd

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
    from paictl import validate as validate_cmd

    return validate_cmd.run(args, _stack_config(args))


def _bom(args: argparse.Namespace) -> int:
    from airgap.bom import stack_bill_of_materials
    from airgap.resolve import resolve

    bom = stack_bill_of_materials(_stack_config(args))
    failed: list[str] = []
    if args.resolve or args.resolve_on:
        bom, failed = resolve(bom, on=args.resolve_on, plain_http=args.plain_http, authfile=args.authfile,
                              workers=args.workers)
    sys.stdout.write(bom.to_json() if args.format == "json" else bom.to_table())
    for line in failed:
        print(f"error: {line}", file=sys.stderr)
    return EXIT_FAILED_CHECK if failed else 0


def _airgap_jobs(args: argparse.Namespace) -> list[Job]:
    return _airgap_source(args)[0]


def _airgap_source(args: argparse.Namespace) -> tuple[list[Job], list[Reference]]:
    """The jobs of the --images list or of the stack's bill of materials, and the stack's `local` artifacts (in
    the site's own registry already: the vGPU guest driver)."""
    from airgap.mirror import bom_jobs, jobs_for, read_image_list

    if args.images:
        return jobs_for(read_image_list(args.images)), []
    from airgap.bom import stack_bill_of_materials

    args.config_file = None
    bill = stack_bill_of_materials(_stack_config(args))
    return list(bom_jobs(bill).values()), [Reference.parse(e.ref) for e in bill.entries if e.status == "local"]


def _airgap_mirror(args: argparse.Namespace) -> int:
    from airgap.mirror import mirror

    progress = TerminalProgress("mirrored")
    stats = mirror(_airgap_jobs(args), args.to, plain_http=args.plain_http, authfile=args.authfile,
                   workers=args.workers, progress=progress)
    print(progress.summary(stats), file=sys.stderr)
    return 0


def _airgap_export(args: argparse.Namespace) -> int:
    from airgap import bundle

    progress = TerminalProgress("exported")
    stats = bundle.export(_airgap_jobs(args), args.out, plain_http=args.plain_http, authfile=args.authfile,
                          workers=args.workers, progress=progress, since=args.since)
    print(progress.summary(stats) + f"; bundle {args.out}", file=sys.stderr)
    return 0


def _airgap_import(args: argparse.Namespace) -> int:
    from airgap import bundle

    progress = TerminalProgress("imported")
    stats = bundle.import_bundle(args.bundle, args.to, plain_http=args.plain_http, authfile=args.authfile,
                                 workers=args.workers, progress=progress)
    print(progress.summary(stats), file=sys.stderr)
    return 0


def _airgap_check(args: argparse.Namespace) -> int:
    from airgap import check

    jobs, local = _airgap_source(args)
    findings = check.check(jobs, args.on, local=local, plain_http=args.plain_http, authfile=args.authfile,
                           deep=args.deep, workers=args.workers)
    sys.stdout.write(check.to_json(findings) if args.format == "json" else check.to_table(findings))
    if args.format == "json":
        print(check.summary(findings), file=sys.stderr)
    return 0 if all(f.status == "ok" for f in findings) else EXIT_FAILED_CHECK


def _add_airgap(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    airgap = commands.add_parser("airgap", help="air-gapped sites: bill of materials, mirroring, bundles")
    airgap_commands = airgap.add_subparsers(dest="airgap_command", required=True)
    bom = airgap_commands.add_parser("bom", help="every image, chart and model the stack needs")
    _add_stack_source(bom)
    bom.add_argument("--format", choices=["table", "json"], default="table")
    resolving = bom.add_mutually_exclusive_group()
    resolving.add_argument("--resolve", action="store_true",
                           help="pin each reference by the digest its tag has on its own registry")
    resolving.add_argument("--resolve-on", metavar="REGISTRY[/prefix]",
                           help="pin each reference by the digest its tag has where it lands on this mirror")
    bom.set_defaults(run=_bom)
    mirror_cmd = airgap_commands.add_parser("mirror", help="copy registry to registry, digests unchanged")
    export_cmd = airgap_commands.add_parser("export", help="write a portable bundle (an OCI layout in a tar)")
    import_cmd = airgap_commands.add_parser("import", help="verify a bundle, then push it to a registry")
    check_cmd = airgap_commands.add_parser("check", help="is everything on the mirror? (reads it, writes nothing)")
    for cmd in (mirror_cmd, export_cmd, check_cmd):
        source = cmd.add_mutually_exclusive_group(required=True)
        source.add_argument("--stack", help="every artifact in this stack's bill of materials")
        source.add_argument("--images", type=Path, help="a file with one image reference per line")
    import_cmd.add_argument("bundle", type=Path, help="a bundle written by `paictl airgap export`")
    export_cmd.add_argument("--out", type=Path, required=True, help="the bundle tar to write")
    export_cmd.add_argument("--since", type=Path, metavar="BASE.tar",
                            help="a delta: leave out the configs and layers this earlier bundle holds")
    for cmd in (mirror_cmd, import_cmd):
        cmd.add_argument("--to", required=True,
                         help="REGISTRY[/prefix]; host/path:tag lands at REGISTRY/prefix/path:tag")
    check_cmd.add_argument("--on", required=True, help="REGISTRY[/prefix] the stack pulls from")
    check_cmd.add_argument("--deep", action="store_true", help="also read every blob back and check its sha256")
    check_cmd.add_argument("--format", choices=["table", "json"], default="table")
    for cmd in (bom, mirror_cmd, export_cmd, import_cmd, check_cmd):
        cmd.add_argument("--plain-http", action="store_true", help="plain HTTP, for loopback registries only")
        cmd.add_argument("--authfile", type=Path, help="docker config file (default $REGISTRY_AUTH_FILE, "
                         "~/.docker/config.json)")
        cmd.add_argument("--workers", type=int, default=8, help="concurrent transfers or checks (default 8)")
    mirror_cmd.set_defaults(run=_airgap_mirror)
    export_cmd.set_defaults(run=_airgap_export)
    import_cmd.set_defaults(run=_airgap_import)
    check_cmd.set_defaults(run=_airgap_check)


def parser(command: str | None = None) -> argparse.ArgumentParser:
    """The whole CLI; given the `command` about to run, other commands' arguments that need the heavy
    validation package are left out."""
    root = argparse.ArgumentParser(prog="paictl", description="Private-AI platform: plan, validate, air-gap, models.")
    commands = root.add_subparsers(dest="command", required=True)
    plan = commands.add_parser("plan", help="evaluate the Pulumi program offline and print its plan")
    _add_stack_source(plan)
    plan.add_argument("--format", choices=["table", "json"], default="table")
    plan.add_argument("--out", type=Path, help="also write one YAML file per object and per Helm release here")
    plan.set_defaults(run=_plan)
    validate = commands.add_parser("validate", help="check the driver / CUDA / vGPU / Kubernetes interop matrix")
    _add_stack_source(validate)
    if command in (None, "validate"):
        from paictl import validate as validate_cmd

        validate_cmd.add_arguments(validate)
    validate.set_defaults(run=_validate)
    _add_airgap(commands)
    model_cmd.add_commands(commands)
    return root


def _errors(args: argparse.Namespace) -> tuple[tuple[type[Exception], ...], tuple[type[Exception], ...]]:
    """(bad input: exit 2, a failed check: exit 1); the Pulumi- and validation-side errors only for the commands
    that import those packages anyway."""
    if args.command == "model":
        return model_cmd.errors()
    if args.command == "airgap" and not getattr(args, "stack", None) and not getattr(args, "config_file", None):
        return (ImageListError,), (OciError,)
    from airgap.bom import BomError
    from components.config import ConfigError
    from components.stackfile import StackFileError
    from validation.live import LiveUnavailable
    from validation.preflight import InteropError

    return (ImageListError, ConfigError, StackFileError, LiveUnavailable, BomError), (OciError, InteropError)


def main(argv: list[str] | None = None) -> int:
    words = sys.argv[1:] if argv is None else argv
    args = parser(next((w for w in words if not w.startswith("-")), None)).parse_args(argv)
    usage, failed = _errors(args)
    try:
        code: int = args.run(args)
    except usage as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except failed as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILED_CHECK
    return code


if __name__ == "__main__":
    sys.exit(main())
