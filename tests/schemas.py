"""Check emitted objects and Helm values against the pinned upstream schemas.

The facts live in tests/reference/, derived from ../shared/reference by scripts/derive-reference.py (chart
defaults and dependencies, CRD schemas without descriptions, interop tables), so a clone tests alone.
"""

from __future__ import annotations

import copy
import difflib
import functools
import json
import re
from collections.abc import Collection
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
from kubernetes_validate.utils import all_versions
from packaging.version import Version

REFERENCE = Path(__file__).resolve().parent / "reference"

# Loose ObjectMeta: the API server owns the rest of metadata.
_METADATA: dict[str, Any] = {
    "type": "object",
    "required": ["name"],
    "properties": {
        "name": {"type": "string"},
        "namespace": {"type": "string"},
        "labels": {"type": "object", "additionalProperties": {"type": "string"}},
        "annotations": {"type": "object", "additionalProperties": {"type": "string"}},
    },
}
# Values paths a chart documents only in its comments, by chart: not checked at or below. gateway-helm's
# config.envoyGateway is the EnvoyGateway API ("Visit .../extension_types/#envoygateway to view all options"); its
# values.yaml spells out only a few of its fields.
DOCUMENTED_IN_COMMENTS: dict[str, tuple[str, ...]] = {
    "gateway-helm": ("config.envoyGateway.extensionManager",),
    # "DCGM Exporter configuration ... config: name / create / data" (commented block under dcgmExporter); the
    # ClusterPolicy template reads dcgm and dcgmExporter imagePullSecrets though values.yaml omits them
    # (templates/clusterpolicy.yaml at v25.3.0 and v26.7.0, scripts/verify-charts.py check a).
    "gpu-operator": ("dcgmExporter.config", "dcgm.imagePullSecrets", "dcgmExporter.imagePullSecrets"),
}
# Helm value keys that hold free-form maps or Kubernetes structs by convention: not checked below.
_FREE_FORM_KEY = re.compile(r"(annotations|labels|selector|securitycontext|resources|affinity)$", re.I)


class SchemaError(Exception):
    """An object or a set of Helm values that does not match its pinned schema."""


def _name(obj: dict[str, Any]) -> str:
    meta = obj.get("metadata")
    return f"{obj.get('kind', '?')}/{meta.get('name', '?') if isinstance(meta, dict) else '?'}"


def _gvk(obj: dict[str, Any]) -> tuple[str, str, str]:
    """(group, version, kind) of an object; the core group is ''."""
    api_version, kind = obj.get("apiVersion"), obj.get("kind")
    if not isinstance(api_version, str) or not isinstance(kind, str):
        raise SchemaError(f"{_name(obj)}: apiVersion and kind must be strings")
    group, _, version = api_version.rpartition("/")
    return group, version, kind


def _error(name: str, error: Any) -> SchemaError:
    """A short message from a jsonschema error: the object, the failing path and the message."""
    path = ".".join(str(part) for part in error.absolute_path)
    message = error.message if len(error.message) <= 300 else error.message[:300] + "..."
    return SchemaError(f"{name}: {path}: {message}" if path else f"{name}: {message}")


def validate_core(obj: dict[str, Any], kubernetes_version: str) -> None:
    """Validate a built-in Kubernetes object, rejecting unknown fields."""
    _gvk(obj)
    wanted = Version(kubernetes_version.removeprefix("v"))
    known = [v for v in all_versions() if Version(v) <= wanted]
    if not known:
        raise SchemaError(f"{_name(obj)}: no Kubernetes schema for {kubernetes_version} or older")
    try:
        kubernetes_validate.validate(obj, known[-1], strict=True)
    except kubernetes_validate.ValidationError as e:
        raise _error(_name(obj), e) from None
    except kubernetes_validate.SchemaNotFoundError as e:
        raise SchemaError(f"{_name(obj)}: {e.message}") from None


def _read(path: Path) -> Any:
    return json.loads(path.read_text())


@functools.cache
def reference_crds(project: str, folder: str = "crds") -> list[dict[str, Any]]:
    """The CRDs of one upstream project folder (e.g. gpu-operator-v26.7.0; `folder` crds-older for an older
    release): name, group, kind and versions."""
    path = REFERENCE / folder / f"{project}.json"
    if not path.is_file():
        raise SchemaError(f"no reference CRDs for {project} under {REFERENCE / folder}")
    crds: list[dict[str, Any]] = _read(path)["crds"]
    return crds


@functools.cache
def _crds() -> dict[tuple[str, str], dict[str, Any]]:
    """Reference CRDs by (group, kind)."""
    crds: dict[tuple[str, str], dict[str, Any]] = {}
    for path in sorted((REFERENCE / "crds").glob("*.json")):
        for crd in reference_crds(path.stem):
            key = (crd["group"], crd["kind"])
            if key in crds:
                raise SchemaError(f"{path}: a second reference CRD for {key[1]}.{key[0]}")
            crds[key] = crd
    return crds


def _crd(group: str, kind: str, older: str | None = None) -> dict[str, Any]:
    """The kind's reference CRD; `older` names an upstream release under crds-older/ to take it from instead."""
    if older:
        found = [c for c in reference_crds(older, "crds-older") if (c["group"], c["kind"]) == (group, kind)]
        if not found:
            raise SchemaError(f"{REFERENCE / 'crds-older' / older}.json: no CRD for {kind}.{group}")
        return found[0]
    try:
        return _crds()[(group, kind)]
    except KeyError:
        raise SchemaError(f"no reference CRD for {kind}.{group} under {REFERENCE / 'crds'}") from None


def crd_versions(group: str, kind: str, older: str | None = None) -> list[str]:
    """The versions the CRD serves, in the CRD's order."""
    return [v["name"] for v in _crd(group, kind, older)["versions"] if v.get("served")]


def crd_storage_version(group: str, kind: str) -> str:
    """The CRD's storage version."""
    return str(next(v["name"] for v in _crd(group, kind)["versions"] if v.get("storage")))


def _structural(schema: dict[str, Any], in_junctor: bool = False) -> dict[str, Any]:
    """Translate a CRD schema node to draft-4 JSON Schema with the API server's semantics.

    Unknown fields are rejected where the API server would prune them, int-or-string and nullable
    are honoured, and required fields that have a default are not required (the server defaults
    them). Inside allOf/anyOf/oneOf/not only value validations apply, so nothing is added there.
    """
    out = {k: v for k, v in schema.items() if k not in ("properties", "items", "additionalProperties")}
    if isinstance(schema.get("pattern"), str):  # Go allows flags after the anchor, Python does not
        out["pattern"] = re.sub(r"^\^(\(\?[a-z]+\))", r"\1^", schema["pattern"])
    if "properties" in schema:
        out["properties"] = {k: _structural(v, in_junctor) for k, v in schema["properties"].items()}
    for key in ("items", "additionalProperties"):
        if isinstance(schema.get(key), dict):
            out[key] = _structural(schema[key], in_junctor)
    for key in ("allOf", "anyOf", "oneOf"):
        if key in schema:
            out[key] = [_structural(s, True) for s in schema[key]]
    if "not" in schema:
        out["not"] = _structural(schema["not"], True)
    if in_junctor:
        return out
    if schema.get("x-kubernetes-int-or-string"):
        out["type"] = ["integer", "string"]
    if schema.get("nullable"):
        if "type" in out:
            out["type"] = [*([out["type"]] if isinstance(out["type"], str) else out["type"]), "null"]
        if "enum" in out:
            out["enum"] = [*out["enum"], None]
    if (
        (schema.get("type") == "object" or "properties" in schema)
        and "additionalProperties" not in schema
        and not schema.get("x-kubernetes-preserve-unknown-fields")
    ):
        out["additionalProperties"] = False
    if "required" in schema:
        properties = schema.get("properties", {})
        out["required"] = [r for r in schema["required"] if "default" not in properties.get(r, {})]
    return out


@functools.cache
def _validator(group: str, kind: str, version: str, older: str | None = None) -> Any:
    (entry,) = (v for v in _crd(group, kind, older)["versions"] if v["name"] == version)
    schema = _structural(entry["schema"])
    schema["properties"]["metadata"] = _METADATA
    schema["required"] = sorted({*schema.get("required", []), "apiVersion", "kind", "metadata"})
    return jsonschema.Draft4Validator(schema)


def validate_custom_resource(obj: dict[str, Any], older: str | None = None) -> None:
    """Validate a custom resource against the openAPIV3Schema of its reference CRD version; `older` names an
    upstream release under crds-older/ (e.g. cluster-api-v1.10.10) to validate against instead."""
    group, version, kind = _gvk(obj)
    if older is None and (group, kind) not in _crds():
        raise SchemaError(f"{_name(obj)}: no reference CRD for {kind}.{group} under {REFERENCE / 'crds'}")
    served = crd_versions(group, kind, older)
    if version not in served:
        raise SchemaError(
            f"{_name(obj)}: {kind}.{group} does not serve {version} (served: {', '.join(served)})"
        )
    error = jsonschema.exceptions.best_match(_validator(group, kind, version, older).iter_errors(obj))
    if error is not None:
        raise _error(_name(obj), error)


@functools.cache
def _topology_variable_validators() -> dict[str, Any]:
    """A validator per topology variable of the grouped builtin-generic ClusterClasses (a partial transcription:
    tests/reference/vks/)."""
    path = REFERENCE / "vks" / "builtin-generic-v3.x-variables.partial.schema.json"
    return {name: jsonschema.Draft4Validator(schema) for name, schema in _read(path)["variables"].items()}


def validate_topology_variables(cluster: dict[str, Any]) -> None:
    """Every variable a Cluster sets, cluster-wide and in each machineDeployment's overrides, is a variable of
    the grouped builtin-generic classes and its value matches that variable's schema."""
    topology = cluster["spec"]["topology"]
    given = [(f"spec.topology.variables[{i}]", v) for i, v in enumerate(topology.get("variables", []))]
    for d, deployment in enumerate(topology.get("workers", {}).get("machineDeployments", [])):
        overrides = deployment.get("variables", {}).get("overrides", [])
        given += [(f"spec.topology.workers.machineDeployments[{d}].variables.overrides[{i}]", v)
                  for i, v in enumerate(overrides)]
    validators = _topology_variable_validators()
    for path, variable in given:
        if variable["name"] not in validators:
            raise SchemaError(f"{_name(cluster)}: {path}: {variable['name']!r} is not a variable of the grouped "
                              f"builtin-generic classes ({', '.join(sorted(validators))})")
        error = jsonschema.exceptions.best_match(validators[variable["name"]].iter_errors(variable["value"]))
        if error is not None:
            raise _error(f"{_name(cluster)}: {path} ({variable['name']})", error)


def validate_object(obj: dict[str, Any], kubernetes_version: str) -> None:
    """Validate any object: against its reference CRD if there is one, else as a built-in object."""
    group, _, kind = _gvk(obj)
    if (group, kind) in _crds() or ("." in group and not group.endswith(".k8s.io")):
        validate_custom_resource(obj)
    else:
        validate_core(obj, kubernetes_version)


def _chart_file(chart: str, version: str) -> Path:
    """A chart version's facts file; reference folders are named by git tag (Kueue chart 0.19.2 at v0.19.2)."""
    chart_dir = REFERENCE / "charts" / chart
    if not (chart_dir / f"{version}.json").is_file() and (chart_dir / f"v{version}.json").is_file():
        return chart_dir / f"v{version}.json"
    return chart_dir / f"{version}.json"


def has_chart(chart: str, version: str) -> bool:
    """Whether there are reference facts for this chart version."""
    return _chart_file(chart, version).is_file()


@functools.cache
def _chart_facts(chart: str, version: str) -> dict[str, Any]:
    """A chart version's reference facts: `values` (the defaults) and `dependencies` (its subcharts)."""
    path = _chart_file(chart, version)
    chart_dir = path.parent
    if not chart_dir.is_dir():
        charts = ", ".join(sorted(p.name for p in chart_dir.parent.iterdir()))
        raise SchemaError(f"no reference chart {chart} (available charts: {charts})")
    if not path.is_file():
        versions = ", ".join(sorted(p.stem for p in chart_dir.glob("*.json")))
        raise SchemaError(f"{chart} {version}: no reference values (available versions: {versions})")
    facts: dict[str, Any] = _read(path)
    return facts


def _chart(chart: str, version: str) -> tuple[dict[str, Any], frozenset[str]]:
    """A chart's default values and the names its subcharts' values go under."""
    facts = _chart_facts(chart, version)
    return facts["values"], frozenset(d.get("alias") or d["name"] for d in facts["dependencies"])


def chart_dependencies(chart: str, version: str) -> list[dict[str, Any]]:
    """The chart's subchart dependencies as its Chart.yaml lists them (name, version, condition, alias)."""
    return copy.deepcopy(_chart_facts(chart, version)["dependencies"])


@functools.cache
def interop_facts() -> dict[str, Any]:
    """The interop tables the matrix data is held to: toolkit_driver_table, vgpu_releases, gpu_compute_capability."""
    facts: dict[str, Any] = _read(REFERENCE / "interop.json")
    return facts


def chart_defaults(chart: str, version: str) -> dict[str, Any]:
    """A copy of the chart's default values."""
    return copy.deepcopy(_chart(chart, version)[0])


def _value_errors(
    values: dict[Any, Any], defaults: dict[Any, Any], prefix: str, free: Collection[str]
) -> list[str]:
    errors: list[str] = []
    for key, value in values.items():
        path = f"{prefix}{key}"
        if path in free:
            continue
        if key not in defaults:
            nearby = difflib.get_close_matches(str(key), [str(k) for k in defaults], n=3)
            hint = f" (nearby: {', '.join(prefix + n for n in nearby)})" if nearby else ""
            errors.append(f"values path {path} does not exist{hint}")
            continue
        default = defaults[key]
        if default in (None, {}) or isinstance(default, list) or _FREE_FORM_KEY.search(str(key)):
            continue
        if isinstance(default, dict) and isinstance(value, dict):
            errors += _value_errors(value, default, f"{path}.", free)
        elif isinstance(default, dict) and value is not None:
            errors.append(f"values path {path} is a map in the defaults, not {type(value).__name__}")
        elif not isinstance(default, dict) and isinstance(value, dict):
            errors.append(f"values path {path} is a scalar in the defaults ({default!r}), not a map")
    return errors


def validate_helm_values(
    chart: str, version: str, values: dict[str, Any], allow: Collection[str] = ()
) -> None:
    """Check every path set in values exists in the chart's defaults.

    Anything goes below a default that is {}, a list or null, below a free-form key (labels,
    annotations, nodeSelector, resources, ...), below a subchart's key, and at or below a dotted
    path in allow or in DOCUMENTED_IN_COMMENTS (values the chart documents only in comments).
    """
    defaults, subcharts = _chart(chart, version)
    errors = _value_errors(values, defaults, "", {*subcharts, *allow, *DOCUMENTED_IN_COMMENTS.get(chart, ())})
    if errors:
        raise SchemaError(f"{chart} {version}: {'; '.join(errors)}")
