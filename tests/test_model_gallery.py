"""The gallery against a real docker-registry, with skopeo as the peer: push, list, pull, promote, retire."""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import tarfile
from pathlib import Path

import pytest
import yaml
from conftest import StartRegistry, minimal
from model_files import hostile_pickle, safetensors_model
from registries import RegistryProcess, gzip_layer, push_blob, push_image

from airgap.oci import OCI_MANIFEST, Manifest, Reference, Registry, sha256_digest
from models import gallery, layout
from models.validate import MANIFEST, validate, write_manifest
from paictl.cli import main


def push_cli(model: Path, registry: RegistryProcess, repo: str = "dev-models/chat", tag: str = "v1",
             *extra: str) -> int:
    return main(["model", "push", str(model), "--to", f"{registry.host}/{repo}", "--tag", tag, "--plain-http",
                 *extra])


def pushed_digest(capsys: pytest.CaptureFixture[str]) -> str:
    return capsys.readouterr().out.strip().rsplit("@", 1)[1]


def model_files(directory: Path) -> dict[str, bytes]:
    return {p.relative_to(directory).as_posix(): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()}


def test_push_list_pull_byte_identical(tmp_path: Path, start_registry: StartRegistry,
                                       capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(layout, "LARGE_FILE", 8 * 1024)  # the weights (10 KiB) get a layer of their own
    registry = start_registry("gallery")
    model = safetensors_model(tmp_path / "chat")
    (model / "sub").mkdir()
    (model / "sub" / "merges.txt").write_text("a b\n")
    (model / "sub" / ("long-" * 30 + "name.json")).write_text("{}")  # past ustar's 100 bytes: a PAX path
    assert push_cli(model, registry) == 0
    digest = pushed_digest(capsys)
    manifest = Registry(registry.host, plain_http=True).get_manifest("dev-models/chat", "v1")
    assert manifest is not None and manifest.digest == digest
    titles = [d["annotations"]["org.opencontainers.image.title"] for d in manifest.body["layers"]]
    assert titles == [f"models/{MANIFEST}", "models/model.safetensors"]

    assert main(["model", "list", f"{registry.host}/dev-models", "--plain-http", "--format", "json"]) == 0
    (listed,) = json.loads(capsys.readouterr().out)
    assert (listed["repository"], listed["tag"], listed["digest"]) == ("dev-models/chat", "v1", digest)
    assert listed["annotations"]["dev.pai.model.parameters"] == str(64 * 64 + 16 * 64)

    out = tmp_path / "pulled"
    assert main(["model", "pull", f"{registry.host}/dev-models/chat:v1", "--out", str(out), "--plain-http"]) == 0
    assert model_files(out) == model_files(model)


def test_skopeo_copies_the_model_and_its_layers_hold_models_files(
        tmp_path: Path, start_registry: StartRegistry, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(layout, "LARGE_FILE", 8 * 1024)
    registry = start_registry("gallery")
    model = safetensors_model(tmp_path / "chat")
    assert push_cli(model, registry) == 0
    copy = tmp_path / "copy"
    subprocess.run(["skopeo", "copy", "--src-tls-verify=false", f"docker://{registry.host}/dev-models/chat:v1",
                    f"dir:{copy}"], check=True, capture_output=True)
    layers = json.loads((copy / "manifest.json").read_text())["layers"]
    names = set()
    for layer in layers:
        with tarfile.open(copy / layer["digest"].removeprefix("sha256:")) as tar:
            names |= {m.name for m in tar.getmembers() if m.isfile()}
    assert names == {f"models/{name}" for name in model_files(model)}


def test_a_hostile_pickle_is_refused_before_any_byte_reaches_the_registry(
        tmp_path: Path, start_registry: StartRegistry, capsys: pytest.CaptureFixture[str]) -> None:
    registry = start_registry("gallery")
    marker = tmp_path / "pwned"
    model = hostile_pickle(tmp_path / "chat", marker)
    for extra in ([], ["--allow-pickle", "reviewed"]):
        assert push_cli(model, registry, "dev-models/chat", "v1", *extra) == 1
        err = capsys.readouterr().err
        assert "pytorch_model.bin: dangerous global posix.system" in err and "nothing was sent" in err
    assert not marker.exists()
    assert registry.blob_files() == 0 and not (registry.storage / "docker").exists()


def test_a_file_changed_after_validation_is_refused_at_push(
        tmp_path: Path, start_registry: StartRegistry, capsys: pytest.CaptureFixture[str]) -> None:
    registry = start_registry("gallery")
    model = safetensors_model(tmp_path / "chat")
    assert main(["model", "validate", str(model)]) == 0
    (model / "config.json").write_text('{"architectures": ["Evil"]}')
    assert push_cli(model, registry) == 1
    assert "changed after validation (config.json: changed)" in capsys.readouterr().err
    assert registry.blob_files() == 0


@pytest.mark.parametrize("how", ["small file", "own layer", "own layer, size and mtime kept"])
def test_a_file_changed_during_a_push_never_completes_its_layer(
        tmp_path: Path, start_registry: StartRegistry, monkeypatch: pytest.MonkeyPatch, how: str) -> None:
    """Small files are re-hashed in the digest pass before anything is sent. A large file's layer digest comes from
    validation: the upload stream stops before its last piece when its size or mtime moved, and otherwise the
    registry refuses the layer's digest, which push reports as the changed file."""
    if how != "small file":
        monkeypatch.setattr(layout, "LARGE_FILE", 8 * 1024)
    registry = start_registry("gallery")
    model = safetensors_model(tmp_path / "chat")
    report = validate(model)
    write_manifest(report)
    weights = model / "model.safetensors"
    before = weights.stat()
    weights.write_bytes(b"\0" + weights.read_bytes()[1:])
    if how == "own layer, size and mtime kept":
        os.utime(weights, ns=(before.st_atime_ns, before.st_mtime_ns))
    client = Registry(registry.host, plain_http=True)
    with pytest.raises(gallery.ModelChanged, match=r"model\.safetensors: changed since validation"):
        gallery.push(report, Reference(registry.host, "dev-models/chat", "v1"), client)
    assert registry.blob_files() == (0 if how == "small file" else 1)  # at most the small files' layer
    assert registry.tags("dev-models/chat") == []


def test_latest_is_refused(tmp_path: Path, start_registry: StartRegistry, capsys: pytest.CaptureFixture[str]) -> None:
    registry = start_registry("gallery")
    model = safetensors_model(tmp_path / "chat")
    assert push_cli(model, registry, "dev-models/chat", "latest") == 2
    assert "the tag 'latest' is refused" in capsys.readouterr().err
    assert push_cli(model, registry) == 0
    assert main(["model", "promote", f"{registry.host}/dev-models/chat:v1", "--tag", "latest", "--plain-http"]) == 2
    assert registry.tags("dev-models/chat") == ["v1"]


def test_promote_mounts_the_same_digest_under_an_immutable_tag(
        tmp_path: Path, start_registry: StartRegistry, capsys: pytest.CaptureFixture[str]) -> None:
    registry = start_registry("gallery")
    model = safetensors_model(tmp_path / "chat")
    assert push_cli(model, registry) == 0
    digest = pushed_digest(capsys)
    assert main(["model", "promote", f"{registry.host}/dev-models/chat:v1", "--tag", "prod",
                 "--to", f"{registry.host}/prod-models/chat", "--plain-http"]) == 0
    assert capsys.readouterr().out.strip() == f"{registry.host}/prod-models/chat:prod@{digest}"
    assert Registry(registry.host, plain_http=True).manifest_digest("prod-models/chat", "prod") == digest
    (model / "tokenizer.json").write_text('{"version": "2.0"}')
    assert main(["model", "validate", str(model)]) == 0  # a new revision: validated again, then pushed
    assert push_cli(model, registry, "dev-models/chat", "v2") == 0
    assert main(["model", "promote", f"{registry.host}/dev-models/chat:v2", "--tag", "prod",
                 "--to", f"{registry.host}/prod-models/chat", "--plain-http"]) == 1
    assert f"prod-models/chat:prod already names {digest}" in capsys.readouterr().err


def test_retire_refuses_while_an_endpoint_names_it(
        tmp_path: Path, start_registry: StartRegistry, capsys: pytest.CaptureFixture[str]) -> None:
    registry = start_registry("gallery")
    model = safetensors_model(tmp_path / "chat")
    assert push_cli(model, registry, "prod-models/chat", "prod") == 0
    digest = pushed_digest(capsys)
    stack = tmp_path / "Pulumi.site.yaml"
    endpoint = {"name": "chat", "routingName": "acme/chat", "type": "embedding", "format": "safetensors",
                "source": f"oci://{registry.host}/prod-models/chat@{digest}", "tenant": "team-a"}
    stack.write_text(yaml.safe_dump({"config": {f"pai:{k}": v for k, v in minimal(models=[endpoint]).items()}}))
    ref = f"{registry.host}/prod-models/chat:prod"
    assert main(["model", "retire", ref, "--config-file", str(stack), "--plain-http"]) == 1
    assert "pai:models[0] chat (tenant team-a)" in capsys.readouterr().err
    assert registry.tags("prod-models/chat") == ["prod"]
    assert main(["model", "promote", ref, "--tag", "approved", "--plain-http"]) == 0
    assert main(["model", "retire", ref, "--config-file", str(stack), "--plain-http", "--force"]) == 1
    assert "cannot delete a single tag, and deleting" in capsys.readouterr().err  # it would take :approved too
    assert main(["model", "retire", f"{registry.host}/prod-models/chat@{digest}", "--config-file", str(stack),
                 "--plain-http", "--force"]) == 0
    assert registry.tags("prod-models/chat") == []


def test_a_base_image_is_mounted_under_the_model(tmp_path: Path, start_registry: StartRegistry,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    registry = start_registry("gallery")
    client = Registry(registry.host, plain_http=True)
    base = push_image(client, "mirror/library/busybox", "1.38.0", [gzip_layer("busybox", 4096)])
    model = safetensors_model(tmp_path / "chat")
    assert push_cli(model, registry, "dev-models/chat", "v1", "--base",
                    f"{registry.host}/mirror/library/busybox:1.38.0") == 0
    manifest = client.get_manifest("dev-models/chat", "v1")
    assert manifest is not None
    assert manifest.body["layers"][0]["digest"] == base.body["layers"][0]["digest"]
    config = json.loads(b"".join(bytes(c) for c in client.blob_chunks(
        "dev-models/chat", manifest.body["config"]["digest"], manifest.body["config"]["size"])))
    assert config["rootfs"]["diff_ids"][0] == sha256_digest(gzip_layer("busybox", 4096))  # the base's, kept
    assert len(config["rootfs"]["diff_ids"]) == len(manifest.body["layers"])
    out = tmp_path / "pulled"
    assert main(["model", "pull", f"{registry.host}/dev-models/chat:v1", "--out", str(out), "--plain-http"]) == 0
    assert model_files(out) == model_files(model)


@pytest.mark.parametrize("entry", ["models/../../escape", "etc/passwd", "link"])
def test_pull_refuses_hostile_layers_before_writing_outside(tmp_path: Path, start_registry: StartRegistry,
                                                           capsys: pytest.CaptureFixture[str], entry: str) -> None:
    registry = start_registry("gallery")
    client = Registry(registry.host, plain_http=True)
    source = tmp_path / "layer.tar"
    with tarfile.open(source, "w") as tar:
        info = tarfile.TarInfo(entry if entry != "link" else "models/link")
        if entry == "link":
            info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
            tar.addfile(info)
        else:
            info.size = 4
            tar.addfile(info, fileobj=io.BytesIO(b"evil"))
    layer, config = source.read_bytes(), b"{}"
    for blob in (layer, config):
        push_blob(client, "dev-models/evil", blob)
    body = {"schemaVersion": 2, "mediaType": OCI_MANIFEST,
            "config": {"mediaType": gallery.CONFIG_MEDIA_TYPE, "digest": sha256_digest(config), "size": 2},
            "layers": [{"mediaType": gallery.LAYER_MEDIA_TYPE, "digest": sha256_digest(layer), "size": len(layer),
                        "annotations": {gallery.MODEL_LAYER: "true"}}]}
    client.put_manifest("dev-models/evil", "v1", Manifest(json.dumps(body).encode(), OCI_MANIFEST))
    out = tmp_path / "a" / "out"
    assert main(["model", "pull", f"{registry.host}/dev-models/evil:v1", "--out", str(out), "--plain-http"]) == 1
    assert "only regular files under models/ are accepted" in capsys.readouterr().err
    assert not (tmp_path / "escape").exists() and not (tmp_path / "a" / "escape").exists()
    assert not any(out.rglob("*"))


def test_pull_refuses_a_file_the_manifest_does_not_vouch_for(
        tmp_path: Path, start_registry: StartRegistry, capsys: pytest.CaptureFixture[str]) -> None:
    registry = start_registry("gallery")
    model = safetensors_model(tmp_path / "chat")
    report = validate(model)
    write_manifest(report)
    body = json.loads((model / MANIFEST).read_text())
    body["files"][0]["sha256"] = hashlib.sha256(b"something else").hexdigest()  # config.json
    (model / MANIFEST).write_text(json.dumps(body))
    gallery.push(report, Reference(registry.host, "dev-models/chat", "v1"), Registry(registry.host, plain_http=True))
    out = tmp_path / "pulled"
    assert main(["model", "pull", f"{registry.host}/dev-models/chat:v1", "--out", str(out), "--plain-http"]) == 1
    assert "config.json hashes to" in capsys.readouterr().err
    assert not (out / "config.json").exists()


def test_push_and_pull_through_basic_auth_from_the_docker_config(
        tmp_path: Path, start_registry: StartRegistry, capsys: pytest.CaptureFixture[str]) -> None:
    import bcrypt

    htpasswd = tmp_path / "htpasswd"
    htpasswd.write_bytes(b"publisher:" + bcrypt.hashpw(b"s3cret-pw", bcrypt.gensalt(rounds=4)) + b"\n")
    registry = start_registry("secured", auth={"htpasswd": {"realm": "pai-test", "path": str(htpasswd)}})
    authfile = tmp_path / "auth.json"
    authfile.write_text(json.dumps({"auths": {registry.host: {"username": "publisher", "password": "s3cret-pw"}}}))
    model = safetensors_model(tmp_path / "chat")
    assert push_cli(model, registry) == 1
    assert "wants basic auth" in capsys.readouterr().err
    assert push_cli(model, registry, "dev-models/chat", "v1", "--authfile", str(authfile)) == 0
    out = tmp_path / "pulled"
    assert main(["model", "pull", f"{registry.host}/dev-models/chat:v1", "--out", str(out), "--plain-http",
                 "--authfile", str(authfile)]) == 0
    assert model_files(out) == model_files(model)
    assert "s3cret-pw" not in "".join(capsys.readouterr())


def test_a_model_travels_in_a_bundle_by_digest(tmp_path: Path, start_registry: StartRegistry,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    registry, site = start_registry("gallery"), start_registry("site")
    model = safetensors_model(tmp_path / "chat")
    assert push_cli(model, registry, "prod-models/chat", "prod") == 0
    digest = pushed_digest(capsys)
    images = tmp_path / "images.txt"
    images.write_text(f"{registry.host}/prod-models/chat:prod@{digest}\n")
    bundle = tmp_path / "bundle.tar"
    assert main(["airgap", "export", "--images", str(images), "--out", str(bundle), "--plain-http"]) == 0
    assert main(["airgap", "import", str(bundle), "--to", site.host, "--plain-http"]) == 0
    out = tmp_path / "pulled"
    assert main(["model", "pull", f"{site.host}/prod-models/chat@{digest}", "--out", str(out), "--plain-http"]) == 0
    assert model_files(out) == model_files(model)
