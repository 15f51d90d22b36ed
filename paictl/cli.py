"""paictl: the platform's command line. Exit codes: 0 success, 1 a failed check, 2 a usage or config error.

The Pulumi program and the config models are imported only by commands that read a stack, so `airgap
mirror/export/import --images` start fast."""

from __future__ import annotations

import argparse
import os
import sys
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING

from airgap.mirror import ImageListError, TerminalProgress
from airgap.oci import BadInput, Job, OciError, Reference
from paictl import model as model_cmd

if TYPE_CHECKING:
    from airgap.render import StackRender
    from program.offline import StackConfig

EXIT_FAILED_CHECK = 1
EXIT_USAGE = 2


def _add_stack_source(parser: argparse.ArgumentParser) -> None:
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--stack", help="a stack in stacks/ (dev, vks-prod, airgap, ...)")
    source.add_argument("--config-file", type=Path, help="a Pulumi.<stack>.yaml file anywhere")


def _stack_config(args: argparse.Namespace) -> StackConfig:
    from components.config import set_model_resolver
    from models.mlflow import resolve_from_env
    from program.offline import load_stack_file, stack_path

    set_model_resolver(resolve_from_env)  # a model endpoint's mlflow://NAME@ALIAS source, resolved at plan time

    if args.stack:
        return load_stack_file(stack_path(args.stack), args.stack)
    return load_stack_file(args.config_file)


def _plan(args: argparse.Namespace) -> int:
    from program import plan as plan_cmd

    config = _stack_config(args)
    records = plan_cmd.plan(config)
    if args.out:
        written = plan_cmd.write_files(records, args.out)
        print(f"wrote {len(written)} files to {args.out}", file=sys.stderr)
    text = plan_cmd.to_json(config.stack, records) if args.format == "json" else plan_cmd.to_table(
        config.stack, records)
    sys.stdout.write(text)
    return 0


def _status(args: argparse.Namespace) -> int:
    from paictl import status as status_cmd

    return status_cmd.run(args)


def _validate(args: argparse.Namespace) -> int:
    from paictl import validate as validate_cmd

    return validate_cmd.run(args, _stack_config(args))


def _bom(args: argparse.Namespace) -> int:
    from airgap.bom import stack_bill_of_materials
    from airgap.resolve import resolve

    failed: list[str] = []
    if args.render:
        rendered = _render(args)
        bom = rendered.bom
        failed += [str(d) for d in rendered.differences]
    else:
        bom = stack_bill_of_materials(_stack_config(args))
    if args.resolve or args.resolve_on:
        bom, failed = resolve(bom, on=args.resolve_on, plain_http=args.plain_http, authfile=args.authfile,
                              workers=args.workers, ca_file=args.ca_file)
    sys.stdout.write(bom.to_json() if args.format == "json" else bom.to_table())
    for line in failed:
        print(f"error: {line}", file=sys.stderr)
    return EXIT_FAILED_CHECK if failed else 0


def _render(args: argparse.Namespace) -> StackRender:
    """The stack's charts rendered by helm with its values (`--render`), fetched through any --chart-source."""
    from airgap.bom import platform_config
    from airgap.render import render_stack
    from validation.sources.helm import helm_client

    return render_stack(platform_config(_stack_config(args)), helm_client(), dict(args.chart_source or []))


def _chart_source(text: str) -> tuple[str, str]:
    upstream, sep, local = text.partition("=")
    if not sep or not upstream or not local:
        raise argparse.ArgumentTypeError(f"{text!r} is not UPSTREAM=URL (e.g. oci://ghcr.io=oci://cache:5000)")
    return upstream, local


def _add_render(cmd: argparse.ArgumentParser) -> None:
    cmd.add_argument("--render", action="store_true",
                     help="fetch and render the stack's pinned charts with helm; list the images the render names")
    cmd.add_argument("--chart-source", type=_chart_source, action="append", metavar="UPSTREAM=URL",
                     help="with --render: fetch charts whose OCI or repository URL starts with UPSTREAM from URL")


def _airgap_jobs(args: argparse.Namespace) -> list[Job]:
    return _airgap_source(args)[0]


def _airgap_source(args: argparse.Namespace) -> tuple[list[Job], list[Reference]]:
    """The jobs of the --images list or of the stack's bill of materials, and the stack's `local` artifacts (in
    the site's own registry already: the vGPU guest driver)."""
    from airgap.mirror import bom_jobs, jobs_for, read_image_list

    if args.images:
        if getattr(args, "render", False):
            raise ImageListError("--render renders a stack's charts: use it with --stack, not --images")
        return jobs_for(read_image_list(args.images)), []
    from airgap.bom import stack_bill_of_materials

    if getattr(args, "render", False):
        rendered = _render(args)
        for difference in rendered.differences:
            print(f"warning: {difference}; mirroring what the chart renders", file=sys.stderr)
        bill = rendered.bom
    else:
        bill = stack_bill_of_materials(_stack_config(args))
    return list(bom_jobs(bill).values()), [Reference.parse(e.ref) for e in bill.entries if e.status == "local"]


def _airgap_mirror(args: argparse.Namespace) -> int:
    from airgap.mirror import mirror

    progress = TerminalProgress("mirrored")
    stats = mirror(_airgap_jobs(args), args.to, plain_http=args.plain_http, authfile=args.authfile,
                   workers=args.workers, progress=progress, repair=args.repair, ca_file=args.ca_file)
    print(progress.summary(stats), file=sys.stderr)
    return 0


def _airgap_export(args: argparse.Namespace) -> int:
    from airgap import bundle

    progress = TerminalProgress("exported")
    stats = bundle.export(_airgap_jobs(args), args.out, plain_http=args.plain_http, authfile=args.authfile,
                          workers=args.workers, progress=progress, since=args.since, sign_key=args.sign_key,
                          ca_file=args.ca_file)
    print(progress.summary(stats) + f"; bundle {args.out}" + (", signed" if args.sign_key else ", unsigned"),
          file=sys.stderr)
    return 0


def _airgap_import(args: argparse.Namespace) -> int:
    from airgap import bundle

    progress = TerminalProgress("imported")
    stats = bundle.import_bundle(args.bundle, args.to, plain_http=args.plain_http, authfile=args.authfile,
                                 workers=args.workers, progress=progress, verify_key=args.verify_key,
                                 expect_digests=args.expect_digests, repair=args.repair, ca_file=args.ca_file)
    if args.verify_key:
        trust = f"signature verified with {args.verify_key}"
    elif bundle.BundleSource(args.bundle).signature is not None:
        trust = "signed, but not verified: give --verify-key to check who made it"
    else:
        trust = "unsigned: only the per-file sha256 were checked (they catch accidents, not tampering)"
    print(f"{progress.summary(stats)}; bundle {trust}", file=sys.stderr)
    return 0


def _airgap_check(args: argparse.Namespace) -> int:
    from airgap import check

    jobs, local = _airgap_source(args)
    findings = check.check(jobs, args.on, local=local, plain_http=args.plain_http, authfile=args.authfile,
                           deep=args.deep, workers=args.workers, ca_file=args.ca_file)
    sys.stdout.write(check.to_json(findings) if args.format == "json" else check.to_table(findings))
    if args.format == "json":
        print(check.summary(findings), file=sys.stderr)
    return 0 if all(f.status == "ok" for f in findings) else EXIT_FAILED_CHECK


def _workers(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 256:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of workers from 1 to 256")
    return int(text)


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
    _add_render(bom)
    bom.set_defaults(run=_bom)
    mirror_cmd = airgap_commands.add_parser("mirror", help="copy registry to registry, digests unchanged")
    export_cmd = airgap_commands.add_parser("export", help="write a portable bundle (an OCI layout in a tar)")
    import_cmd = airgap_commands.add_parser("import", help="verify a bundle, then push it to a registry")
    check_cmd = airgap_commands.add_parser("check", help="is everything on the mirror? (reads it, writes nothing)")
    for cmd in (mirror_cmd, export_cmd, check_cmd):
        source = cmd.add_mutually_exclusive_group(required=True)
        source.add_argument("--stack", help="every artifact in this stack's bill of materials")
        source.add_argument("--config-file", type=Path, help="every artifact in this Pulumi.<stack>.yaml's bill")
        source.add_argument("--images", type=Path, help="a file with one image reference per line")
    for cmd in (mirror_cmd, export_cmd):
        _add_render(cmd)
    import_cmd.add_argument("bundle", type=Path, help="a bundle written by `paictl airgap export`")
    export_cmd.add_argument("--out", type=Path, required=True, help="the bundle tar to write")
    export_cmd.add_argument("--since", type=Path, metavar="BASE.tar",
                            help="a delta: leave out the configs and layers this earlier bundle holds")
    export_cmd.add_argument("--sign-key", type=Path, metavar="KEY.pem",
                            help="sign the bundle's index with this EC P-256 private key (PEM)")
    import_cmd.add_argument("--verify-key", type=Path, metavar="PUB.pem",
                            help="refuse the bundle unless it is signed by this public key's private key")
    import_cmd.add_argument("--expect-digests", type=Path, metavar="FILE",
                            help="refuse an image whose digest is not the one FILE pins (a `bom --resolve "
                                 "--format json` or one host/path:tag@sha256:... a line)")
    for cmd in (mirror_cmd, import_cmd):
        cmd.add_argument("--to", required=True,
                         help="REGISTRY[/prefix]; host/path:tag lands at REGISTRY/prefix/path:tag")
        cmd.add_argument("--repair", action="store_true",
                         help="read back what the target holds and re-send what is corrupt (`check --deep`)")
    check_cmd.add_argument("--on", required=True, help="REGISTRY[/prefix] the stack pulls from")
    check_cmd.add_argument("--deep", action="store_true", help="also read every blob back and check its sha256")
    check_cmd.add_argument("--format", choices=["table", "json"], default="table")
    for cmd in (bom, mirror_cmd, export_cmd, import_cmd, check_cmd):
        cmd.add_argument("--plain-http", action="store_true", help="plain HTTP, for loopback registries only")
        cmd.add_argument("--authfile", type=Path, help="docker config file (default $REGISTRY_AUTH_FILE, "
                         "~/.docker/config.json)")
        cmd.add_argument("--workers", type=_workers, default=8, help="concurrent transfers or checks (default 8)")
        cmd.add_argument("--ca-file", type=Path, help="PEM certificate authorities to trust besides the system's "
                         "(a private registry's own CA)")
    landed = "what already landed on the target is kept; run the same command again: it sends only what is missing"
    mirror_cmd.set_defaults(run=_airgap_mirror, kept=lambda args: landed)
    export_cmd.set_defaults(run=_airgap_export, kept=lambda args: (
        f"the blobs fetched so far are kept in {args.out}.staging (a blob cut short too); run the same command "
        "again: it fetches only what is missing"))
    import_cmd.set_defaults(run=_airgap_import, kept=lambda args: landed)
    check_cmd.set_defaults(run=_airgap_check, kept=lambda args: "the check wrote nothing; run it again")


def _version() -> str:
    """The installed distribution's version (pyproject.toml)."""
    try:
        return metadata.version("private-ai-platform")
    except metadata.PackageNotFoundError:
        return "unknown (not installed)"


def parser(command: str | None = None) -> argparse.ArgumentParser:
    """The whole CLI; given the `command` about to run, other commands' arguments that need the heavy
    validation package are left out."""
    root = argparse.ArgumentParser(prog="paictl", description="Private-AI platform: plan, validate, air-gap, models.")
    root.add_argument("--version", action="version", version=f"paictl {_version()}")
    commands = root.add_subparsers(dest="command", required=True)
    plan = commands.add_parser("plan", help="evaluate the Pulumi program offline and print its plan")
    _add_stack_source(plan)
    plan.add_argument("--format", choices=["table", "json"], default="table")
    plan.add_argument("--out", type=Path, help="also write one YAML file per object and per Helm release into this "
                      "new, empty or plan-written folder (files of an earlier plan it no longer has are removed)")
    plan.set_defaults(run=_plan)
    validate = commands.add_parser("validate", help="check the driver / CUDA / vGPU / Kubernetes interop matrix")
    _add_stack_source(validate)
    if command in (None, "validate"):
        from paictl import validate as validate_cmd

        validate_cmd.add_arguments(validate)
    validate.set_defaults(run=_validate)
    status = commands.add_parser("status", help="what a cluster runs: Helm releases and their chart versions")
    status.set_defaults(run=_status)
    if command in (None, "status"):
        from paictl import status as status_cmd

        status_cmd.add_arguments(status)
    _add_airgap(commands)
    model_cmd.add_commands(commands)
    return root


def _errors(args: argparse.Namespace) -> tuple[tuple[type[Exception], ...], tuple[type[Exception], ...]]:
    """(bad input: exit 2, a failed check: exit 1); the Pulumi- and validation-side errors only for the commands
    that import those packages anyway."""
    if args.command == "model":
        return model_cmd.errors()
    if args.command == "airgap" and not getattr(args, "stack", None) and not getattr(args, "config_file", None):
        return (ImageListError, BadInput), (OciError,)
    from airgap.bom import BomError
    from airgap.render import RenderError
    from components.config import ConfigError
    from components.stackfile import StackFileError
    from program.plan import PlanOutError
    from validation.live import LiveUnavailable
    from validation.preflight import InteropError
    from validation.sources.helm import HelmMissing

    return ((ImageListError, BadInput, ConfigError, StackFileError, LiveUnavailable, BomError, HelmMissing,
             PlanOutError), (OciError, InteropError, RenderError))


def main(argv: list[str] | None = None) -> int:
    words = sys.argv[1:] if argv is None else argv
    args = parser(next((w for w in words if not w.startswith("-")), None)).parse_args(argv)
    usage, failed = _errors(args)
    try:
        code: int = args.run(args)
    except KeyboardInterrupt:
        if not hasattr(args, "kept"):
            raise
        print(f"interrupted: {args.kept(args)}", file=sys.stderr, flush=True)
        os._exit(130)  # not waiting for the transfers in flight: each lands whole or not at all
    except usage as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except failed as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILED_CHECK
    return code


if __name__ == "__main__":
    sys.exit(main())
