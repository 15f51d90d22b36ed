"""Run the Pulumi program offline under Pulumi's own mocks and record every resource it registers.

This is the machinery behind `paictl plan` and the tests: no Pulumi CLI, no engine, no cluster. Secrets
in a stack file are never decrypted: each stands in as a placeholder marked secret, and every secret
value is masked as "[secret]" in what is recorded.
"""

from __future__ import annotations

import asyncio
import atexit
import base64
import json
import os
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
from google.protobuf import json_format
from pulumi.runtime import mocks, rpc, settings
from pulumi.runtime import resource as pulumi_resource
from pulumi.runtime.proto import source_pb2
from pulumi.runtime.stack import run_pulumi_func

from components.config import STACK_FILE_ENV
from components.stackfile import StackFileError, read_stack_document

PROJECT = "pai"


class _SharedExecutor(ThreadPoolExecutor):
    """Pulumi calls the mock monitor from executor threads, each of which keeps an event loop of its own: one
    pool for the whole process, which closing a run's loop does not shut down, reuses those threads (and
    their loops) across runs instead of leaking a loop per run."""

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Kept open for the next run; the threads end with the process."""


_THREAD_LOOPS: list[asyncio.AbstractEventLoop] = []


def _thread_loop() -> None:
    """Give each pool thread the event loop Pulumi would otherwise make lazily, and keep it, so that it is
    closed at exit rather than left to the garbage collector, which finalizes a loop and its sockets in any order
    at interpreter shutdown (an "Invalid file descriptor" traceback on stderr)."""
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    _THREAD_LOOPS.append(loop)


@atexit.register
def _close_thread_loops() -> None:
    """At exit the pool's threads have been joined, so no loop is running."""
    for loop in _THREAD_LOOPS:
        loop.close()


_EXECUTOR = _SharedExecutor(thread_name_prefix="pai-offline", initializer=_thread_loop)
SECRET = "[secret]"
UNKNOWN = "[unknown]"
_CHECKOUT_STACKS = Path(__file__).resolve().parents[1] / "stacks"
# The checkout's stacks/ beside the packages; installed from a wheel, ./stacks of the working directory.
STACKS_DIR = _CHECKOUT_STACKS if _CHECKOUT_STACKS.is_dir() else Path("stacks")


@dataclass(frozen=True)
class Registered:
    """One resource as the program registered it; `inputs` has every secret masked."""

    type: str
    name: str
    parent: str | None
    custom: bool
    inputs: dict[str, Any]
    # The resources it waits for (`depends_on` and those its inputs come from), as `type::name` keys.
    dependencies: tuple[str, ...] = ()
    # A read of an existing object (`Resource.get`, e.g. a VKS cluster's kubeconfig Secret): nothing is created;
    # `inputs` holds its `id`.
    read: bool = False

    @property
    def key(self) -> str:
        return f"{self.type}::{self.name}"


@dataclass
class StackConfig:
    """A stack's config as the Pulumi engine hands it to a program: JSON text per key, secret keys apart."""

    stack: str
    values: dict[str, str] = field(default_factory=dict)
    secret_keys: list[str] = field(default_factory=list)
    source: str = ""


def stack_path(stack: str) -> Path:
    return STACKS_DIR / f"Pulumi.{stack}.yaml"


def load_stack_file(path: Path, stack: str | None = None) -> StackConfig:
    """Read a `Pulumi.<stack>.yaml`; `secure:` values become placeholders that are marked secret."""
    if not path.is_file():
        known = ", ".join(sorted(p.name[len("Pulumi."):-len(".yaml")] for p in STACKS_DIR.glob("Pulumi.*.yaml")))
        raise StackFileError(f"{path}: no such stack file (stacks: {known})")
    document = read_stack_document(path)
    name = stack or path.name.removeprefix("Pulumi.").removesuffix(".yaml")
    result = StackConfig(stack=name, source=_display(path))
    for key, value in (document.get("config") or {}).items():
        full = key if ":" in key else f"{PROJECT}:{key}"
        plain, secret = _unsecure(value, full)
        result.values[full] = plain if isinstance(plain, str) else json.dumps(plain)
        if secret:
            result.secret_keys.append(full)
    return result


def _display(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _unsecure(value: Any, key: str) -> tuple[Any, bool]:
    """Replace `{secure: ...}` values with a placeholder; report whether any was found."""
    if isinstance(value, dict):
        if set(value) == {"secure"}:
            return f"offline-placeholder-for-{key}", True
        pairs = {k: _unsecure(v, f"{key}.{k}") for k, v in value.items()}
        return {k: v for k, (v, _) in pairs.items()}, any(s for _, s in pairs.values())
    if isinstance(value, list):
        items = [_unsecure(v, f"{key}[{i}]") for i, v in enumerate(value)]
        return [v for v, _ in items], any(s for _, s in items)
    return value, False


# Outputs a provider computes that the program builds other inputs from: placeholders stand in for them.
COMPUTED: dict[str, Callable[[str, dict[str, Any]], dict[str, Any]]] = {
    "harbor:index/robotAccount:RobotAccount": lambda name, inputs: {
        "fullName": f"robot${inputs['name']}", "secret": f"offline-placeholder-secret-of-{name}"},
}


# What a read of an existing object (`Resource.get`) finds, by type, from its id: placeholders too.
READS: dict[str, Callable[[str], dict[str, Any]]] = {
    # A workload cluster's kubeconfig Secret (components/vks_cluster.py), data base64-encoded as the API has it.
    "kubernetes:core/v1:Secret": lambda id_: {"data": {"value": base64.b64encode(
        f"# offline placeholder for the kubeconfig in the Secret {id_}\n".encode()).decode()}},
}


class _Mocks(pulumi.runtime.Mocks):
    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str | None, dict[str, Any]]:
        if args.resource_id and args.typ in READS:
            return args.resource_id, READS[args.typ](args.resource_id)
        computed = COMPUTED.get(args.typ)
        outputs = {**(computed(args.name, args.inputs) if computed else {}), **args.inputs}
        return (f"{args.name}-id" if args.custom else None), outputs

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]] | None]:
        return {}, None


class RecordingMonitor(mocks.MockMonitor):
    """Pulumi's mock monitor, also keeping each registration with its parent and secrets masked."""

    def __init__(self) -> None:
        super().__init__(_Mocks())
        self.records: list[Registered] = []
        self._keys: dict[str, str] = {}

    def ReadResource(self, request: Any) -> Any:
        response = super().ReadResource(request)  # type: ignore[no-untyped-call]
        self._record(request, response.urn, custom=True, inputs={"id": _masked(request.id)}, read=True)
        return response

    def RegisterResource(self, request: Any) -> Any:
        response = super().RegisterResource(request)  # type: ignore[no-untyped-call]
        if request.type != "pulumi:pulumi:Stack":
            self._record(request, response.urn, custom=bool(request.custom),
                         inputs=_masked(json_format.MessageToDict(request.object)))
        return response

    def _record(self, request: Any, urn: str, custom: bool, inputs: dict[str, Any], read: bool = False) -> None:
        """Record a registered or read resource, its parent and what it waits for named by their `type::name`."""
        self._keys[urn] = f"{request.type}::{request.name}"
        self.records.append(Registered(
            type=request.type,
            name=request.name,
            parent=self._keys.get(request.parent),
            custom=custom,
            inputs=inputs,
            dependencies=tuple(sorted(self._keys.get(dep, dep) for dep in request.dependencies)),
            read=read,
        ))


def _masked(value: Any) -> Any:
    """Plain data from the wire form: secrets become "[secret]", unknowns "[unknown]". A secret map or list
    (e.g. a Kubernetes Secret's stringData) keeps its keys and shape with every value masked, so the object
    still validates against its schema."""
    if isinstance(value, dict):
        sig = value.get(rpc._special_sig_key)
        if sig == rpc._special_secret_sig:
            return _secret_shape(_masked(value.get("value")))
        if sig == rpc._special_resource_sig:
            return value.get("urn", "")
        return {k: _masked(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_masked(v) for v in value]
    if value == rpc.UNKNOWN:
        return UNKNOWN
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _secret_shape(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _secret_shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_secret_shape(v) for v in value]
    return SECRET


@contextmanager
def _stack_file_env(source: str) -> Iterator[None]:
    before = os.environ.get(STACK_FILE_ENV)
    os.environ[STACK_FILE_ENV] = source
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(STACK_FILE_ENV, None)
        else:
            os.environ[STACK_FILE_ENV] = before


@contextmanager
def _without_source_positions() -> Iterator[None]:
    """Register without source positions. For each resource Pulumi walks the Python stack and turns every frame into
    a file URI, for the engine's UI; the mocks ignore it, and in a plan, whose resources are built a dozen frames
    deep, it cost about as much as the rest of the program's own share (bench/plan_scale.py)."""
    before = pulumi_resource._get_stack_trace
    pulumi_resource._get_stack_trace = source_pb2.StackTrace  # called without arguments: an empty trace
    try:
        yield
    finally:
        pulumi_resource._get_stack_trace = before


def run_offline(program: Callable[[], Any], config: StackConfig,
                monitor: RecordingMonitor | None = None) -> list[Registered]:
    """Run `program` under mocks with `config`; return what it registered. Errors propagate; what was
    registered before one stays readable in `monitor.records`."""
    loop = asyncio.new_event_loop()
    loop.set_default_executor(_EXECUTOR)
    asyncio.set_event_loop(loop)
    monitor = monitor or RecordingMonitor()
    settings.reset_options()
    pulumi.runtime.set_mocks(monitor.mocks, project=PROJECT, stack=config.stack, preview=False, monitor=monitor)
    pulumi.runtime.set_all_config(dict(config.values), list(config.secret_keys))
    try:
        with _stack_file_env(config.source or str(stack_path(config.stack))), _without_source_positions():
            loop.run_until_complete(run_pulumi_func(program))
    finally:
        loop.close()
        asyncio.set_event_loop(None)
    return monitor.records
