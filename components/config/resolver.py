"""The hook that resolves `mlflow://NAME@ALIAS` model sources to gallery digests."""

from __future__ import annotations

from collections.abc import Callable

from components.config.schema import MLFLOW_SOURCE, OCI_DIGEST_SOURCE, PlatformConfig

# (registered model, alias) -> the gallery reference by digest its version names (oci://HOST/PATH@sha256:...);
# raises LookupError saying why not. Installed by what can reach MLflow (paictl, the stack's entry point).
ModelResolver = Callable[[str, str], str]
_RESOLVER: list[ModelResolver] = []


def set_model_resolver(resolver: ModelResolver | None) -> None:
    """Resolve `mlflow://` model sources with `resolver` from now on (None: refuse them)."""
    _RESOLVER[:] = [resolver] if resolver else []


def resolve_registered(cfg: PlatformConfig) -> tuple[PlatformConfig, list[str]]:
    """The config with every `mlflow://NAME@ALIAS` source replaced by the gallery digest the alias names now."""
    models, errors = [], []
    for i, model in enumerate(cfg.models):
        found = MLFLOW_SOURCE.match(model.source)
        if not found:
            models.append(model)
            continue
        try:
            if not _RESOLVER:
                raise LookupError("no MLflow to resolve it from (run through paictl, or set MLFLOW_TRACKING_URI)")
            digest = _RESOLVER[0](found["name"], found["alias"])
            if not OCI_DIGEST_SOURCE.match(digest):
                raise LookupError(f"its model version's source {digest!r} is not a gallery reference by digest")
        except LookupError as exc:
            errors.append(f"pai:models[{i}].source: {model.source}: {exc}")
            models.append(model)
            continue
        resolved = model.model_copy(update={"source": digest})
        resolved._registered = model.source
        models.append(resolved)
    return cfg.model_copy(update={"models": models}), errors
