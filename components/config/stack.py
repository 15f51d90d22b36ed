"""Reading the running Pulumi stack's config: its keys, its file, the parse of `pai:`."""

from __future__ import annotations

import json
import os
from typing import Any

import pulumi
from pulumi.runtime import config as runtime_config
from pydantic import ValidationError

from components.config.consistency import consistency_errors
from components.config.messages import _describe, _top_level_keys
from components.config.resolver import resolve_registered
from components.config.schema import NAMESPACE, SECRET_KEYS, ConfigError, PlatformConfig, Secrets
from components.stackfile import shown

# Config namespaces a stack file may use besides pai: the providers the program runs (a key in any other namespace
# would be ignored, so a misspelled `pia:mlflow` is refused rather than dropped).
OTHER_NAMESPACES = ("kubernetes", "harbor", "pulumi")
STACK_FILE_ENV = "PAI_STACK_FILE"


def stack_file() -> str:
    """The file the config came from, for messages: set by paictl, else the stack's file under stacks/."""
    return os.environ.get(STACK_FILE_ENV) or f"stacks/Pulumi.{pulumi.get_stack()}.yaml"


def _all_config() -> dict[str, Any]:
    """Every key of the running stack, with its namespace."""
    return {**runtime_config.get_config_env(), **runtime_config.CONFIG.get()}


def _raw_config() -> dict[str, Any]:
    """Every `pai:` key of the running stack, without the namespace."""
    prefix = f"{NAMESPACE}:"
    return {k[len(prefix):]: v for k, v in _all_config().items() if k.startswith(prefix)}


def _namespace_errors() -> list[str]:
    """Keys in a namespace the program reads nothing from: most likely a misspelled `pai:`."""
    errors = []
    for key in sorted(_all_config()):
        namespace, _, name = key.partition(":")
        if namespace not in (NAMESPACE, *OTHER_NAMESPACES):
            errors.append(f"{shown(key)[1:-1]}: unknown namespace {shown(namespace)}; the platform's keys are "
                          f"pai:<key> (pai:{name}?), provider settings {', '.join(f'{n}:' for n in OTHER_NAMESPACES)}")
    return errors


def _decode(value: Any) -> Any:
    """Pulumi hands object and list values over as JSON text."""
    if isinstance(value, str) and value[:1] in "[{":
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value


def from_pulumi(cls: type[PlatformConfig]) -> PlatformConfig:
    """Parse the running stack's `pai:` config into `cls`; raises ConfigError naming every problem."""
    raw = _raw_config()
    source = stack_file()
    plain = {k: _decode(v) for k, v in raw.items() if k not in SECRET_KEYS}
    errors = _namespace_errors()
    errors += [f"pai:{k}: must be a secret: set it with `pulumi config set --secret {k} ...`"
              for k in SECRET_KEYS if k in raw and not runtime_config.is_config_secret(f"{NAMESPACE}:{k}")]
    errors += [f"pai:{k}: unknown key; allowed: {', '.join(_top_level_keys())}"
               for k in sorted(plain) if k not in cls.model_fields or k == "secrets"]
    parsed: PlatformConfig | None = None
    if not errors:
        try:
            parsed = cls.model_validate(plain)
        except ValidationError as exc:
            errors = [_describe(e) for e in exc.errors()]
    if parsed is not None:
        parsed, errors = resolve_registered(parsed)
        errors += consistency_errors(parsed, set(raw))
    if errors:
        raise ConfigError("\n".join(f"{source}: {e}" for e in errors))
    assert parsed is not None
    cfg = pulumi.Config(NAMESPACE)
    secrets = Secrets(**{k: cfg.require_secret(k) for k in SECRET_KEYS if k in raw})
    return parsed.model_copy(update={"secrets": secrets})
