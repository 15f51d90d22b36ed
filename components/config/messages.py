"""One line per pydantic error: the key path, the offending value and what is allowed."""

from __future__ import annotations

import types
import typing
from typing import Any

from components.config.schema import NAMESPACE, PATTERNS, SECRET_KEYS, PlatformConfig
from components.stackfile import shown


def _top_level_keys() -> list[str]:
    return [f"pai:{k}" for k in [*PlatformConfig.model_fields, *SECRET_KEYS] if k != "secrets"]


def _describe(error: Any) -> str:
    """One line for one pydantic error: key path, offending value, what is allowed."""
    loc = error["loc"]
    path = _path(loc)
    kind = error["type"]
    value = error.get("input")
    if kind == "extra_forbidden":
        allowed = _allowed_keys(loc[:-1])
        return f"{path}: unknown key; allowed: {', '.join(allowed)}"
    if kind == "missing":
        return f"{path}: required key is missing"
    if kind in ("literal_error", "enum"):
        expected = error["ctx"]["expected"].replace(" or ", ", ").replace("'", "")
        return f"{path}: {shown(value)} is not one of {expected}"
    if kind == "string_pattern_mismatch":
        pattern = error["ctx"]["pattern"]
        return f"{path}: {shown(value)} is not {PATTERNS.get(pattern, 'of the form ' + pattern)}"
    if kind == "value_error":
        return f"{path}: {error['msg'].removeprefix('Value error, ')}"
    if kind == "string_type" and isinstance(value, int | float) and not isinstance(value, bool):
        return (f"{path}: {shown(value)} is a number in YAML, not a string: quote it in the stack file (unquoted, "
                "YAML reads 1.30 as the number 1.3)")
    if kind in TYPE_NAMES:
        return f"{path}: {shown(value)} is not {TYPE_NAMES[kind]}"
    return f"{path}: {error['msg'].lower()} (got {shown(value)})"


TYPE_NAMES = {
    "int_parsing": "an integer", "int_type": "an integer", "int_from_float": "an integer",
    "bool_parsing": "true or false", "bool_type": "true or false",
    "string_type": "a string", "list_type": "a list", "dict_type": "a mapping", "model_type": "a mapping",
    "model_attributes_type": "a mapping",
}


def _path(loc: tuple[Any, ...]) -> str:
    text = f"{NAMESPACE}:"
    for i, part in enumerate(loc):
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += ("." if i else "") + str(part)
    return text


def _allowed_keys(loc: tuple[Any, ...]) -> list[str]:
    """The keys the model at `loc` accepts, found by walking the field annotations."""
    annotation: Any = PlatformConfig
    for part in loc:
        annotation = _model_of(annotation)
        if isinstance(part, int):
            annotation = typing.get_args(annotation)[0]
        else:
            annotation = annotation.model_fields[part].annotation
    model = _model_of(annotation)
    return [k for k in model.model_fields if k != "secrets"]


def _model_of(annotation: Any) -> Any:
    """Strip Optional[...] from an annotation."""
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        return next(a for a in typing.get_args(annotation) if a is not type(None))
    return annotation
