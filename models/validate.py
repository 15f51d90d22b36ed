"""`paictl model validate`: everything a model directory must pass before it may enter the gallery.

A sha256 of every file (the manifest `pai-model.json`, written beside the model and carried into the artifact),
the serialization-attack scan of every pickle-based file (models/scan.py; such formats are refused unless an
operator accepts them with a reason, which the manifest records), the engine fit by the engine rule (safetensors
plus config.json for vLLM, GGUF for llama.cpp, safetensors or ONNX for Infinity), and the parameter count and
weight bytes from the headers (models/weights.py) against the framebuffer of a GPU product from the matrix data.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from airgap.oci import CHUNK
from models import layout, scan, weights
from validation.matrix import load_matrix

MANIFEST = "pai-model.json"
MANIFEST_MEDIA_TYPE = "application/vnd.pai.model.manifest.v1+json"
ENGINES = ("vllm", "infinity", "llamacpp")
WEIGHT_FORMATS = {".safetensors": "safetensors", ".gguf": "gguf", ".onnx": "onnx"}
ENGINE_NEEDS = {"vllm": "safetensors weights and config.json", "infinity": "safetensors or ONNX weights",
                "llamacpp": "GGUF weights"}
GB = 10**9  # GPU memory as NVIDIA labels it; the weights in the same unit


class ModelInputError(Exception):
    """A command line or directory that cannot be validated at all (exit 2)."""


@dataclass(frozen=True)
class FileEntry:
    path: str  # relative, with / separators
    size: int
    sha256: str
    layer: str | None = None  # a large file: the digest of the layer that holds only it (models/layout.py)
    mtime_ns: int = 0  # when it was validated


@dataclass
class Report:
    """The outcome of validating one model directory."""

    directory: Path
    files: list[FileEntry] = field(default_factory=list)
    formats: list[str] = field(default_factory=list)
    weights: weights.Weights = field(default_factory=weights.Weights)
    engines: list[str] = field(default_factory=list)
    engine: str | None = None
    gpu: str | None = None
    gpu_memory_gb: int | None = None
    findings: list[scan.Finding] = field(default_factory=list)
    allow_pickle: str | None = None
    failures: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures

    def manifest(self) -> dict[str, Any]:
        """The content of pai-model.json: deterministic, so one model always gives one artifact digest."""
        return {
            "mediaType": MANIFEST_MEDIA_TYPE,
            "formats": self.formats,
            "architecture": self.weights.architecture,
            "parameters": self.weights.parameters,
            "dtype": self.weights.dtype,
            "weightBytes": self.weights.weight_bytes,
            "engines": self.engines,
            "scanner": scan.scanner_name(),
            "findings": [{"file": f.file, "global": f.global_name, "severity": f.severity} for f in self.findings],
            "allowPickle": self.allow_pickle,
            "files": [{"path": f.path, "size": f.size, "sha256": f.sha256} for f in self.files],
        }

    def to_json(self) -> str:
        body = {"verdict": "pass" if self.ok else "fail", "directory": str(self.directory), **self.manifest(),
                "gpu": self.gpu, "gpuMemoryGb": self.gpu_memory_gb, "failures": self.failures}
        return json.dumps(body, indent=2) + "\n"

    def to_table(self) -> str:
        w = self.weights
        rows = [("model", str(self.directory)),
                ("files", f"{len(self.files)} ({decimal_size(sum(f.size for f in self.files))})"),
                ("formats", ", ".join(self.formats) or "none"),
                ("architecture", w.architecture or "unknown"),
                ("parameters", f"{w.parameters:,}" if w.parameters else "not counted"),
                ("weights", f"{decimal_size(w.weight_bytes)} at {w.dtype}" if w.dtype else "not counted"),
                ("engines", ", ".join(self.engines) or "none")]
        if self.gpu:
            rows.append(("gpu", f"{self.gpu} ({self.gpu_memory_gb} GB)"))
        rows += [("finding", str(f)) for f in self.findings]
        if self.allow_pickle:
            rows.append(("allow-pickle", self.allow_pickle))
        rows += [("FAIL", reason) for reason in self.failures]
        rows.append(("verdict", "pass" if self.ok else "fail"))
        width = max(len(k) for k, _ in rows)
        return "".join(f"{k:<{width}}  {v}\n" for k, v in rows)


def decimal_size(n: int) -> str:
    """Bytes in decimal units, the units GPU memory is sold in."""
    for unit, scale in (("GB", GB), ("MB", 10**6), ("kB", 10**3)):
        if n >= scale:
            return f"{n / scale:.2f} {unit}"
    return f"{n} B"


def hash_file(path: Path, rel: str) -> FileEntry:
    """The file's size and sha256 and, for a large file, its own layer's digest, in one read."""
    stat = path.stat()
    hasher = hashlib.sha256()
    layer = hashlib.sha256(layout.file_header(rel, stat.st_size)) if stat.st_size >= layout.LARGE_FILE else None
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            hasher.update(chunk)
            if layer:
                layer.update(chunk)
    if layer is None:
        return FileEntry(rel, stat.st_size, hasher.hexdigest(), None, stat.st_mtime_ns)
    layer.update(layout.padding(stat.st_size) + layout.END)
    return FileEntry(rel, stat.st_size, hasher.hexdigest(), "sha256:" + layer.hexdigest(), stat.st_mtime_ns)


def model_files(directory: Path) -> tuple[list[tuple[str, Path]], list[str]]:
    """Every file of the model, sorted by relative path, and the entries refused (links, devices). Hidden
    directories (a download tool's .cache, .git) and the manifest itself are not part of the model."""
    found, refused = [], []
    for root, dirs, names in os.walk(directory):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in names:
            path = Path(root) / name
            rel = path.relative_to(directory).as_posix()
            if rel == MANIFEST:
                continue
            if path.is_symlink() or not path.is_file():
                refused.append(f"{rel}: not a regular file (links and devices are refused)")
            elif "\n" in rel or "\\" in rel:
                refused.append(f"{rel!r}: a file name with a newline or backslash")
            else:
                found.append((rel, path))
    return sorted(found), refused


def validate(directory: Path, *, engine: str | None = None, gpu: str | None = None,
             allow_pickle: str | None = None) -> Report:
    """Validate a model directory; `report.failures` lists every reason it fails. Writes nothing."""
    if not directory.is_dir():
        raise ModelInputError(f"{directory}: not a directory")
    if engine is not None and engine not in ENGINES:
        raise ModelInputError(f"--engine {engine!r} is not one of {', '.join(ENGINES)}")
    report = Report(directory, engine=engine, gpu=gpu, allow_pickle=allow_pickle)
    if gpu is not None:
        row = load_matrix().gpu(gpu)
        if row is None:
            known = ", ".join(g.gpu for g in load_matrix().gpus)
            raise ModelInputError(f"--gpu {gpu!r} is not a GPU product in validation/data/gpus.yaml ({known})")
        report.gpu_memory_gb = row.memory(gpu)
    files, report.failures = model_files(directory)
    if not files:
        report.failures.append(f"{directory}: no model files")
    pickles = []
    for rel, path in files:
        report.files.append(hash_file(path, rel))
        if path.suffix.lower() in WEIGHT_FORMATS:
            report.formats.append(WEIGHT_FORMATS[path.suffix.lower()])
        elif scan.is_pickle_based(path):
            pickles.append(rel)
            report.formats.append("pickle")
            found, error = scan.scan(path, rel)
            report.findings += found
            report.failures += [error] if error else []
    report.formats = sorted(set(report.formats))
    report.failures += _pickle_failures(report, pickles)
    _fit(report, {rel: path for rel, path in files})
    return report


def write_manifest(report: Report) -> Path:
    """pai-model.json beside the model, for a report that passed."""
    assert report.ok
    path = report.directory / MANIFEST
    path.write_text(json.dumps(report.manifest(), indent=2) + "\n")
    return path


def changed_since(report: Report) -> list[str]:
    """The files that differ from the pai-model.json an earlier validation wrote beside the model ([] if none)."""
    path = report.directory / MANIFEST
    if not path.is_file():
        return []
    try:
        before = {f["path"]: f["sha256"] for f in json.loads(path.read_text())["files"]}
    except (json.JSONDecodeError, KeyError, TypeError):
        return [f"{MANIFEST}: not a manifest paictl wrote"]
    now = {f.path: f.sha256 for f in report.files}
    return ([f"{p}: changed" for p in sorted(now) if p in before and before[p] != now[p]]
            + [f"{p}: added" for p in sorted(set(now) - set(before))]
            + [f"{p}: removed" for p in sorted(set(before) - set(now))])


def _pickle_failures(report: Report, pickles: list[str]) -> list[str]:
    failures = [f"{f.file}: dangerous global {f.global_name}: loading it runs code the file chooses"
                for f in report.findings if f.severity == "dangerous"]
    if pickles and not report.allow_pickle:
        failures += [f"{rel}: a pickle-based format runs code when loaded; convert it to safetensors, or accept it "
                     "with --allow-pickle REASON" for rel in pickles]
    return failures


def _fit(report: Report, files: dict[str, Path]) -> None:
    """Engines, architecture, parameters and GPU memory."""
    has_config = "config.json" in files
    fits = {"vllm": "safetensors" in report.formats and has_config,
            "infinity": bool({"safetensors", "onnx"} & set(report.formats)),
            "llamacpp": "gguf" in report.formats}
    report.engines = [e for e in ENGINES if fits[e]]
    if report.engine and not fits[report.engine]:
        report.failures.append(f"engine {report.engine} needs {ENGINE_NEEDS[report.engine]}; the model has "
                               f"{', '.join(report.formats) or 'no weights'}" + ("" if has_config else
                                                                                 " and no config.json"))
    elif not report.engines:
        report.failures.append("no engine serves it: " + "; ".join(f"{e} needs {n}" for e, n in ENGINE_NEEDS.items()))
    kind = "gguf" if report.engine == "llamacpp" or "safetensors" not in report.formats else "safetensors"
    try:
        if has_config:
            report.weights.architecture = weights.architecture(files["config.json"])
        for rel, path in files.items():
            if path.suffix.lower() == f".{kind}":
                report.weights.add(weights.gguf(path, rel) if kind == "gguf" else weights.safetensors(path, rel))
    except weights.WeightsError as exc:
        report.failures.append(str(exc))
    if report.gpu and report.gpu_memory_gb is not None:
        report.failures += gpu_failures(report.weights, report.gpu, report.gpu_memory_gb)


def gpu_failures(found: weights.Weights, gpu: str, memory_gb: int) -> list[str]:
    """The weights at their dtype against the GPU's framebuffer (the KV cache and activations need more)."""
    if found.weight_bytes <= memory_gb * GB:
        return []
    return [f"the weights need {found.weight_bytes / GB:.1f} GB at {found.dtype}, more than the {memory_gb} GB of "
            f"{gpu} (before any KV cache)"]
