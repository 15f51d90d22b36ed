"""`paictl model ...`: the gallery commands over models/ (validate, push, list, pull, promote, register, retire).
Exit 0 success, 1 a refused model or a failed operation, 2 a usage error."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from airgap.oci import OciError, Reference, Registry
from models import gallery
from models.validate import ENGINES, ModelInputError, Report, changed_since, validate, write_manifest

EXIT_REFUSED = 1


def _ref(text: str, what: str) -> Reference:
    try:
        return Reference.parse(text)
    except ValueError as exc:
        raise ModelInputError(f"{what}: {exc}") from None


def _client(ref: Reference, args: argparse.Namespace) -> Registry:
    return gallery.connect(ref, plain_http=args.plain_http, authfile=args.authfile)


def _say(line: str) -> None:
    print(line, file=sys.stderr)


def _validated(args: argparse.Namespace) -> Report:
    return validate(args.dir, engine=args.engine, gpu=args.gpu, allow_pickle=args.allow_pickle)


def _validate(args: argparse.Namespace) -> int:
    report = _validated(args)
    sys.stdout.write(report.to_json() if args.format == "json" else report.to_table())
    if not report.ok:
        return EXIT_REFUSED
    _say(f"wrote {write_manifest(report)}")
    return 0


def _push(args: argparse.Namespace) -> int:
    if "@" in args.to or ":" in args.to.split("/", 1)[-1]:
        raise ModelInputError(f"--to {args.to}: give REGISTRY/PROJECT/NAME without a tag or digest (--tag names it)")
    try:
        gallery.check_tag(args.tag)
    except ValueError as exc:
        raise ModelInputError(f"--tag: {exc}") from None
    target = _ref(f"{args.to}:{args.tag}", "--to")
    base = _ref(args.base, "--base") if args.base else None
    report = _validated(args)  # always: no flag skips it
    if not report.ok:
        sys.stderr.write(report.to_table())
        _say(f"error: {args.dir} refused; nothing was sent to {target.host}")
        return EXIT_REFUSED
    changed = changed_since(report)
    if changed:
        _say(f"error: {args.dir} changed after validation ({'; '.join(changed)}); nothing was sent to {target.host}; "
             "run `paictl model validate` again if the change is intended")
        return EXIT_REFUSED
    write_manifest(report)
    digest = gallery.push(report, target, _client(target, args), base=base, progress=_say)
    print(f"{target.host}/{target.path}:{target.tag}@{digest}")
    return 0


def _list(args: argparse.Namespace) -> int:
    host, _, project = args.project.removeprefix("oci://").partition("/")
    if not project:
        raise ModelInputError(f"{args.project}: give REGISTRY/PROJECT")
    rows = gallery.list_models(_client(Reference(host, project, "list"), args), project)
    if args.format == "json":
        sys.stdout.write(json.dumps([{"repository": r.repository, "tag": r.tag, "digest": r.digest,
                                      "annotations": r.annotations} for r in rows], indent=2) + "\n")
        return 0
    for r in rows:
        params = r.annotations.get("dev.pai.model.parameters", "")
        print(f"{host}/{r.repository}:{r.tag}  {r.digest}  {r.annotations.get('dev.pai.model.formats', '')}"
              f"  {r.annotations.get('dev.pai.model.architecture', '')}  {params}")
    return 0


def _pull(args: argparse.Namespace) -> int:
    ref = _ref(args.ref, "REF")
    digest, files = gallery.pull(ref, _client(ref, args), args.out, progress=_say)
    _say(f"pulled {len(files)} files ({sum(f.size for f in files)} bytes) into {args.out}, each checked against "
         "the carried manifest")
    print(f"{ref.host}/{ref.path}@{digest}")
    return 0


def _promote(args: argparse.Namespace) -> int:
    ref = _ref(args.ref, "REF")
    to = _ref(f"{args.to}:{args.tag}", "--to") if args.to else None
    try:
        promoted, how = gallery.promote(ref, args.tag, _client(ref, args), to)
    except ValueError as exc:
        raise ModelInputError(f"--tag: {exc}") from None
    _say(f"{how}: {ref} as {promoted.host}/{promoted.path}:{promoted.tag}")
    print(str(promoted))
    return 0


def _register(args: argparse.Namespace) -> int:
    ref = _ref(args.ref, "REF")
    digest = _client(ref, args).manifest_digest(ref.path, ref.ref)  # the gallery holds it, by this digest
    if digest is None or (ref.digest and digest != ref.digest):
        raise gallery.GalleryError(f"{ref}: not found")
    source = f"oci://{ref.host}/{ref.path}@{digest}"
    from models.mlflow import Mlflow

    try:
        tracking = Mlflow.from_env(args.mlflow_uri)
    except ValueError as exc:
        raise ModelInputError(str(exc)) from None
    version = tracking.register(args.name, source, args.alias)
    alias = f" as @{args.alias}" if args.alias else ""
    print(f"registered {args.name} version {version}{alias}: {source}")
    return 0


def _retire(args: argparse.Namespace) -> int:
    ref = _ref(args.ref, "REF")
    client = _client(ref, args)
    digest = ref.digest or client.manifest_digest(ref.path, ref.ref)
    if digest is None:
        raise gallery.GalleryError(f"{ref}: not found")
    tags = [ref.tag] if ref.tag else gallery.tags_of(client, ref.path, digest)
    users = _endpoints_naming(ref, digest, tags, args)
    if users and not args.force:
        _say(f"error: {ref} is still served: " + "; ".join(users) + " (move them first, or --force)")
        return EXIT_REFUSED
    how = gallery.untag(client, ref.path, digest, tags) if tags else "no tags"
    for user in users:
        _say(f"warning: still named by {user}")
    print(f"retired {ref.host}/{ref.path}@{digest}: {', '.join(tags) or 'no tags'} ({how})")
    return 0


def _endpoints_naming(ref: Reference, digest: str, tags: list[str], args: argparse.Namespace) -> list[str]:
    """The model endpoints of the stacks (--stack/--config-file, else every stack in stacks/) naming the artifact."""
    from airgap.bom import platform_config
    from components.config import set_model_resolver
    from models.mlflow import resolve_from_env
    from program.offline import STACKS_DIR, load_stack_file, stack_path

    set_model_resolver(resolve_from_env)
    if args.stack or args.config_file:
        stacks = [load_stack_file(stack_path(args.stack), args.stack) if args.stack else load_stack_file(
            args.config_file)]
    else:
        stacks = [load_stack_file(p) for p in sorted(STACKS_DIR.glob("Pulumi.*.yaml"))]
    found = []
    for stack in stacks:
        for i, model in enumerate(platform_config(stack).models):
            if not model.source.startswith("oci://"):
                continue
            named = Reference.parse(model.source)
            if (named.host, named.path) == (ref.host, ref.path) and (named.digest == digest or named.tag in tags):
                found.append(f"{stack.source}: pai:models[{i}] {model.name} (tenant {model.tenant})")
    return found


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    model = commands.add_parser("model", help="the model gallery: validate, push, list, pull, promote, register, "
                                "retire")
    sub = model.add_subparsers(dest="model_command", required=True)
    validate_cmd = sub.add_parser("validate", help="hashes, pickle scan, engine fit, parameters and GPU memory")
    push = sub.add_parser("push", help="validate, then push the model as an OCI image with its files under /models")
    for cmd in (validate_cmd, push):
        cmd.add_argument("dir", type=Path, help="the model directory")
        cmd.add_argument("--engine", choices=ENGINES, help="the engine that will serve it")
        cmd.add_argument("--gpu", metavar="PRODUCT", help="a GPU product (nvidia.com/gpu.product) to fit it on")
        cmd.add_argument("--allow-pickle", metavar="REASON",
                         help="accept pickle-based files that scan clean; the reason is recorded in the manifest")
    validate_cmd.add_argument("--format", choices=["table", "json"], default="table")
    push.add_argument("--to", required=True, metavar="REGISTRY/PROJECT/NAME")
    push.add_argument("--tag", required=True, help="the revision's tag (never latest)")
    push.add_argument("--base", metavar="REF", help="an image with a shell on the same registry to build on "
                      "(KServe runs modelcars with sh)")
    list_cmd = sub.add_parser("list", help="the models of a gallery project with their tags and digests")
    list_cmd.add_argument("project", metavar="REGISTRY/PROJECT")
    list_cmd.add_argument("--format", choices=["table", "json"], default="table")
    pull = sub.add_parser("pull", help="the model's files, byte-identical, checked against its manifest")
    pull.add_argument("ref", metavar="REF")
    pull.add_argument("--out", type=Path, required=True)
    promote = sub.add_parser("promote", help="the same digest under a promotion tag")
    promote.add_argument("ref", metavar="REF")
    promote.add_argument("--tag", required=True, help="the promotion tag (approved, prod, ...)")
    promote.add_argument("--to", metavar="REGISTRY/PROJECT/NAME", help="another repository on the same registry")
    register = sub.add_parser("register", help="an MLflow model version whose source is the gallery digest")
    register.add_argument("ref", metavar="REF")
    register.add_argument("--mlflow-uri", help="the MLflow server (default $MLFLOW_TRACKING_URI)")
    register.add_argument("--name", required=True, help="the registered model")
    register.add_argument("--alias", help="an alias to point at the new version (e.g. champion)")
    retire = sub.add_parser("retire", help="remove its tags; refused while a stack's endpoint names it")
    retire.add_argument("ref", metavar="REF")
    stacks = retire.add_mutually_exclusive_group()
    stacks.add_argument("--stack", help="the stack whose endpoints to check (default: every stack in stacks/)")
    stacks.add_argument("--config-file", type=Path, help="a Pulumi.<stack>.yaml file anywhere")
    retire.add_argument("--force", action="store_true", help="retire it even while endpoints name it")
    for cmd, run in ((validate_cmd, _validate), (push, _push), (list_cmd, _list), (pull, _pull),
                     (promote, _promote), (register, _register), (retire, _retire)):
        if cmd not in (validate_cmd,):
            cmd.add_argument("--plain-http", action="store_true", help="plain HTTP, for loopback registries only")
            cmd.add_argument("--authfile", type=Path, help="docker config file (default $REGISTRY_AUTH_FILE, "
                             "~/.docker/config.json)")
        cmd.set_defaults(run=run)


def errors() -> tuple[tuple[type[Exception], ...], tuple[type[Exception], ...]]:
    """(usage: exit 2, refused or failed: exit 1) for the model commands."""
    from components.config import ConfigError
    from components.stackfile import StackFileError
    from models.mlflow import MlflowError

    return (ModelInputError, ConfigError, StackFileError), (OciError, MlflowError)
