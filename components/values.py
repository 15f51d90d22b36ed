"""Helpers for Helm values shared by every component: nested paths, deep merge, and the air-gap rewrite of an
image repository onto the private mirror."""

from __future__ import annotations

from typing import Any

from components.catalog import ChartImage
from components.images import repository_path


def mirrored(repository: str, mirror: str) -> str:
    """registry.example/path -> <mirror>/path: the repository's path on the air-gap mirror (a Docker Hub short name
    keeps its whole path: vllm/vllm-openai -> <mirror>/vllm/vllm-openai, where mirror and import put it)."""
    return f"{mirror}/{repository_path(repository)}"


def nested(path: str, value: dict[str, Any]) -> dict[str, Any]:
    """a.b.c, value -> {a: {b: {c: value}}}."""
    for key in reversed(path.split(".")):
        value = {key: value}
    return value


def merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """Deep merge of nested dicts; `extra` wins on scalars."""
    out = dict(base)
    for key, value in extra.items():
        out[key] = merge(out[key], value) if isinstance(out.get(key), dict) and isinstance(value, dict) else value
    return out


def on_mirror(repository: str, mirror: str | None) -> str:
    """The repository to pull from: upstream, or its path on the air-gap mirror (unless it is there already)."""
    if not mirror or repository.startswith(f"{mirror}/"):
        return repository
    return mirrored(repository, mirror)


def chart_images(images: dict[str, ChartImage], mirror: str | None) -> dict[str, Any]:
    """Helm values pinning every image a chart deploys (catalog `charts.<key>.images`): repository and tag from the
    catalog, the repository on the mirror in air-gap mode."""
    values: dict[str, Any] = {}
    for path, image in images.items():
        values = merge(values, nested(path, {"repository": on_mirror(image.repository, mirror), "tag": image.tag}))
    return values
