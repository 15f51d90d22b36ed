"""Image references as the container tools read them: one normaliser for config, Helm values, validation and the
air gap, so a Docker Hub short name (`vllm/vllm-openai:v0.20.0`, `busybox:1.36`) is the same image everywhere."""

from __future__ import annotations

DOCKER_HUB = "docker.io"


def normalized(ref: str) -> str:
    """The reference with its registry host, as docker and skopeo resolve it: a first path part that is not a host
    (no `.` or `:`, not `localhost`) means Docker Hub, and a one-part name is under `library/`.
    `busybox:1.36` -> `docker.io/library/busybox:1.36`; `vllm/vllm-openai:v1` -> `docker.io/vllm/vllm-openai:v1`;
    `index.docker.io/busybox` -> `docker.io/library/busybox`."""
    first, _, rest = ref.partition("/")
    if first == "index.docker.io":
        first = DOCKER_HUB
    if rest and ("." in first or ":" in first or first == "localhost"):
        if first == DOCKER_HUB and "/" not in rest:
            return f"{DOCKER_HUB}/library/{rest}"
        return f"{first}/{rest}"
    return f"{DOCKER_HUB}/{ref}" if rest else f"{DOCKER_HUB}/library/{ref}"


def repository_path(ref: str) -> str:
    """The repository path without the registry host: `nvcr.io/nvidia/k8s/x` -> `nvidia/k8s/x`,
    `vllm/vllm-openai` -> `vllm/vllm-openai`; where an image lands on a mirror."""
    return normalized(ref).split("/", 1)[1]
