"""paictl airgap mirror / export / import against real registries (Debian docker-registry) on 127.0.0.1."""

from __future__ import annotations

import base64
import datetime
import hashlib
import json
import os
import signal
import subprocess
import sys
import tarfile
import threading
import time
import urllib.parse
import uuid
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from conftest import StartRegistry
from registries import FaultProxy, RegistryProcess, Seeded, basic_auth_pair, gzip_layer, push_image, seed

from airgap import bundle
from airgap.mirror import jobs_for
from airgap.oci import Manifest, OciError, Reference, Registry, sha256_digest
from paictl.cli import main

REPO = Path(__file__).resolve().parents[1]

def landed(seeded: Seeded, target_host: str, prefix: str = "") -> dict[str, str | None]:
    """Source reference -> the digest its tag has on the target (None when missing)."""
    client = Registry(target_host, plain_http=True)
    out: dict[str, str | None] = {}
    for text in seeded.refs:
        ref = Reference.parse(text)
        out[text] = client.manifest_digest(f"{prefix}{ref.path}", str(ref.tag))
    client.close()
    return out


def assert_complete(seeded: Seeded, target_host: str, prefix: str = "") -> None:
    """Every tag at its source digest (ours and skopeo's view), the signature carried under its fallback tag."""
    assert landed(seeded, target_host, prefix) == {ref: m.digest for ref, m in seeded.manifests.items()}
    for text, manifest in seeded.manifests.items():
        ref = Reference.parse(text)
        raw = subprocess.run(["skopeo", "inspect", "--raw", "--tls-verify=false",
                              f"docker://{target_host}/{prefix}{ref.path}:{ref.tag}"],
                             check=True, capture_output=True).stdout
        assert sha256_digest(raw) == manifest.digest
    first = seeded.manifests[f"{seeded.host}/team/app-0:v0"]
    client = Registry(target_host, plain_http=True)
    fallback = client.get_manifest(f"{prefix}team/app-0", first.digest.replace(":", "-"))
    assert fallback is not None and [d["digest"] for d in fallback.children()] == [seeded.signature.digest]
    assert client.manifest_digest(f"{prefix}team/app-0", seeded.signature.digest) == seeded.signature.digest
    client.close()


def paictl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "paictl", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=300)


# ------------------------------------------------------------------------------------------------ mirror


def test_mirror_lands_every_reference_with_its_digest_and_fetches_each_blob_once(
        start_registry: StartRegistry, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source, target = start_registry("source"), start_registry("target")
    seeded = seed(source)
    # A counting proxy in front of the source: what the mirror downloaded, byte for byte.
    counter = FaultProxy(source.host).start()
    images = tmp_path / "images.txt"
    images.write_text("\n".join(r.replace(source.host, counter.host) for r in seeded.refs) + "\n")
    counted = Seeded(counter.host, {k.replace(source.host, counter.host): v for k, v in seeded.manifests.items()},
                     seeded.signature, seeded.unique_bytes)

    assert main(["airgap", "mirror", "--images", str(images), "--to", f"{target.host}/site", "--plain-http"]) == 0
    assert_complete(counted, target.host, "site/")
    summary = capsys.readouterr().err.splitlines()[-1]
    assert summary.startswith(f"mirrored {len(seeded.refs)} images")
    # The shared base layer travelled once and was mounted into the other repositories.
    assert "mounted" in summary and " 0 mounted" not in summary
    from_source = counter.bytes_up
    client = Registry(target.host, plain_http=True)
    assert client.has_blob("site/team/app-1", seeded.manifests[f"{source.host}/team/app-1:v1"].blobs()[1]["digest"])

    # Run again: nothing is fetched; every image is already there.
    assert main(["airgap", "mirror", "--images", str(images), "--to", f"{target.host}/site", "--plain-http"]) == 0
    assert "0 B moved" in capsys.readouterr().err.splitlines()[-1]
    assert from_source > 0
    counter.stop()


def test_a_pinned_reference_lands_its_digest_though_the_tag_moved(start_registry: StartRegistry, tmp_path: Path,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    """A reference pinned by digest (a resolved bill of materials) is copied by that digest to its tag, whatever the
    tag upstream points at by then; a digest the source does not have is named."""
    source, target = start_registry("source"), start_registry("target")
    seeded = seed(source, images=1)
    reviewed = seeded.manifests[f"{source.host}/team/app-0:v0"].digest
    client = Registry(source.host, plain_http=True)
    moved = push_image(client, "team/app-0", "v0", [gzip_layer("rebuilt upstream", 4096)]).digest
    assert client.manifest_digest("team/app-0", "v0") == moved != reviewed
    images = tmp_path / "images.txt"
    images.write_text(f"{source.host}/team/app-0:v0@{reviewed}\n")
    assert main(["airgap", "mirror", "--images", str(images), "--to", target.host, "--plain-http"]) == 0
    assert Registry(target.host, plain_http=True).manifest_digest("team/app-0", "v0") == reviewed
    unknown = f"{source.host}/team/app-0:v1@sha256:{'0' * 64}"
    images.write_text(unknown + "\n")
    assert main(["airgap", "mirror", "--images", str(images), "--to", target.host, "--plain-http"]) == 1
    assert f"{unknown}: {unknown} not found" in capsys.readouterr().err
    assert Registry(target.host, plain_http=True).manifest_digest("team/app-0", "v1") is None


def test_mirror_reads_each_unique_blob_once(start_registry: StartRegistry) -> None:
    source, target = start_registry("source"), start_registry("target")
    seeded = seed(source, images=5)
    from airgap.mirror import mirror

    stats = mirror(jobs_for([Reference.parse(r) for r in seeded.refs]), target.host, plain_http=True)
    assert stats.bytes_moved == seeded.unique_bytes
    assert stats.images_done == len(seeded.refs)
    assert target.blob_files() == len({d["digest"] for m in _all_manifests(source, seeded) for d in m.blobs()}) + \
        len(_all_manifests(source, seeded)) + 1  # + the fallback-tag index


def _all_manifests(source: RegistryProcess, seeded: Seeded) -> list[Manifest]:
    client = Registry(source.host, plain_http=True)
    found = [seeded.signature]
    for text, manifest in seeded.manifests.items():
        found.append(manifest)
        for child in manifest.children():
            one = client.get_manifest(Reference.parse(text).path, child["digest"])
            assert one
            found.append(one)
    return found


def test_faults_are_retried_without_loss(start_registry: StartRegistry, tmp_path: Path) -> None:
    source, target = start_registry("source"), start_registry("target")
    seeded = seed(source, layer=512 * 1024)
    # 503s and connections cut mid-transfer on both sides: downloads resume with Range, uploads restart.
    upstream = FaultProxy(source.host, every=3, cut_after=300 * 1024, max_faults=12).start()
    downstream = FaultProxy(target.host, every=3, cut_after=300 * 1024, max_faults=12).start()
    images = tmp_path / "images.txt"
    images.write_text("\n".join(r.replace(source.host, upstream.host) for r in seeded.refs) + "\n")
    result = paictl("airgap", "mirror", "--images", str(images), "--to", downstream.host, "--plain-http",
                    "--workers", "4")
    assert result.returncode == 0, result.stderr
    for proxy in (upstream, downstream):
        assert proxy.injected_503 > 0 and proxy.injected_cuts > 0
    proxied = Seeded(upstream.host, {k.replace(source.host, upstream.host): v for k, v in seeded.manifests.items()},
                     seeded.signature, seeded.unique_bytes)
    assert_complete(proxied, target.host)


def _run_until(args: list[str], ready: Callable[[], bool]) -> subprocess.Popen[str]:
    """Start the CLI, wait (polling) until `ready()` says bytes moved, then kill -9 it."""
    proc = subprocess.Popen([sys.executable, "-m", "paictl", *args], cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    tick = threading.Event()
    while proc.poll() is None and not ready():
        tick.wait(0.01)
    assert proc.poll() is None, f"finished before it could be killed: {proc.communicate()[1]}"
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate()
    assert proc.returncode == -signal.SIGKILL
    return proc


def _moved(summary: str) -> int:
    return int(summary.split("blobs: ")[1].split(" transferred")[0])


def test_kill_mid_mirror_then_rerun_completes(start_registry: StartRegistry, tmp_path: Path) -> None:
    source, target = start_registry("source"), start_registry("target")
    seeded = seed(source, images=4, layer=256 * 1024)
    slow = FaultProxy(source.host, rate=256 * 1024).start()
    images = tmp_path / "images.txt"
    images.write_text("\n".join(r.replace(source.host, slow.host) for r in seeded.refs) + "\n")
    args = ["airgap", "mirror", "--images", str(images), "--to", target.host, "--plain-http"]

    _run_until(args, lambda: target.blob_files() >= 2)
    at_kill = target.blob_files()
    total_blobs = len({d["digest"] for m in _all_manifests(source, seeded) for d in m.blobs()})
    assert at_kill < total_blobs
    slowed = Seeded(slow.host, {k.replace(source.host, slow.host): v for k, v in seeded.manifests.items()},
                    seeded.signature, seeded.unique_bytes)
    assert None in landed(slowed, target.host).values()

    rerun = paictl(*args)
    assert rerun.returncode == 0, rerun.stderr
    assert_complete(slowed, target.host)
    assert _moved(rerun.stderr.splitlines()[-1]) < total_blobs


def test_kill_mid_import_then_rerun_completes(start_registry: StartRegistry, tmp_path: Path) -> None:
    source, target = start_registry("source"), start_registry("target")
    seeded = seed(source, images=4, layer=256 * 1024)
    tar = tmp_path / "bundle.tar"
    bundle.export(jobs_for([Reference.parse(r) for r in seeded.refs]), tar, plain_http=True)
    slow = FaultProxy(target.host, rate=256 * 1024).start()
    args = ["airgap", "import", str(tar), "--to", slow.host, "--plain-http"]

    _run_until(args, lambda: target.blob_files() >= 2)
    assert None in landed(seeded, target.host).values()

    rerun = paictl("airgap", "import", str(tar), "--to", target.host, "--plain-http")
    assert rerun.returncode == 0, rerun.stderr
    assert_complete(seeded, target.host)
    assert "already there" in rerun.stderr and not rerun.stderr.splitlines()[-1].endswith(" 0 already there")


def test_kill_mid_export_then_rerun_fetches_only_what_is_missing(start_registry: StartRegistry,
                                                                  tmp_path: Path) -> None:
    source = start_registry("source")
    seeded = seed(source, images=4, layer=256 * 1024)
    slow = FaultProxy(source.host, rate=256 * 1024).start()
    images = tmp_path / "images.txt"
    images.write_text("\n".join(r.replace(source.host, slow.host) for r in seeded.refs) + "\n")
    tar = tmp_path / "bundle.tar"
    staged = tmp_path / "bundle.tar.staging" / "blobs" / "sha256"

    def blobs_staged() -> int:
        return sum(1 for p in staged.glob("*") if not p.name.startswith(".")) if staged.is_dir() else 0

    _run_until(["airgap", "export", "--images", str(images), "--out", str(tar), "--plain-http"],
               lambda: blobs_staged() >= 2)
    assert not tar.exists()
    before = slow.bytes_up
    rerun = paictl("airgap", "export", "--images", str(images), "--out", str(tar), "--plain-http")
    assert rerun.returncode == 0, rerun.stderr
    assert "already there" in rerun.stderr.splitlines()[-1]
    assert not (tmp_path / "bundle.tar.staging").exists()
    assert slow.bytes_up > before
    with tarfile.open(tar) as t:
        names = t.getnames()
    assert len(names) == len(set(names))


# ------------------------------------------------------------------------------------------------ bundle


def test_bundle_round_trip_is_an_oci_layout_with_every_file_hashed(start_registry: StartRegistry,
                                                                   tmp_path: Path) -> None:
    source, target = start_registry("source"), start_registry("target")
    seeded = seed(source)
    tar = tmp_path / "site.tar"
    exported = paictl("airgap", "export", "--images", str(seeded.images_file(tmp_path / "i.txt")), "--out", str(tar),
                      "--plain-http")
    assert exported.returncode == 0, exported.stderr

    with tarfile.open(tar) as t:
        names = t.getnames()
        listing = json.loads(t.extractfile("pai-bundle.json").read())  # type: ignore[union-attr]
        contents = {m.name: t.extractfile(m).read() for m in t.getmembers()}  # type: ignore[union-attr]
    assert len(names) == len(set(names)) and {"oci-layout", "index.json"} <= set(names)
    assert set(listing["files"]) == set(names) - {"pai-bundle.json"}
    for name, described in listing["files"].items():
        assert hashlib.sha256(contents[name]).hexdigest() == described["sha256"]
    # skopeo reads the bundle as an ordinary OCI archive, by the ref names in index.json.
    for text, manifest in seeded.manifests.items():
        ref = Reference.parse(text)
        raw = subprocess.run(["skopeo", "inspect", "--raw", f"oci-archive:{tar}:{ref.path}:{ref.tag}"],
                             check=True, capture_output=True).stdout
        assert sha256_digest(raw) == manifest.digest

    imported = paictl("airgap", "import", str(tar), "--to", f"{target.host}/airgap", "--plain-http")
    assert imported.returncode == 0, imported.stderr
    assert_complete(seeded, target.host, "airgap/")


def test_a_flipped_byte_is_refused_naming_the_blob(start_registry: StartRegistry, tmp_path: Path) -> None:
    source, target = start_registry("source"), start_registry("target")
    seeded = seed(source)
    tar = tmp_path / "site.tar"
    bundle.export(jobs_for([Reference.parse(r) for r in seeded.refs]), tar, plain_http=True)
    layer = seeded.manifests[f"{source.host}/team/app-2:v2"].blobs()[2]["digest"]
    with tarfile.open(tar) as t:
        member = t.getmember(f"blobs/sha256/{layer.removeprefix('sha256:')}")
    with open(tar, "r+b") as f:
        f.seek(member.offset_data + member.size // 2)
        byte = f.read(1)
        f.seek(-1, os.SEEK_CUR)
        f.write(bytes([byte[0] ^ 0x01]))

    result = paictl("airgap", "import", str(tar), "--to", target.host, "--plain-http")
    assert result.returncode == 1
    assert f"blob {layer} was altered" in result.stderr
    assert target.blob_files() == 0  # refused before anything was pushed


def test_bad_image_list_names_the_file_and_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    images = tmp_path / "images.txt"
    images.write_text("registry.example/team/ok:v1\n\nnot a reference\n")
    assert main(["airgap", "mirror", "--images", str(images), "--to", "127.0.0.1:1", "--plain-http"]) == 2
    assert f"{images}:3:" in capsys.readouterr().err
    with pytest.raises(OciError, match="only for loopback"):
        Registry("registry.example", plain_http=True)


@pytest.mark.parametrize(("text", "parsed"), [
    ("nvcr.io/nvidia/k8s/dcgm-exporter:4.2.3", Reference("nvcr.io", "nvidia/k8s/dcgm-exporter", "4.2.3")),
    ("oci://127.0.0.1:5000/charts/demo:0.1.0", Reference("127.0.0.1:5000", "charts/demo", "0.1.0")),
    ("docker.io/library/busybox:1.36@sha256:" + "a" * 64,
     Reference("docker.io", "library/busybox", "1.36", "sha256:" + "a" * 64)),
])
def test_references_parse_host_path_tag_digest(text: str, parsed: Reference) -> None:
    assert Reference.parse(text) == parsed
    assert str(parsed) == text.removeprefix("oci://")


@pytest.mark.parametrize("text", ["busybox:1.36", "registry.example/team/app", "registry.example/Team/app:v1"])
def test_references_without_registry_or_tag_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match=r"reference|neither a tag"):
        Reference.parse(text)


# ------------------------------------------------------------------------------------------------- auth


class TokenServer:
    """A Docker token endpoint: basic auth in, an RS256 JWT (x5c: its self-signed cert) with the asked access out."""

    def __init__(self, root: Path, user: str, password: str):
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import rsa
        from cryptography.x509.oid import NameOID

        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "pai-test-token-issuer")])
        now = datetime.datetime.now(datetime.UTC)
        cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(self.key.public_key())
                .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(hours=1))
                .not_valid_after(now + datetime.timedelta(days=1))
                .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                .sign(self.key, hashes.SHA256()))
        self.cert_file = root / "token.pem"
        self.cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        self.x5c = base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()
        self.expected = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
        self.issued = 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.headers.get("Authorization") != server.expected:
                    self.send_response(401)
                    self.end_headers()
                    return
                query = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
                body = json.dumps({"token": server.token(query.get("service", [""])[0], query.get("scope", []))})
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(body.encode())

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        self.realm = f"http://127.0.0.1:{self.httpd.server_address[1]}/token"

    def token(self, service: str, scopes: list[str]) -> str:
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding

        access = []
        for scope in " ".join(scopes).split():
            kind, _, rest = scope.partition(":")
            repo, _, actions = rest.rpartition(":")
            access.append({"type": kind, "name": repo, "actions": actions.split(",")})
        now = int(time.time())
        claims = {"iss": "pai-test-issuer", "sub": "mirror", "aud": service, "exp": now + 600, "nbf": now - 60,
                  "iat": now, "jti": uuid.uuid4().hex, "access": access}
        header = {"typ": "JWT", "alg": "RS256", "x5c": [self.x5c]}

        def b64(data: bytes) -> str:
            return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

        signing = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}"
        signature = self.key.sign(signing.encode(), padding.PKCS1v15(), hashes.SHA256())
        self.issued += 1
        return f"{signing}.{b64(signature)}"


def test_a_registry_requiring_a_bearer_token(start_registry: StartRegistry, tmp_path: Path) -> None:
    tokens = TokenServer(tmp_path, "mirror", "s3cret")
    auth = {"token": {"realm": tokens.realm, "service": "pai-test-registry", "issuer": "pai-test-issuer",
                      "rootcertbundle": str(tokens.cert_file)}}
    source, secured = start_registry("source"), start_registry("secured", auth=auth)
    seeded = seed(source, images=2)
    authfile = tmp_path / "auth.json"
    authfile.write_text(json.dumps({"auths": {secured.host: {
        "auth": base64.b64encode(b"mirror:s3cret").decode()}}}))
    images = seeded.images_file(tmp_path / "images.txt")

    without = paictl("airgap", "mirror", "--images", str(images), "--to", secured.host, "--plain-http")
    assert without.returncode == 1 and "token endpoint" in without.stderr

    mirrored = paictl("airgap", "mirror", "--images", str(images), "--to", secured.host, "--plain-http",
                      "--authfile", str(authfile))
    assert mirrored.returncode == 0, mirrored.stderr
    assert tokens.issued > 0
    # Read back through the token-protected registry: export from it, then import into an open one.
    back = tmp_path / "back.txt"
    back.write_text("\n".join(r.replace(source.host, secured.host) for r in seeded.refs) + "\n")
    tar = tmp_path / "b.tar"
    env_auth = {**os.environ, "REGISTRY_AUTH_FILE": str(authfile)}
    exported = subprocess.run([sys.executable, "-m", "paictl", "airgap", "export", "--images", str(back),
                               "--out", str(tar), "--plain-http"], cwd=REPO, capture_output=True, text=True,
                              env=env_auth, timeout=300)
    assert exported.returncode == 0, exported.stderr
    plain = start_registry("plain")
    assert paictl("airgap", "import", str(tar), "--to", plain.host, "--plain-http").returncode == 0
    assert landed(seeded, plain.host) == {ref: m.digest for ref, m in seeded.manifests.items()}


# ------------------------------------------------------------------------------------------ classic charts


@pytest.fixture
def chart_repo(tmp_path: Path) -> Iterator[tuple[str, bytes]]:
    """A classic Helm repository on 127.0.0.1: index.yaml and demo-1.2.3.tgz; yields (URL, the .tgz bytes)."""
    import functools
    import io
    from http.server import SimpleHTTPRequestHandler

    root = tmp_path / "helm-repo"
    root.mkdir()
    chart_yaml = b"apiVersion: v2\nname: demo\nversion: 1.2.3\nappVersion: '9.9'\n"
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        info = tarfile.TarInfo("demo/Chart.yaml")
        info.size = len(chart_yaml)
        tar.addfile(info, io.BytesIO(chart_yaml))
    tgz = buffer.getvalue()
    (root / "demo-1.2.3.tgz").write_bytes(tgz)
    (root / "index.yaml").write_text(json.dumps({"apiVersion": "v1", "entries": {"demo": [
        {"name": "demo", "version": "1.2.3", "digest": hashlib.sha256(tgz).hexdigest(),
         "urls": ["demo-1.2.3.tgz"]}]}}))

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(root)))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", tgz
    httpd.shutdown()


def test_a_classic_chart_lands_as_a_helm_oci_artifact(start_registry: StartRegistry,
                                                      chart_repo: tuple[str, bytes]) -> None:
    from airgap.helmrepo import HELM_CONFIG, HELM_CONTENT, classic_job
    from airgap.mirror import mirror

    url, tgz = chart_repo
    target = start_registry("target")
    job = classic_job(f"{url}#demo:1.2.3")
    assert job.path == "charts/demo"
    mirror([job], f"{target.host}/site", plain_http=True)

    client = Registry(target.host, plain_http=True)
    manifest = client.get_manifest("site/charts/demo", "1.2.3")
    assert manifest is not None
    config, content = manifest.blobs()
    assert (config["mediaType"], content["mediaType"]) == (HELM_CONFIG, HELM_CONTENT)
    assert b"".join(client.blob_chunks("site/charts/demo", content["digest"], content["size"])) == tgz
    meta = json.loads(b"".join(client.blob_chunks("site/charts/demo", config["digest"], config["size"])))
    assert (meta["name"], meta["version"]) == ("demo", "1.2.3")
    # The packaging is deterministic: a second run finds the chart already there.
    assert mirror([job], f"{target.host}/site", plain_http=True).manifests == 0

    with pytest.raises(OciError, match=r"no chart demo at version 9\.9\.9"):
        mirror([classic_job(f"{url}#demo:9.9.9")], target.host, plain_http=True)


def test_bom_jobs_cover_the_bill_of_materials() -> None:
    from airgap.bom import stack_bill_of_materials
    from airgap.mirror import bom_jobs
    from program.offline import load_stack_file, stack_path

    bill = stack_bill_of_materials(load_stack_file(stack_path("airgap"), "airgap"))
    jobs = list(bom_jobs(bill).values())
    assert len(jobs) == len(set(bill.images)) + len(bill.models) + len(bill.charts) + len(bill.artifacts)
    charts = [job for job in jobs if job.path.startswith("charts/")]
    assert len(charts) == len(bill.charts)
    for job in jobs:
        if job not in charts:
            assert job.path == job.source.path  # host/path:tag lands at REGISTRY/prefix/path:tag


def test_a_registry_requiring_basic_auth(start_registry: StartRegistry, tmp_path: Path) -> None:
    secured, seeded, images = basic_auth_pair(start_registry, tmp_path)
    authfile = tmp_path / "auth.json"
    authfile.write_text(json.dumps({"auths": {secured.host: {"username": "mirror", "password": "s3cret"}}}))

    without = paictl("airgap", "mirror", "--images", str(images), "--to", secured.host, "--plain-http")
    assert without.returncode == 1 and "wants basic auth" in without.stderr
    env = {**os.environ, "REGISTRY_AUTH_FILE": str(authfile)}
    mirrored = subprocess.run([sys.executable, "-m", "paictl", "airgap", "mirror", "--images", str(images), "--to",
                               secured.host, "--plain-http"], cwd=REPO, capture_output=True, text=True, env=env,
                              timeout=300)
    assert mirrored.returncode == 0, mirrored.stderr
    client = Registry(secured.host, plain_http=True, credentials=("mirror", "s3cret"))
    for text, manifest in seeded.manifests.items():
        ref = Reference.parse(text)
        assert client.manifest_digest(ref.path, str(ref.tag)) == manifest.digest
