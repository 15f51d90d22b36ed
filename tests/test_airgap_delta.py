"""Delta bundles (paictl airgap export --since BASE.tar) against real registries (Debian docker-registry) on
127.0.0.1: only what the base bundle lacks travels; imported after the base, every image is complete; imported
without it, the import names the blob and the base bundle."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import tarfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from conftest import REPO, StartRegistry
from registries import Seeded, gzip_layer, push_image, seed

from airgap.oci import Reference, Registry, sha256_digest


def paictl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "paictl", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=300)


def export(images: list[str], out: Path, *extra: str) -> None:
    listed = out.with_suffix(".txt")
    listed.write_text("\n".join(images) + "\n")
    result = paictl("airgap", "export", "--images", str(listed), "--out", str(out), "--plain-http", *extra)
    assert result.returncode == 0, result.stderr


def members(tar: Path) -> tuple[set[str], dict[str, object]]:
    with tarfile.open(tar) as t:
        listing = json.loads(t.extractfile("pai-bundle.json").read())  # type: ignore[union-attr]
        return set(t.getnames()), listing


def blob_names(digests: set[str]) -> set[str]:
    return {f"blobs/sha256/{d.removeprefix('sha256:')}" for d in digests}


def upgrade(seeded: Seeded) -> tuple[str, str, str]:
    """A release later: app-0 rebuilt on the same base layer, and a new image; returns both references and the
    new layer's digest."""
    client = Registry(seeded.host, plain_http=True)
    base = seeded.manifests[f"{seeded.host}/team/app-0:v0"].blobs()[1]  # the layer every app image shares
    fresh = gzip_layer("app-0 v1", 64 * 1024)
    push_image(client, "team/app-0", "v1", [client_blob(client, "team/app-0", base), fresh])
    push_image(client, "team/new", "v1", [client_blob(client, "team/app-0", base)])
    client.close()
    return f"{seeded.host}/team/app-0:v1", f"{seeded.host}/team/new:v1", sha256_digest(fresh)


def client_blob(client: Registry, repo: str, desc: dict[str, object]) -> bytes:
    return b"".join(bytes(c) for c in client.blob_chunks(repo, str(desc["digest"]), int(str(desc["size"]))))


def releases(start_registry: StartRegistry, tmp_path: Path, everything: bool) -> tuple[Seeded, Path, Path,
                                                                                      tuple[str, str, str]]:
    """Release 1 exported whole, then release 2 (everything again, or only the new image) as a delta since it."""
    seeded = seed(start_registry("source"))
    base = tmp_path / "release-1.tar"
    export(seeded.refs, base)
    later = upgrade(seeded)
    delta = tmp_path / "release-2.tar"
    export([*seeded.refs, later[0], later[1]] if everything else [later[1]], delta, "--since", str(base))
    return seeded, base, delta, later


def test_a_delta_carries_only_what_the_base_lacks_and_imports_after_it(start_registry: StartRegistry,
                                                                       tmp_path: Path) -> None:
    seeded, base, delta, (app0, new, fresh) = releases(start_registry, tmp_path, everything=True)
    source, target = seeded.host, start_registry("target")

    base_names, _ = members(base)
    names, listing = members(delta)
    shared = seeded.manifests[f"{source}/team/app-0:v0"].blobs()[1]["digest"]
    assert blob_names({shared}) <= base_names and not blob_names({shared}) & names  # left to the base
    assert blob_names({fresh}) <= names
    layers = {n for n in names - base_names if n.startswith("blobs/")}
    assert layers  # the new manifests, configs and layer
    base_info = listing["base"]
    assert isinstance(base_info, dict) and base_info["bundle"] == "release-1.tar"
    assert base_info["blobs"][shared] == "team/app-0"  # where the base's import put it: mounted from there

    for bundle in (base, delta):
        result = paictl("airgap", "import", str(bundle), "--to", f"{target.host}/site", "--plain-http")
        assert result.returncode == 0, result.stderr
    client = Registry(target.host, plain_http=True)
    for text in [*seeded.refs, app0, new]:
        ref = Reference.parse(text)
        want = Registry(source, plain_http=True).manifest_digest(ref.path, str(ref.tag))
        assert client.manifest_digest(f"site/{ref.path}", str(ref.tag)) == want, text
    assert client.has_blob("site/team/new", shared)  # mounted from site/team/app-0
    raw = subprocess.run(["skopeo", "inspect", "--raw", "--tls-verify=false",
                          f"docker://{target.host}/site/team/new:v1"], check=True, capture_output=True).stdout
    assert sha256_digest(raw) == Registry(source, plain_http=True).manifest_digest("team/new", "v1")


def test_a_delta_without_its_base_on_the_target_names_the_blob_and_the_base(start_registry: StartRegistry,
                                                                            tmp_path: Path) -> None:
    seeded, _, delta, _ = releases(start_registry, tmp_path, everything=False)
    target = start_registry("target")
    result = paictl("airgap", "import", str(delta), "--to", target.host, "--plain-http")
    assert result.returncode == 1
    shared = seeded.manifests[f"{seeded.host}/team/app-0:v0"].blobs()[1]["digest"]
    assert (f"blob {shared} is left to the base bundle release-1.tar, whose import to {target.host} is not "
            "recorded with team/app-0") in result.stderr
    assert result.stderr.rstrip().endswith("import release-1.tar there first")
    assert target.blob_files() == 0  # refused before the first byte was pushed


def test_a_delta_mounts_only_from_repositories_its_base_import_created(start_registry: StartRegistry,
                                                                       tmp_path: Path) -> None:
    """A delta whose base list points a blob at another repository (one the importer can read, but the base's
    import did not create) is refused before anything is pushed; so is one imported under another --to."""
    seeded, base, delta, _ = releases(start_registry, tmp_path, everything=False)
    target = start_registry("target")
    assert paictl("airgap", "import", str(base), "--to", f"{target.host}/site", "--plain-http").returncode == 0
    elsewhere = paictl("airgap", "import", str(delta), "--to", f"{target.host}/other", "--plain-http")
    assert elsewhere.returncode == 1 and f"whose import to {target.host}/other is not recorded" in elsewhere.stderr
    shared = seeded.manifests[f"{seeded.host}/team/app-0:v0"].blobs()[1]["digest"]
    hostile = rewrite_listing(delta, tmp_path / "hostile.tar",
                              lambda listing: listing["base"]["blobs"].update({shared: "secret/vault"}))
    stored = target.blob_files()
    result = paictl("airgap", "import", str(hostile), "--to", f"{target.host}/site", "--plain-http")
    assert result.returncode == 1
    assert "not recorded with secret/vault" in result.stderr and len(result.stderr.splitlines()) == 1
    assert target.blob_files() == stored and target.tags("site/team/new") == []


def rewrite_listing(bundle: Path, out: Path, change: Callable[[dict[str, Any]], object]) -> Path:
    """`bundle` with its pai-bundle.json changed by `change` (the rest as it was): a tampered copy."""
    with tarfile.open(bundle) as src, tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as dst:
        for member in src.getmembers():
            data = src.extractfile(member).read()  # type: ignore[union-attr]
            if member.name == "pai-bundle.json":
                listing = json.loads(data)
                change(listing)
                data = json.dumps(listing).encode()
            member.size = len(data)
            dst.addfile(member, io.BytesIO(data))
    return out


def test_since_must_name_a_bundle(tmp_path: Path, start_registry: StartRegistry) -> None:
    source = start_registry("source")
    seeded = seed(source, images=1)
    not_a_bundle = tmp_path / "notes.tar"
    not_a_bundle.write_bytes(b"not a tar")
    listed = tmp_path / "images.txt"
    listed.write_text(seeded.refs[0] + "\n")
    out = tmp_path / "out.tar"
    result = paictl("airgap", "export", "--images", str(listed), "--out", str(out), "--plain-http",
                    "--since", str(not_a_bundle))
    assert result.returncode == 2
    assert result.stderr.startswith(f"error: {not_a_bundle}: not a readable bundle tar")
    assert not out.exists()
