"""Our mirror (`paictl airgap mirror`) against `skopeo sync` on the same workload, in the same run.

Two local registries (Debian docker-registry): a source seeded with 40 synthetic images that share base layers
(about 1 GB unique at --scale 1), and a fresh target per contender. Prints the wall time of each, the bytes each
target received (read from the target registry process's /proc/<pid>/io) against the unique bytes, the cost of
a resume after a kill -9 at 50%, the CPU seconds each contender's run cost the client, the source registry and
the target registry (on a machine with few cores the registries' own hashing and writing bound both contenders'
wall time), and as its last line `mirror_vs_skopeo_sync=<skopeo seconds / our seconds>`.

Run: .venv/bin/python bench/mirror.py [--scale 0.1] [--workers 8] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from registries import RegistryProcess, gzip_layer, push_image

from airgap.mirror import human
from airgap.oci import Reference, Registry

REPO = Path(__file__).resolve().parents[1]
IMAGES = 40
BASES = 4  # base images, two layers each, shared by 10 images apiece
BASE_LAYER = 25 * 2**20
APP_LAYER = 10 * 2**20  # two unique layers per image
CORES = os.cpu_count() or 1


def seed(source: RegistryProcess, scale: float) -> tuple[list[str], int]:
    """The workload; returns the references and the unique bytes (every distinct blob once)."""
    client = Registry(source.host, plain_http=True)
    bases = [[gzip_layer(f"base-{b}-{i}", int(BASE_LAYER * scale)) for i in range(2)] for b in range(BASES)]
    refs, unique = [], sum(len(x) for base in bases for x in base)
    for i in range(IMAGES):
        layers = [*bases[i % BASES], *(gzip_layer(f"app-{i}-{k}", int(APP_LAYER * scale)) for k in range(2))]
        manifest = push_image(client, f"bench/app-{i}", "v1", layers)
        unique += sum(len(x) for x in layers[2:]) + len(manifest.data) + manifest.blobs()[0]["size"]
        refs.append(f"{source.host}/bench/app-{i}:v1")
    client.close()
    return refs, unique


def received(registry: RegistryProcess) -> int:
    """Bytes the registry process has read (sockets and files): its network input, near enough."""
    assert registry.proc
    for line in Path(f"/proc/{registry.proc.pid}/io").read_text().splitlines():
        if line.startswith("rchar:"):
            return int(line.split()[1])
    raise RuntimeError("no rchar in /proc/<pid>/io")


def cpu_seconds(registry: RegistryProcess) -> float:
    """User and system CPU the registry process has used so far."""
    assert registry.proc
    fields = Path(f"/proc/{registry.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def stored(registry: RegistryProcess) -> int:
    """Bytes of committed blobs in the registry's storage."""
    return sum(p.stat().st_size for p in (registry.storage / "docker/registry/v2/blobs").glob("sha256/*/*/data"))


def check(refs: list[str], source: RegistryProcess, target: RegistryProcess) -> None:
    """Every image at its source digest on the target."""
    src, dst = Registry(source.host, plain_http=True), Registry(target.host, plain_http=True)
    for text in refs:
        ref = Reference.parse(text)
        want = src.manifest_digest(ref.path, str(ref.tag))
        got = dst.manifest_digest(ref.path, str(ref.tag))
        if want != got:
            raise SystemExit(f"{text}: target has {got}, source {want}")


def ours(images: Path, target: RegistryProcess, workers: int) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "paictl", "airgap", "mirror", "--images", str(images), "--to",
                             target.host, "--plain-http", "--workers", str(workers)], cwd=REPO,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def timed(cmd: subprocess.Popen[bytes]) -> tuple[float, float]:
    """Wall seconds from now until the command exits, and the CPU seconds it used."""
    started = time.monotonic()
    assert cmd.stderr
    err = cmd.stderr.read()
    _, status, usage = os.wait4(cmd.pid, 0)
    cmd.returncode = os.waitstatus_to_exitcode(status)
    if cmd.returncode:
        raise SystemExit(f"{cmd.args!r} failed: {err.decode()[-2000:]}")
    return time.monotonic() - started, usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="layer sizes x scale (1.0: about 1 GB unique)")
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=3, help="runs of each contender; the medians are compared")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="pai-bench-mirror-"))
    registries: list[RegistryProcess] = []

    def registry(name: str) -> RegistryProcess:
        registries.append(RegistryProcess(root / name).start())
        return registries[-1]

    try:
        source = registry("source")
        t0 = time.monotonic()
        refs, unique = seed(source, args.scale)
        images = root / "images.txt"
        images.write_text("\n".join(refs) + "\n")
        sync_yaml = root / "sync.yaml"
        sync_yaml.write_text(f"{source.host}:\n  tls-verify: false\n  images:\n" + "".join(
            f"    {Reference.parse(r).path}: [v1]\n" for r in refs))
        print(f"workload: {len(refs)} images, {human(unique)} unique (seeded in {time.monotonic() - t0:.1f} s)")

        def skopeo(target: RegistryProcess) -> subprocess.Popen[bytes]:
            # without --scoped, skopeo sync lands each image at <dest>/<last path part>: bench/app-N
            return subprocess.Popen(["skopeo", "sync", "--src", "yaml", "--dest", "docker", "--all",
                                     "--preserve-digests", "--dest-tls-verify=false", str(sync_yaml),
                                     f"{target.host}/bench"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

        def our_mirror(target: RegistryProcess) -> subprocess.Popen[bytes]:
            return ours(images, target, args.workers)

        contenders = {"skopeo sync": skopeo, "paictl airgap mirror": our_mirror}
        seconds: dict[str, list[float]] = {name: [] for name in contenders}
        for round_ in range(args.repeat):
            for name, start in contenders.items():  # alternating, each into a fresh target
                target = registry(f"target-{round_}-{len(seconds[name])}-{name.split()[0]}")
                before, source_cpu = received(target), cpu_seconds(source)
                wall, client_cpu = timed(start(target))
                seconds[name].append(wall)
                got = received(target) - before
                cpu = (client_cpu, cpu_seconds(source) - source_cpu, cpu_seconds(target))
                check(refs, source, target)
                print(f"{name}: {wall:.2f} s, target received {human(got)} ({got / unique:.3f} x unique; stored "
                      f"{human(stored(target))}); CPU s client {cpu[0]:.2f}, source {cpu[1]:.2f}, target "
                      f"{cpu[2]:.2f}: {sum(cpu):.2f} in all, at least {sum(cpu) / CORES:.2f} s of wall on {CORES} "
                      "cores")
                target.stop()
                shutil.rmtree(target.storage)
        skopeo_s, our_s = (statistics.median(seconds[name]) for name in contenders)
        print(f"median of {args.repeat}: skopeo sync {skopeo_s:.2f} s, paictl airgap mirror {our_s:.2f} s")

        # resume: kill -9 at 50% of the unique bytes stored on the target, then run again
        resumed = registry("resume-target")
        killed = ours(images, resumed, args.workers)
        tick = threading.Event()
        while killed.poll() is None and stored(resumed) < unique // 2:
            tick.wait(0.02)
        os.kill(killed.pid, signal.SIGKILL)
        killed.communicate()
        at_kill = stored(resumed)
        before = received(resumed)
        rerun_s, _ = timed(ours(images, resumed, args.workers))
        rerun_bytes = received(resumed) - before
        check(refs, source, resumed)
        missing = unique - at_kill
        largest = int(max(BASE_LAYER, APP_LAYER) * args.scale)
        bound = args.workers * largest
        print(f"resume after kill -9 at {at_kill / unique:.0%}: rerun {rerun_s:.2f} s, received "
              f"{human(rerun_bytes)} for {human(missing)} missing: {human(max(rerun_bytes - missing, 0))} re-sent "
              f"(blobs in flight at most {args.workers} x {human(largest)} = {human(bound)})")
        print(f"mirror_vs_skopeo_sync={skopeo_s / our_s:.2f}")
    finally:
        for one in registries:
            one.stop()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
