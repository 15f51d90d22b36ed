"""Bundles as hostile input (real docker-registry source and targets on 127.0.0.1): import validates the whole
manifest graph before the first byte is pushed, a signature (checked by openssl too) catches what the per-file
hashes cannot, a pinned digest list refuses any other image, and a malformed bundle is one line with exit 2."""

from __future__ import annotations

import base64
import io
import json
import subprocess
import tarfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import StartRegistry
from registries import RegistryProcess, Seeded, seed
from test_airgap_hostile import one_line_error, paictl

from airgap.oci import sha256_digest

INDEX = "pai-bundle.json"
SIGNATURE = "pai-bundle.json.sig"


def unpack(bundle: Path) -> dict[str, bytes]:
    with tarfile.open(bundle) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers()}  # type: ignore[union-attr]


def pack(files: dict[str, bytes], out: Path, *, relist: bool = True) -> Path:
    """A bundle of `files`; `relist`: pai-bundle.json lists every other file's sha256 and size again, as a
    tamperer who rewrites the bundle consistently would."""
    if relist:
        listing = json.loads(files[INDEX])
        listing["files"] = {name: {"sha256": hashlib_hex(data), "size": len(data)} for name, data in files.items()
                            if name not in (INDEX, SIGNATURE)}
        files[INDEX] = json.dumps(listing, indent=1, sort_keys=True).encode()
    with tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as tar:
        for name in sorted(files, key=lambda n: (n not in (INDEX, SIGNATURE), n)):
            info = tarfile.TarInfo(name)
            info.size = len(files[name])
            tar.addfile(info, io.BytesIO(files[name]))
    return out


def hashlib_hex(data: bytes) -> str:
    return sha256_digest(data).removeprefix("sha256:")


def member(digest: str) -> str:
    return "blobs/sha256/" + digest.removeprefix("sha256:")


def swap(files: dict[str, bytes], old: str, data: bytes) -> str:
    """Replace blob `old` by `data`, and rewrite every manifest, index.json and pai-bundle.json that names it,
    up to the top: the bundle stays consistent with itself. Returns the new digest."""
    new = sha256_digest(data)
    files.pop(member(old))
    files[member(new)] = data
    for name in [n for n in files if n.startswith("blobs/") or n == "index.json"]:
        if name not in files or old.encode() not in files[name]:
            continue
        body = json.loads(files[name])
        _point(body, old, new, len(data))
        text = json.dumps(body).encode()
        if name == "index.json":
            files[name] = text
        else:
            swap(files, "sha256:" + name.rsplit("/", 1)[1], text)
    listing = json.loads(files[INDEX])
    for image in listing["images"]:
        image["digest"] = new if image["digest"] == old else image["digest"]
    files[INDEX] = json.dumps(listing).encode()
    return new


def _point(value: Any, old: str, new: str, size: int) -> None:
    if isinstance(value, dict):
        if value.get("digest") == old:
            value["digest"], value["size"] = new, size
        for item in value.values():
            _point(item, old, new, size)
    elif isinstance(value, list):
        for item in value:
            _point(item, old, new, size)


def key_pair(tmp_path: Path, name: str) -> tuple[Path, Path]:
    """An EC P-256 key pair made by openssl, the standard tool: (private PEM, public PEM)."""
    key, pub = tmp_path / f"{name}.pem", tmp_path / f"{name}.pub"
    subprocess.run(["openssl", "ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", str(key)], check=True)
    subprocess.run(["openssl", "ec", "-in", str(key), "-pubout", "-out", str(pub)], check=True, capture_output=True)
    return key, pub


@pytest.fixture
def exported(start_registry: StartRegistry, tmp_path: Path) -> tuple[Seeded, Path, Path, Path]:
    """A signed bundle of a few images (app images, a two-platform index, a chart, a signature), its keys."""
    seeded = seed(start_registry("source"), images=2)
    key, pub = key_pair(tmp_path, "signer")
    out = tmp_path / "pai.tar"
    result = paictl("airgap", "export", "--images", str(seeded.images_file(tmp_path / "images.txt")), "--out",
                    str(out), "--plain-http", "--sign-key", str(key))
    assert result.returncode == 0, result.stderr
    assert result.stderr.rstrip().endswith(", signed") and key.read_text() not in result.stderr
    return seeded, out, key, pub


def nothing_pushed(target: RegistryProcess) -> bool:
    return target.blob_files() == 0


# ----------------------------------------------------------------------------------- 4. the whole graph first


def test_a_broken_link_anywhere_in_the_graph_is_refused_before_the_first_push(
        exported: tuple[Seeded, Path, Path, Path], start_registry: StartRegistry, tmp_path: Path) -> None:
    seeded, bundle, _, _ = exported
    app = seeded.manifests[f"{seeded.host}/team/app-1:v1"]
    layer = app.blobs()[2]
    multi = seeded.manifests[f"{seeded.host}/multi/tool:1.0"]
    arm = multi.children()[1]["digest"]

    def missing_blob(files: dict[str, bytes]) -> None:
        files.pop(member(layer["digest"]))

    def not_json_child(files: dict[str, bytes]) -> None:
        swap(files, arm, b"this is not a manifest")

    def wrong_size(files: dict[str, bytes]) -> None:
        body = json.loads(files[member(app.digest)])
        body["layers"][1]["size"] += 1
        swap(files, app.digest, json.dumps(body).encode())

    def path_digest(files: dict[str, bytes]) -> None:
        index = json.loads(files["index.json"])
        index["manifests"][0]["digest"] = "sha256:../../../../etc/passwd"
        files["index.json"] = json.dumps(index).encode()

    cases: dict[str, tuple[Callable[[dict[str, bytes]], None], str]] = {
        "missing": (missing_blob, f"blob {layer['digest']} of manifest {app.digest} is neither in the bundle"),
        "not json": (not_json_child, "not a JSON manifest"),
        "size": (wrong_size, f"bytes, its descriptor says {layer['size'] + 1}"),
        "path": (path_digest, "'sha256:../../../../etc/passwd' is not a digest sha256:<64 hex>"),
    }
    target = start_registry("target")
    for name, (change, message) in cases.items():
        files = unpack(bundle)
        files.pop(SIGNATURE)
        change(files)
        broken = pack(files, tmp_path / f"{name.replace(' ', '-')}.tar")
        line = one_line_error(paictl("airgap", "import", str(broken), "--to", target.host, "--plain-http"))
        assert message in line, name
        assert nothing_pushed(target), name


def test_malformed_bundle_indexes_are_one_line_with_exit_2(exported: tuple[Seeded, Path, Path, Path],
                                                           start_registry: StartRegistry, tmp_path: Path) -> None:
    _, bundle, _, _ = exported
    target = start_registry("target")

    def listing(change: Callable[[dict[str, Any]], object]) -> Callable[[dict[str, bytes]], None]:
        def edit(files: dict[str, bytes]) -> None:
            body = json.loads(files[INDEX])
            change(body)
            files[INDEX] = json.dumps(body).encode()
        return edit

    cases: dict[str, Callable[[dict[str, bytes]], None]] = {
        "index not json": lambda files: files.update({INDEX: b"{not json"}),
        "index a list": lambda files: files.update({INDEX: b"[]"}),
        "layout index not json": lambda files: files.update({"index.json": b"\xff"}),
        "no images": listing(lambda body: body.pop("images")),
        "image a string": listing(lambda body: body.update(images=["x"])),
        "image path escapes": listing(lambda body: body["images"][0].update(path="../../etc")),
        "image source not a reference": listing(lambda body: body["images"][0].update(source="nothing")),
        "files a list": listing(lambda body: body.update(files=[])),
        "file outside the layout": listing(lambda body: body["files"].update({"../../x": {"sha256": "0" * 64,
                                                                                          "size": 1}})),
        "base digest a path": listing(lambda body: body.update(base={"bundle": "b", "sha256": "0", "blobs": {
            "sha256:../x": "team/app"}})),
        "index manifests not a list": lambda files: files.update({"index.json": b'{"manifests": 5}'}),
    }
    for name, change in cases.items():
        files = unpack(bundle)
        files.pop(SIGNATURE)
        change(files)
        broken = pack(files, tmp_path / "broken.tar", relist=False)
        line = one_line_error(paictl("airgap", "import", str(broken), "--to", target.host, "--plain-http"))
        assert str(broken) in line, name
        assert nothing_pushed(target), name
    (tmp_path / "folder.tar").mkdir()
    assert str(tmp_path / "folder.tar") in one_line_error(paictl("airgap", "import", str(tmp_path / "folder.tar"),
                                                                 "--to", target.host, "--plain-http"))


# ------------------------------------------------------------------------------------------- 6. signatures


def test_a_signed_bundle_round_trip_and_openssl_verifies_the_same_signature(
        exported: tuple[Seeded, Path, Path, Path], start_registry: StartRegistry, tmp_path: Path) -> None:
    _, bundle, key, pub = exported
    files = unpack(bundle)
    (tmp_path / INDEX).write_bytes(files[INDEX])
    (tmp_path / "sig.der").write_bytes(base64.b64decode(files[SIGNATURE]))
    verified = subprocess.run(["openssl", "dgst", "-sha256", "-verify", str(pub), "-signature",
                               str(tmp_path / "sig.der"), str(tmp_path / INDEX)], capture_output=True, text=True)
    assert verified.returncode == 0 and verified.stdout.strip() == "Verified OK"

    target = start_registry("target")
    landed = paictl("airgap", "import", str(bundle), "--to", target.host, "--plain-http", "--verify-key", str(pub))
    assert landed.returncode == 0, landed.stderr
    assert landed.stderr.rstrip().endswith(f"bundle signature verified with {pub}")
    assert target.tags("team/app-1") == ["v1"]
    plain = start_registry("plain")
    unverified = paictl("airgap", "import", str(bundle), "--to", plain.host, "--plain-http")
    assert "signed, but not verified: give --verify-key" in unverified.stderr
    assert key.read_text() not in landed.stderr + unverified.stderr


def test_a_wrong_key_a_tampered_bundle_or_no_signature_is_refused(
        exported: tuple[Seeded, Path, Path, Path], start_registry: StartRegistry, tmp_path: Path) -> None:
    seeded, bundle, _, pub = exported
    _, other = key_pair(tmp_path, "stranger")
    target = start_registry("target")
    importing = ["airgap", "import", "--to", target.host, "--plain-http", "--verify-key"]

    wrong = one_line_error(paictl(*importing, str(other), str(bundle)), 1)
    assert f"{bundle}: pai-bundle.json.sig: the signature does not verify with the key given" in wrong

    # A layer replaced, its manifest, index.json and pai-bundle.json rewritten consistently: every hash agrees.
    files = unpack(bundle)
    layer = seeded.manifests[f"{seeded.host}/team/app-1:v1"].blobs()[2]
    swap(files, layer["digest"], b"evil" + files[member(layer["digest"])][4:])
    tampered = pack(files, tmp_path / "tampered.tar")
    assert "does not verify" in one_line_error(paictl(*importing, str(pub), str(tampered)), 1)
    assert nothing_pushed(target)
    files.pop(SIGNATURE)
    unsigned = pack(files, tmp_path / "unsigned.tar")
    assert "the bundle is not signed" in one_line_error(paictl(*importing, str(pub), str(unsigned)), 1)
    assert nothing_pushed(target)
    # Without a key the per-file hashes pass it (they catch accidents, not tampering), and import says so.
    accepted = paictl("airgap", "import", str(unsigned), "--to", target.host, "--plain-http")
    assert accepted.returncode == 0 and "unsigned: only the per-file sha256 were checked" in accepted.stderr


def test_expect_digests_refuses_any_other_image(exported: tuple[Seeded, Path, Path, Path],
                                               start_registry: StartRegistry, tmp_path: Path) -> None:
    seeded, bundle, _, _ = exported
    target = start_registry("target")
    pins = {ref: manifest.digest for ref, manifest in seeded.manifests.items()}
    bom = tmp_path / "bom.json"
    bom.write_text(json.dumps({"images": [f"{ref}@{digest}" for ref, digest in pins.items()], "charts": [],
                               "models": []}))
    listed = tmp_path / "pins.txt"
    moved = f"{seeded.host}/team/app-0:v0"
    listed.write_text("".join(f"{ref}@{'sha256:' + '1' * 64 if ref == moved else digest}\n"
                              for ref, digest in pins.items()))
    line = one_line_error(paictl("airgap", "import", str(bundle), "--to", target.host, "--plain-http",
                                 "--expect-digests", str(listed)), 1)
    assert f"{moved} is {pins[moved]}, --expect-digests {listed} pins sha256:{'1' * 64}" in line
    assert nothing_pushed(target)
    listed.write_text("".join(f"{ref}@{digest}\n" for ref, digest in pins.items() if ref != moved))
    assert f"{moved} is not in --expect-digests" in one_line_error(paictl(
        "airgap", "import", str(bundle), "--to", target.host, "--plain-http", "--expect-digests", str(listed)), 1)
    assert nothing_pushed(target)
    ok = paictl("airgap", "import", str(bundle), "--to", target.host, "--plain-http", "--expect-digests", str(bom))
    assert ok.returncode == 0, ok.stderr
