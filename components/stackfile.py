"""The one reader of a Pulumi stack file (`Pulumi.<stack>.yaml`) for `paictl plan/validate/bom` and the tests.

Strict where YAML is lenient, so that a stack file means one thing, and fast on hostile input: duplicate keys,
aliases (an alias bomb expands exponentially), non-string keys, dates, `!!binary` and other tags, nesting deeper
than MAX_DEPTH, files that are not UTF-8 or are over MAX_BYTES are refused with one line naming the file and the
line. Values stay as YAML types; the config models say what each key allows.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from yaml.composer import Composer
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node

MAX_BYTES = 1 << 20
MAX_DEPTH = 32
MAX_SHOWN = 60
STR_TAG = "tag:yaml.org,2002:str"
PLAIN_TAGS = {f"tag:yaml.org,2002:{t}" for t in ("str", "int", "float", "bool", "null", "map", "seq")}


class StackFileError(Exception):
    """A stack file that cannot be read as a Pulumi stack config."""


def shown(value: object) -> str:
    """A value for a message, cut to MAX_SHOWN characters: error messages never echo a huge value whole."""
    text = repr(value)
    return text if len(text) <= MAX_SHOWN else f"{text[:MAX_SHOWN]}... ({len(text)} characters)"


class _Problem(Exception):
    def __init__(self, node: Node | None, message: str) -> None:
        super().__init__(message)
        self.line = node.start_mark.line + 1 if node is not None else None


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses aliases before expanding them, bounds nesting, and constructs only plain types."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self._depth = 0

    def compose_node(self, parent: Node | None, index: object) -> Node | None:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()  # type: ignore[no-untyped-call]
            raise _Problem(None, f"line {event.start_mark.line + 1}: YAML aliases (*{event.anchor}) are not "
                                 "allowed in a stack file; write the value out")
        self._depth += 1
        if self._depth > MAX_DEPTH:
            event = self.peek_event()  # type: ignore[no-untyped-call]
            raise _Problem(None, f"line {event.start_mark.line + 1}: nested deeper than {MAX_DEPTH} levels")
        try:
            return Composer.compose_node(self, parent, index)  # type: ignore[arg-type]
        finally:
            self._depth -= 1

    def construct_object(self, node: Node, deep: bool = False) -> Any:
        if node.tag not in PLAIN_TAGS:
            what = {"tag:yaml.org,2002:timestamp": f"{node.value} is a date",
                    "tag:yaml.org,2002:binary": "!!binary values are not allowed"}.get(
                node.tag, f"the tag {node.tag.removeprefix('tag:yaml.org,2002:')} is not allowed")
            raise _Problem(node, f"{what}; quote the value" if "date" in what else what)
        return super().construct_object(node, deep)

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[str, int] = {}
        for key_node, _ in node.value:
            if key_node.tag != STR_TAG:
                raise _Problem(key_node, f"the key {shown(key_node.value)} is not a string; quote it")
            line = key_node.start_mark.line + 1
            if key_node.value in seen:
                raise _Problem(key_node, f"duplicate key {shown(key_node.value)} (first at line "
                                         f"{seen[key_node.value]})")
            seen[key_node.value] = line
        return SafeConstructor.construct_mapping(self, node, deep)


def read_stack_document(path: Path) -> dict[str, Any]:
    """The stack file's top-level mapping; StackFileError with one line on anything else."""
    try:
        size = path.stat().st_size
        if size > MAX_BYTES:
            raise StackFileError(f"{path}: {size} bytes; a stack file is at most {MAX_BYTES} bytes")
        data = path.read_bytes()
    except OSError as exc:
        raise StackFileError(f"{path}: {exc.strerror}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise StackFileError(f"{path}: not UTF-8 text (byte {data[exc.start]:#04x} at offset {exc.start})") from None
    loader = _StrictLoader(text)
    try:
        document = loader.get_single_data()
    except _Problem as exc:
        where = f"line {exc.line}: " if exc.line else ""
        raise StackFileError(f"{path}: {where}{exc}") from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f"line {mark.line + 1}: " if mark else ""
        raise StackFileError(f"{path}: {where}not valid YAML: {exc.problem}") from None
    except yaml.YAMLError as exc:
        raise StackFileError(f"{path}: not valid YAML: {str(exc).splitlines()[0]}") from None
    finally:
        loader.dispose()
    if document is None:
        return {}
    if not isinstance(document, dict) or not isinstance(document.get("config", {}), dict):
        raise StackFileError(f"{path}: expected a mapping with a `config:` mapping of keys to values")
    return document
