"""Our model push and pull (`paictl model push/pull`) against `skopeo copy` of the same image, in the same run.

The model is a multi-gigabyte safetensors file made sparse (a real header, then zeros the disk never stores) plus
config.json and a tokenizer. Each contender runs as its own process, so its peak RSS (wait4's ru_maxrss) is its
own: ours pushes the directory to registry A (validation, the digest pass and the upload: three reads of the
file, every byte hashed) and pulls it back into files; skopeo copies A's image into a `dir:` layout (a pull) and
that layout into a fresh registry B (a push of the same layers). Prints time, throughput and peak RSS of each,
and as its last lines `push_vs_skopeo=` and `pull_vs_skopeo=` (skopeo seconds / our seconds).

Run: .venv/bin/python bench/model_gallery.py [--size-gib 4]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from registries import RegistryProcess

REPO = Path(__file__).resolve().parents[1]
PAICTL = str(REPO / ".venv" / "bin" / "paictl")


def sparse_model(directory: Path, size: int) -> None:
    """model.safetensors of `size` bytes: one U8 tensor over everything after its header, never written."""
    directory.mkdir(parents=True)
    header = b""
    for _ in range(2):  # the header's length depends on the tensor's, which depends on the header's
        data = size - 8 - len(header)
        header = json.dumps({"w": {"dtype": "U8", "shape": [data], "data_offsets": [0, data]}}).encode()
    with open(directory / "model.safetensors", "wb") as f:
        f.write(struct.pack("<Q", len(header)) + header)
        f.truncate(size)
    (directory / "config.json").write_text(json.dumps({"architectures": ["BenchForCausalLM"]}))
    (directory / "tokenizer.json").write_text("{}")


def run(command: list[str]) -> tuple[float, int]:
    """Wall seconds and peak RSS (bytes) of one process."""
    start = time.monotonic()
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    took = time.monotonic() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{command[0]} failed: {proc.stderr.read().decode()[-2000:] if proc.stderr else ''}")
    return took, usage.ru_maxrss * 1024


def report(label: str, size: int, took: float, rss: int) -> None:
    print(f"{label:<12} {took:7.1f} s  {size / took / 2**20:7.1f} MiB/s  peak RSS {rss / 2**20:6.1f} MiB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size-gib", type=float, default=4.0)
    args = parser.parse_args()
    size = int(args.size_gib * 2**30)
    work = Path(tempfile.mkdtemp(prefix="pai-model-bench-"))
    a = RegistryProcess(work / "registry-a").start()
    b = RegistryProcess(work / "registry-b").start()
    try:
        sparse_model(work / "model", size)
        print(f"model: {size / 2**30:.1f} GiB sparse safetensors + config.json + tokenizer.json")
        push = run([PAICTL, "model", "push", str(work / "model"), "--to", f"{a.host}/bench/model", "--tag", "v1",
                    "--plain-http"])
        skopeo_pull = run(["skopeo", "copy", "--src-tls-verify=false", f"docker://{a.host}/bench/model:v1",
                           f"dir:{work / 'skopeo-dir'}"])
        pull = run([PAICTL, "model", "pull", f"{a.host}/bench/model:v1", "--out", str(work / "pulled"),
                    "--plain-http"])
        skopeo_push = run(["skopeo", "copy", "--dest-tls-verify=false", f"dir:{work / 'skopeo-dir'}",
                           f"docker://{b.host}/bench/model:v1"])
        assert (work / "pulled" / "model.safetensors").stat().st_size == size
        report("push ours", size, *push)
        report("push skopeo", size, *skopeo_push)
        report("pull ours", size, *pull)
        report("pull skopeo", size, *skopeo_pull)
        print(f"push_vs_skopeo={skopeo_push[0] / push[0]:.2f}")
        print(f"pull_vs_skopeo={skopeo_pull[0] / pull[0]:.2f}")
    finally:
        a.stop()
        b.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
