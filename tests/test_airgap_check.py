"""paictl airgap check against real registries (Debian docker-registry) on 127.0.0.1: a complete mirror passes;
a missing tag, a missing blob, a missing platform, a pinned digest the mirror does not have, and a blob whose
bytes changed on the mirror's disk are each found and named."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import StartRegistry
from registries import RegistryProcess, Seeded, gzip_layer, push_image, seed

from airgap.check import check
from airgap.mirror import jobs_for, mirror
from airgap.oci import Reference, Registry

REPO = Path(__file__).resolve().parents[1]


def mirrored(start_registry: StartRegistry) -> tuple[Seeded, RegistryProcess]:
    seeded = seed(start_registry("source"))
    target = start_registry("mirror")
    mirror(jobs_for([Reference.parse(r) for r in seeded.refs]), f"{target.host}/site", plain_http=True)
    return seeded, target


def findings(seeded: Seeded, target: RegistryProcess, refs: list[str] | None = None,
             deep: bool = False) -> dict[str, tuple[str, str]]:
    jobs = jobs_for([Reference.parse(r) for r in refs or seeded.refs])
    return {f.artifact: (f.status, f.detail) for f in check(jobs, f"{target.host}/site", plain_http=True,
                                                            deep=deep)}


def blob_file(registry: RegistryProcess, digest: str) -> Path:
    hexpart = digest.removeprefix("sha256:")
    return registry.storage / "docker/registry/v2/blobs/sha256" / hexpart[:2] / hexpart / "data"


def paictl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "paictl", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=300)


def test_a_complete_mirror_passes_shallow_and_deep(start_registry: StartRegistry) -> None:
    seeded, target = mirrored(start_registry)
    for deep in (False, True):
        got = findings(seeded, target, deep=deep)
        assert got == {ref: ("ok", m.digest) for ref, m in seeded.manifests.items()}


def test_a_tag_never_mirrored_is_missing(start_registry: StartRegistry) -> None:
    seeded, target = mirrored(start_registry)
    extra = f"{seeded.host}/team/app-0:v9"
    got = findings(seeded, target, [*seeded.refs, extra])
    assert got[extra] == ("missing", "no manifest")
    assert sum(status == "ok" for status, _ in got.values()) == len(seeded.refs)


def test_a_blob_gone_from_the_mirror_is_named(start_registry: StartRegistry) -> None:
    seeded, target = mirrored(start_registry)
    ref = f"{seeded.host}/team/app-1:v1"
    layer = seeded.manifests[ref].blobs()[-1]["digest"]  # app-1's own layer, no other image has it
    blob_file(target, layer).unlink()
    got = findings(seeded, target)
    assert got[ref] == ("incomplete", f"blob {layer} missing")
    assert [r for r, (status, _) in got.items() if status != "ok"] == [ref]


def test_a_platform_gone_from_an_index_is_named(start_registry: StartRegistry) -> None:
    seeded, target = mirrored(start_registry)
    ref = f"{seeded.host}/multi/tool:1.0"
    arm = next(d for d in seeded.manifests[ref].children() if d["platform"]["architecture"] == "arm64")
    client = Registry(target.host, plain_http=True)
    client.request("DELETE", f"/v2/site/multi/tool/manifests/{arm['digest']}", scope="repository:site/multi/tool:*",
                   ok=(202,)).read()
    client.close()
    status, detail = findings(seeded, target)[ref]
    assert (status, detail) == ("incomplete", f"platform linux/arm64 {arm['digest']} missing")


def test_a_pinned_digest_the_mirror_does_not_hold(start_registry: StartRegistry) -> None:
    seeded, target = mirrored(start_registry)
    other = seeded.manifests[f"{seeded.host}/team/app-1:v1"].digest
    pinned = f"{seeded.host}/team/app-0:v0@{other}"
    status, detail = findings(seeded, target, [pinned])[pinned]
    assert (status, detail) == ("digest", f"the registry has {seeded.manifests[f'{seeded.host}/team/app-0:v0'].digest}")


def test_changed_bytes_on_the_mirror_are_found_only_by_a_deep_check(start_registry: StartRegistry) -> None:
    seeded, target = mirrored(start_registry)
    base = seeded.manifests[f"{seeded.host}/team/app-0:v0"].blobs()[1]["digest"]  # the base layer: 4 images
    path = blob_file(target, base)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    assert all(status == "ok" for status, _ in findings(seeded, target).values())
    deep = findings(seeded, target, deep=True)
    bad = {ref: detail for ref, (status, detail) in deep.items() if status != "ok"}
    sharing = {ref for ref, m in seeded.manifests.items()
               if base in {b["digest"] for b in m.blobs()} or m.children()}
    assert set(bad) == sharing and len(bad) == 4  # three images and the index's amd64 platform
    assert all(deep[ref][0] == "corrupt" and f"blob {base}" in detail for ref, detail in bad.items())


def test_what_the_site_provides_itself_is_checked_where_it_is(start_registry: StartRegistry) -> None:
    """The vGPU guest driver (a `local` entry of the bill of materials) is in the site's own registry, not the
    mirror: it is checked at its own reference."""
    site, mirror = start_registry("site"), start_registry("mirror")
    client = Registry(site.host, plain_http=True)
    driver = push_image(client, "nvidia/vgpu-guest-driver", "580.95.05-ubuntu22.04", [gzip_layer("driver", 4096)])
    client.close()
    refs = [f"{site.host}/nvidia/vgpu-guest-driver:580.95.05-ubuntu22.04",
            f"{site.host}/nvidia/vgpu-guest-driver:580.95.05-ubuntu24.04", "127.0.0.1:1/nvidia/driver:1"]
    found = check([], f"{mirror.host}/site", local=[Reference.parse(r) for r in refs], plain_http=True)
    assert [(f.at, f.status) for f in found] == [(refs[0], "ok"), (refs[1], "missing"), (refs[2], "missing")]
    assert found[0].detail == driver.digest and found[1].detail == "no manifest"
    assert found[2].detail.startswith("its registry did not answer: 127.0.0.1:1 did not answer (Connection")
    assert "retried 3 times over" in found[2].detail


def test_cli_exit_codes_and_json(start_registry: StartRegistry, tmp_path: Path) -> None:
    seeded, target = mirrored(start_registry)
    images = seeded.images_file(tmp_path / "images.txt")
    good = paictl("airgap", "check", "--images", str(images), "--on", f"{target.host}/site", "--plain-http")
    assert good.returncode == 0, good.stderr
    assert good.stdout.splitlines()[-1] == f"{len(seeded.refs)} artifacts: {len(seeded.refs)} ok"
    images.write_text(images.read_text() + f"{seeded.host}/team/app-0:v9\n")
    bad = paictl("airgap", "check", "--images", str(images), "--on", f"{target.host}/site", "--plain-http",
                 "--format", "json")
    assert bad.returncode == 1, bad.stderr
    body = json.loads(bad.stdout)
    assert body["ok"] is False
    assert [f["artifact"] for f in body["findings"] if f["status"] != "ok"] == [f"{seeded.host}/team/app-0:v9"]
    assert body["findings"][-1]["at"] == f"{target.host}/site/team/app-0:v9"


def test_a_stack_against_an_empty_mirror_lists_every_artifact_missing(start_registry: StartRegistry,
                                                                      tmp_path: Path) -> None:
    """--config-file names the same stack as --stack does (mirror, export and check take either)."""
    empty = start_registry("empty")
    bom = json.loads(paictl("airgap", "bom", "--stack", "airgap", "--format", "json").stdout)
    result = paictl("airgap", "check", "--config-file", "stacks/Pulumi.airgap.yaml", "--on", f"{empty.host}/mirror",
                    "--plain-http", "--format", "json")
    assert result.returncode == 1, result.stderr
    found = json.loads(result.stdout)["findings"]
    assert {f["status"] for f in found} == {"missing"}
    local = [e["ref"] for e in bom["entries"] if e["status"] == "local"]  # the vGPU guest driver, checked in place
    assert len(found) == sum(len(bom[k]) for k in ("images", "charts", "models", "artifacts")) + len(local) > 60
    assert [f["at"] for f in found[-len(local):]] == local


@pytest.mark.parametrize("args, message", [
    (["--images", "/nonexistent/list.txt"], "--images /nonexistent/list.txt: No such file or directory"),
])
def test_bad_input_names_the_file(args: list[str], message: str, start_registry: StartRegistry) -> None:
    result = paictl("airgap", "check", *args, "--on", "127.0.0.1:1", "--plain-http")
    assert result.returncode == 2
    assert result.stderr.strip() == f"error: {message}"


@pytest.mark.parametrize("command", [["mirror", "--to", "127.0.0.1:1"], ["export", "--out", "b.tar"],
                                     ["check", "--on", "127.0.0.1:1"]])
def test_a_config_file_is_read_like_plan_reads_it(command: list[str]) -> None:
    result = paictl("airgap", *command, "--config-file", "/nonexistent/Pulumi.x.yaml")
    assert result.returncode == 2
    assert result.stderr.strip().startswith("error: /nonexistent/Pulumi.x.yaml: no such stack file")
