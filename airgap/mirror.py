"""Registry-to-registry mirroring: each source host/path:tag lands at REGISTRY/prefix/path:tag, digest unchanged."""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from airgap.oci import Copier, Job, Reference, Registries, RegistryTarget, Stats
from components.images import normalized

if TYPE_CHECKING:
    from airgap.bom import Bom


class ImageListError(ValueError):
    """An --images file that cannot be read, naming the file and line."""


def read_image_list(path: Path) -> list[Reference]:
    """One reference per line, normalized as the container tools do (`vllm/vllm-openai:v1` is on docker.io); blank
    lines and '#' comments are skipped."""
    try:
        lines = path.read_text().splitlines()
    except OSError as exc:
        raise ImageListError(f"--images {path}: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise ImageListError(f"--images {path}: not a text file ({exc.reason} at byte {exc.start})") from exc
    refs: list[Reference] = []
    for number, line in enumerate(lines, 1):
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        try:
            refs.append(Reference.parse(normalized(text)))
        except ValueError as exc:
            raise ImageListError(f"{path}:{number}: {exc}") from exc
    if not refs:
        raise ImageListError(f"--images {path}: no image references in the file")
    return refs


def bom_jobs(bill: Bom) -> dict[str, Job]:
    """A job per reference of a bill of materials, by the reference. Charts land at charts/<chart>, where the
    air-gap plan pulls them from; one only in a classic Helm repository is packaged as the OCI artifact `helm push`
    makes."""
    from airgap.helmrepo import classic_job

    jobs = {text: Job(ref, ref.path) for text in dict.fromkeys([*bill.images, *bill.models, *bill.artifacts])
            for ref in [Reference.parse(text)]}
    for text in bill.charts:
        if text.startswith("oci://"):
            ref = Reference.parse(text)
            jobs[text] = Job(ref, "charts/" + ref.path.rsplit("/", 1)[-1])
        else:
            jobs[text] = classic_job(text)
    return jobs


def jobs_for(refs: list[Reference]) -> list[Job]:
    """One job per distinct reference, landing at the reference's path on the target."""
    return [Job(ref, ref.path) for ref in dict.fromkeys(refs)]


def human(size: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.1f} {unit}" if unit != "B" else f"{int(size)} B"
        size /= 1024
    return f"{size:.1f} GiB"


class TerminalProgress:
    """Images, blobs and bytes on stderr, redrawn about once a second on a terminal (the bytes moved so far, blobs
    in flight included, and the rate); quiet elsewhere (CI logs), where only the summary is printed."""

    def __init__(self, verb: str, stream: TextIO = sys.stderr):
        self.verb, self.stream = verb, stream
        self.tty = stream.isatty()
        self.started = time.monotonic()
        self._last = 0.0
        self._lock = threading.Lock()

    def update(self, stats: Stats, final: bool = False) -> None:
        if not self.tty:
            return
        now = time.monotonic()
        with self._lock:
            if not final and now - self._last < 1.0:
                return
            self._last = now
            share = stats.bytes_done / stats.bytes_total if stats.bytes_total else 0.0
            rate = stats.bytes_moved / max(now - self.started, 1e-6)
            line = (f"{self.verb}: images {stats.images_done}/{stats.images}  blobs {stats.blobs_done}/{stats.blobs}"
                    f"  {human(stats.bytes_done)}/{human(stats.bytes_total)}  moved {human(stats.bytes_moved)}"
                    f" at {human(rate)}/s")
            bar = "#" * int(share * 30)
            self.stream.write(f"\r[{bar:<30}] {line}\033[K" + ("\n" if final else ""))
            self.stream.flush()

    def summary(self, stats: Stats) -> str:
        seconds = time.monotonic() - self.started
        return (f"{self.verb} {stats.images_done} images ({stats.manifests} manifests written); blobs: "
                f"{stats.blobs_done - stats.blobs_mounted - stats.blobs_skipped} transferred, "
                f"{stats.blobs_mounted} mounted, {stats.blobs_skipped} already there; {human(stats.bytes_moved)} "
                f"moved in {seconds:.1f} s ({human(stats.bytes_moved / max(seconds, 1e-6))}/s)")


def mirror(jobs: list[Job], destination: str, *, plain_http: bool = False, authfile: Path | None = None,
           workers: int = 8, progress: TerminalProgress | None = None, repair: bool = False,
           ca_file: Path | None = None) -> Stats:
    """Copy every job to `destination` (REGISTRY[/prefix]); raises OciError naming what failed. `repair`: read
    back what is already there and re-send what is corrupt."""
    from airgap.helmrepo import ClassicCharts

    registries = Registries(plain_http=plain_http, authfile=authfile, ca_file=ca_file)
    source = ClassicCharts(registries, jobs, plain_http=plain_http)
    try:
        target = RegistryTarget(destination, registries, repair=repair)
        return Copier(source, target, workers=workers, progress=progress).run(jobs)
    finally:
        source.close()
        registries.close()
