"""The serialization-attack scan of pickle-based model files.

A pickle runs code when it is loaded: any global it names (`posix.system`, `builtins.exec`, ...) is called with
arguments the file chooses. The scanner is picklescan (PyPI `picklescan`, mmaitre314/picklescan), picked over the
alternatives because it is what the Hugging Face Hub scans uploads with, is pure Python with no dependencies,
reads the pickle opcodes without executing them (including the pickles inside PyTorch zip archives, the legacy
PyTorch format, NumPy files and joblib), and reports each global with a safety level. fickling decompiles
pickles into Python ASTs, a heavier and more experimental path for the same answer; modelscan wraps the same
opcode walk and pulls in TensorFlow/Keras/h5py readers this gallery does not need.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from picklescan import scanner

# Extensions of the formats that execute code on load (the PyTorch formats are zip archives or legacy pickles).
PICKLE_EXTENSIONS = frozenset({".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt", ".joblib", ".npy", ".npz",
                               ".dat", ".data"})
ZIP_MAGIC = b"PK\x03\x04"
PICKLE_PROTOCOLS = (b"\x80\x02", b"\x80\x03", b"\x80\x04", b"\x80\x05")


@dataclass(frozen=True)
class Finding:
    """A global a pickle names that the scanner does not know to be harmless."""

    file: str
    global_name: str  # module.name, e.g. posix.system
    severity: str  # dangerous | suspicious

    def __str__(self) -> str:
        return f"{self.file}: {self.severity} global {self.global_name}"


def scanner_name() -> str:
    return f"picklescan {metadata.version('picklescan')}"


def is_pickle_based(path: Path) -> bool:
    """By extension, or by content for a file that hides a pickle or a zip archive behind another name."""
    if path.suffix.lower() in PICKLE_EXTENSIONS:
        return True
    with open(path, "rb") as f:
        head = f.read(4)
    return head.startswith(ZIP_MAGIC) or head[:2] in PICKLE_PROTOCOLS


def scan(path: Path, name: str) -> tuple[list[Finding], str | None]:
    """The file's findings, and why it could not be scanned completely (None when it could)."""
    logging.getLogger("picklescan").setLevel(logging.CRITICAL)  # findings are returned, not logged
    suffix = path.suffix.lower()
    with open(path, "rb") as f:
        try:
            result = scanner.scan_bytes(f, name, suffix if suffix in PICKLE_EXTENSIONS else None)
        except Exception as exc:  # the scanner's parsers raise anything on hostile bytes
            return [], f"{name}: the pickle scan failed ({type(exc).__name__}: {exc})"
    findings = sorted({Finding(name, f"{g.module}.{g.name}", g.safety.value) for g in result.globals
                       if g.safety != scanner.SafetyLevel.Innocuous}, key=lambda x: (x.severity, x.global_name))
    error = f"{name}: the pickle scan could not read the whole file" if result.scan_err else None
    return findings, error
