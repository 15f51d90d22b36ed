"""The air gap's trust boundary against a hostile registry on 127.0.0.1 (tests/hostile.py) and real docker-registry
targets: every refusal comes before anything is written outside the staging folder or pushed to the target, as
one line with exit 2 for hostile or malformed input; and what the operator sees (progress, a registry that is down,
rejected credentials, Ctrl-C)."""

from __future__ import annotations

import base64
import functools
import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import REPO, StartRegistry
from hostile import Exchange, HostileRegistry, files_under, index_of
from registries import basic_auth_pair, seed

from airgap.mirror import TerminalProgress, jobs_for
from airgap.oci import OCI_INDEX, BadInput, OciError, Reference, Registry, sha256_digest


def paictl(*args: str, env: dict[str, str] | None = None, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "paictl", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, **(env or {})})


def one_line_error(result: subprocess.CompletedProcess[str], code: int = 2) -> str:
    """The refusal: exit `code`, stderr a single `error:` line, no traceback; returns the line."""
    assert result.returncode == code, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


@pytest.fixture
def hostile() -> Iterator[HostileRegistry]:
    with HostileRegistry() as registry:
        yield registry


def images_file(tmp_path: Path, *refs: str) -> Path:
    path = tmp_path / "images.txt"
    path.write_text("\n".join(refs) + "\n")
    return path


# ------------------------------------------------------------------------------- 1. a path as a digest


@pytest.mark.parametrize("digest", ["sha256:{secret}", "sha256:../../../../escape/made/here",
                                    "sha512:" + "0" * 128, "sha256:" + "A" * 64])
def test_a_digest_that_is_not_sha256_hex_is_refused_before_anything_is_written(
        hostile: HostileRegistry, start_registry: StartRegistry, tmp_path: Path, digest: str) -> None:
    secret = tmp_path / "home" / ".docker" / "config.json"
    secret.parent.mkdir(parents=True)
    secret.write_text('{"auths": {"x": {"auth": "c2VjcmV0"}}}')
    staged_blobs = tmp_path / "out" / "b.tar.staging" / "blobs" / "sha256"
    bad = digest.format(secret=os.path.relpath(secret, staged_blobs))  # sha256:../../../../home/.docker/config.json
    hostile.add_image("team/app", "v1", [b"layer"], descriptors=[{"mediaType": "x", "digest": bad, "size": 40}])
    images = images_file(tmp_path, f"{hostile.host}/team/app:v1")
    (tmp_path / "out").mkdir()
    before = files_under(tmp_path)

    line = one_line_error(paictl("airgap", "export", "--images", str(images), "--out",
                                 str(tmp_path / "out" / "b.tar"), "--plain-http"))
    assert f"{hostile.host}/team/app@sha256:" in line and "is not a digest sha256:<64 hex>" in line
    staging = tmp_path / "out" / "b.tar.staging"
    assert files_under(tmp_path, skip=(staging,)) == before  # nothing copied or created outside the staging folder
    assert not (tmp_path / "escape").exists() and not (tmp_path / "out" / "b.tar").exists()
    assert not any(p.is_file() for p in staging.rglob("*"))

    target = start_registry("target")
    one_line_error(paictl("airgap", "mirror", "--images", str(images), "--to", target.host, "--plain-http"))
    assert target.blob_files() == 0 and target.tags("team/app") == []


def test_a_tag_header_that_is_not_a_digest_is_not_pinned(hostile: HostileRegistry) -> None:
    hostile.add_image("team/app", "v1", [b"layer"])
    hostile.on("HEAD", "/manifests/v1", lambda ex: ex.send(200, headers={"Docker-Content-Digest": "sha256:../x"}))
    with pytest.raises(BadInput, match=r"Docker-Content-Digest.*is not a digest"):
        Registry(hostile.host, plain_http=True).manifest_digest("team/app", "v1")


# ------------------------------------------------------------------------- 2. credentials and the realm


def test_credentials_never_go_to_a_plain_http_realm_of_a_tls_registry(tmp_path: Path) -> None:
    with HostileRegistry() as token_server, HostileRegistry(tls_dir=tmp_path / "tls") as registry:
        assert registry.ca_file
        registry.add_image("team/app", "v1", [b"layer"])
        challenge = {"WWW-Authenticate": f'Bearer realm="http://{token_server.host}/token",service="r"'}
        registry.on("GET", "/v2/team/app/manifests", lambda ex: ex.send(401, b"", challenge))
        authfile = tmp_path / "auth.json"
        authfile.write_text(json.dumps({"auths": {registry.host: {"username": "mirror", "password": "s3cret"}}}))
        images = images_file(tmp_path, f"{registry.host}/team/app:v1")
        out = tmp_path / "b.tar"
        export = ["airgap", "export", "--images", str(images), "--out", str(out), "--authfile", str(authfile)]
        before = files_under(tmp_path)

        untrusted = paictl(*export)
        assert "its TLS certificate is not trusted" in one_line_error(untrusted, 1) and "--ca-file" in untrusted.stderr
        result = paictl(*export, "--ca-file", str(registry.ca_file))
        line = one_line_error(result)
        assert f"{registry.host}: refused its token realm 'http://{token_server.host}/token'" in line
        assert "s3cret" not in result.stderr
        assert token_server.requests == []  # the credentials never left
        assert files_under(tmp_path, skip=(tmp_path / "b.tar.staging",)) == before

        registry.script.clear()  # an honest TLS registry: the CA file makes it trusted
        ok = paictl(*export, "--ca-file", str(registry.ca_file))
        assert ok.returncode == 0, ok.stderr
        assert out.exists()


def test_a_realm_on_another_scheme_or_a_remote_plain_host_is_refused(hostile: HostileRegistry) -> None:
    for realm in ("https://127.0.0.1:1/token", "http://example.com/token", "ftp://127.0.0.1/token"):
        challenge = {"WWW-Authenticate": f'Bearer realm="{realm}"'}
        hostile.on("GET", "/manifests/", functools.partial(Exchange.send, status=401, headers=challenge))
        client = Registry(hostile.host, plain_http=True, credentials=("u", "p"))
        with pytest.raises(BadInput, match="refused its token realm"):
            client.get_manifest("team/app", "v1")
    assert hostile.count("GET", "/token") == 0


# ------------------------------------------------------------------------------------- 3. size bounds


def endless(ex: Exchange, piece: bytes = b"\0" * 65536) -> None:
    ex.stream(200, lambda: piece)


def test_an_endless_blob_stops_at_its_declared_size(hostile: HostileRegistry, start_registry: StartRegistry,
                                                    tmp_path: Path) -> None:
    layer = b"x" * 1000
    hostile.add_image("team/app", "v1", [layer])
    hostile.on("GET", f"/blobs/{sha256_digest(layer)}", endless)
    images = images_file(tmp_path, f"{hostile.host}/team/app:v1")
    target = start_registry("target")
    line = one_line_error(paictl("airgap", "mirror", "--images", str(images), "--to", target.host, "--plain-http"),
                          1)
    assert "sends more than its declared 1000 bytes" in line
    assert hostile.streamed < 64 << 20  # it stopped reading; the server could not push its endless body
    assert target.tags("team/app") == [] and target.blob_files() <= 1  # at most the (verified) config blob

    out = tmp_path / "b.tar"
    one_line_error(paictl("airgap", "export", "--images", str(images), "--out", str(out), "--plain-http"), 1)
    staged = [p for p in (tmp_path / "b.tar.staging").rglob("*") if p.is_file()]
    assert all(p.stat().st_size <= len(layer) for p in staged)


@pytest.mark.parametrize("declared", [True, False])
def test_a_huge_manifest_is_refused_at_4_mib(hostile: HostileRegistry, declared: bool) -> None:
    pieces = iter([b"{" + b" " * 65535] * 4096)  # 256 MiB
    hostile.on("GET", "/manifests/v1", lambda ex: ex.stream(200, lambda: next(pieces, None),
                                                            length=256 << 20 if declared else None))
    with pytest.raises(BadInput, match="the 4194304 bytes accepted"):
        Registry(hostile.host, plain_http=True).get_manifest("team/app", "v1")
    assert hostile.streamed < 16 << 20


def test_a_huge_error_body_is_cut(hostile: HostileRegistry) -> None:
    pieces = iter([b"E" * 65536] * 3200)  # 200 MiB
    hostile.on("GET", "/manifests/v1", lambda ex: ex.stream(400, lambda: next(pieces, None), length=200 << 20))
    with pytest.raises(OciError) as refused:
        Registry(hostile.host, plain_http=True).get_manifest("team/app", "v1")
    assert len(str(refused.value)) < 1000
    assert hostile.streamed < 16 << 20


def test_a_dripping_server_meets_the_deadline(hostile: HostileRegistry) -> None:
    def drip(ex: Exchange) -> None:
        ex.stream(200, lambda: time.sleep(0.2) or b" ", length=10_000)  # type: ignore[func-returns-value]

    hostile.on("GET", "/manifests/v1", drip)
    started = time.monotonic()
    with pytest.raises(OciError, match="no complete answer within its deadline"):
        Registry(hostile.host, plain_http=True, deadline=1.5).get_manifest("team/app", "v1")
    assert time.monotonic() - started < 10


# -------------------------------------------------------------------------------------------- 8. check


def test_check_visits_a_repeated_index_child_once(hostile: HostileRegistry, tmp_path: Path) -> None:
    leaf = hostile.add_image("deep/app", "leaf", [b"layer"])
    digest, size = leaf.digest, len(leaf.data)
    for _ in range(12):  # every level names the level below twice: 8,191 visits without memory
        body = json.dumps(index_of([digest, digest], [size, size])).encode()
        digest, size = hostile.add_manifest("deep/app", sha256_digest(body), body, OCI_INDEX), len(body)
    hostile.manifests[("deep/app", "v1")] = hostile.manifests[("deep/app", digest)]
    images = images_file(tmp_path, f"{hostile.host}/deep/app:v1")
    result = paictl("airgap", "check", "--images", str(images), "--on", hostile.host, "--plain-http")
    assert result.returncode == 0, result.stdout + result.stderr
    assert hostile.count("GET", "/manifests/") == 13 and hostile.count("HEAD", "/blobs/") == 2


def test_check_deep_reports_a_cut_connection_as_unreachable(hostile: HostileRegistry, tmp_path: Path) -> None:
    layer = os.urandom(300_000)
    hostile.add_image("team/app", "v1", [layer])
    hostile.on("GET", f"/blobs/{sha256_digest(layer)}", lambda ex: ex.stream(
        200, iter([layer[:1000], None]).__next__, length=len(layer)))
    images = images_file(tmp_path, f"{hostile.host}/team/app:v1")
    result = paictl("airgap", "check", "--images", str(images), "--on", hostile.host, "--plain-http", "--deep",
                    "--format", "json")
    assert result.returncode == 1
    finding = json.loads(result.stdout)["findings"][0]
    assert finding["status"] == "unreachable", finding
    assert "download broke off at 1000 of 300000 bytes" in finding["detail"]


def test_repair_resends_what_check_deep_found_corrupt(start_registry: StartRegistry, tmp_path: Path) -> None:
    source, mirror_registry = start_registry("source"), start_registry("mirror")
    seeded = seed(source, images=1)
    images = images_file(tmp_path, f"{source.host}/team/app-0:v0")
    mirrored = ["airgap", "mirror", "--images", str(images), "--to", mirror_registry.host, "--plain-http"]
    assert paictl(*mirrored).returncode == 0
    layer = seeded.manifests[f"{source.host}/team/app-0:v0"].blobs()[2]["digest"].removeprefix("sha256:")
    data = mirror_registry.storage / f"docker/registry/v2/blobs/sha256/{layer[:2]}/{layer}/data"
    data.write_bytes(b"rotten" + data.read_bytes()[6:])
    checked = ["airgap", "check", "--images", str(images), "--on", mirror_registry.host, "--plain-http", "--deep"]
    found = paictl(*checked)
    assert found.returncode == 1 and "corrupt" in found.stdout and "with --repair" in found.stdout

    assert paictl(*mirrored).returncode == 0  # a plain rerun trusts what is there
    assert paictl(*checked).returncode == 1
    # docker-registry keeps its stored copy of a digest it holds: --repair says so, naming the file to delete
    kept = one_line_error(paictl(*mirrored, "--repair"), 1)
    assert f"blob sha256:{layer} is still corrupt after it was sent again" in kept
    assert f"docker/registry/v2/blobs/sha256/{layer[:2]}/{layer}/data" in kept
    data.unlink()
    assert paictl(*mirrored, "--repair").returncode == 0
    assert paictl(*checked).returncode == 0


def test_repair_on_a_registry_that_takes_the_upload(hostile: HostileRegistry, start_registry: StartRegistry,
                                                     tmp_path: Path) -> None:
    source = start_registry("source")
    seeded = seed(source, images=1)
    images = images_file(tmp_path, f"{source.host}/team/app-0:v0")
    mirrored = ["airgap", "mirror", "--images", str(images), "--to", hostile.host, "--plain-http"]
    assert paictl(*mirrored).returncode == 0
    layer = seeded.manifests[f"{source.host}/team/app-0:v0"].blobs()[2]["digest"]
    hostile.blobs[layer] = b"rotten" + hostile.blobs[layer][6:]
    assert paictl(*mirrored, "--repair").returncode == 0
    assert sha256_digest(hostile.blobs[layer]) == layer


# --------------------------------------------------------------------------- 7. bad input, one line, exit 2


def test_malformed_auth_files_and_token_replies_are_one_line(hostile: HostileRegistry, tmp_path: Path) -> None:
    images = images_file(tmp_path, f"{hostile.host}/team/app:v1")
    hostile.add_image("team/app", "v1", [b"layer"])
    cases = {"not json": b"{", "a list": b"[]", "auths a list": b'{"auths": []}',
             "bad base64": b'{"auths": {"h": {"auth": "%%%"}}}', "no colon": b'{"auths": {"h": {"auth": "YWJj"}}}',
             "not utf-8": b"\xff\xfe{", "entry a string": b'{"auths": {"h": "x"}}'}
    for name, content in cases.items():
        authfile = tmp_path / f"{name}.json"
        authfile.write_bytes(content)
        line = one_line_error(paictl("airgap", "check", "--images", str(images), "--on", hostile.host,
                                     "--plain-http", "--authfile", str(authfile)))
        assert str(authfile) in line, name
    assert str(tmp_path) in one_line_error(paictl("airgap", "mirror", "--images", str(images), "--to", hostile.host,
                                                  "--plain-http", "--authfile", str(tmp_path)))
    realm = {"WWW-Authenticate": f'Bearer realm="http://{hostile.host}/token"'}
    hostile.on("GET", "/manifests/", lambda ex: ex.send(401, b"", realm))
    for reply in (b"not json", b"[]", b'{"token": 5}', b'{"nothing": "here"}', b'{"token": "a\\nb"}'):
        hostile.on("GET", "/token", functools.partial(Exchange.send, status=200, body=reply))
        line = one_line_error(paictl("airgap", "check", "--images", str(images), "--on", hostile.host,
                                     "--plain-http"))
        assert f"token endpoint http://{hostile.host}/token for {hostile.host}" in line


def test_bad_paths_and_keys_are_one_line(hostile: HostileRegistry, tmp_path: Path) -> None:
    hostile.add_image("team/app", "v1", [b"layer"])
    images = images_file(tmp_path, f"{hostile.host}/team/app:v1")
    not_pem = tmp_path / "not.pem"
    not_pem.write_text("hello")
    unpinned = images_file(tmp_path, f"{hostile.host}/team/app:v1")
    export = ["airgap", "export", "--images", str(images), "--plain-http"]
    assert "is a folder" in one_line_error(paictl(*export, "--out", str(tmp_path)))
    assert "does not exist" in one_line_error(paictl(*export, "--out", str(tmp_path / "no" / "b.tar")))
    assert "not a readable PEM private key" in one_line_error(paictl(*export, "--out", str(tmp_path / "b.tar"),
                                                                     "--sign-key", str(not_pem)))
    assert not (tmp_path / "b.tar.staging").exists()  # refused before anything was fetched
    assert "--ca-file" in one_line_error(paictl("airgap", "check", "--images", str(images), "--on", hostile.host,
                                                "--ca-file", str(not_pem)))
    assert "not a PEM public key" in one_line_error(paictl("airgap", "import", str(not_pem), "--to", hostile.host,
                                                           "--plain-http", "--verify-key", str(not_pem)))
    assert "is not pinned by @sha256" in one_line_error(paictl("airgap", "import", str(not_pem), "--to",
                                                               hostile.host, "--plain-http", "--expect-digests",
                                                               str(unpinned)))
    assert "only for loopback" in one_line_error(paictl("airgap", "mirror", "--images", str(images), "--to",
                                                        "registry.example.com", "--plain-http"))
    assert "is not REGISTRY[/prefix]" in one_line_error(paictl("airgap", "mirror", "--images", str(images), "--to",
                                                               f"http://{hostile.host}/", "--plain-http"))
    binary = tmp_path / "binary.txt"
    binary.write_bytes(b"\xff\xfe\x00")
    assert "not a text file" in one_line_error(paictl("airgap", "check", "--images", str(binary), "--on",
                                                      hostile.host, "--plain-http"))
    assert hostile.count("PUT", "") == 0


def test_ctrl_c_during_export_keeps_what_was_fetched_and_the_rerun_resumes_by_range(
        hostile: HostileRegistry, tmp_path: Path) -> None:
    layer = os.urandom(4 << 20)
    hostile.add_image("team/app", "v1", [layer])
    digest = sha256_digest(layer)
    slow = iter([layer[i:i + 65536] for i in range(0, 1 << 20, 65536)])
    hostile.on("GET", f"/blobs/{digest}", lambda ex: ex.stream(
        200, lambda: next(slow, None) or time.sleep(30) or None, length=len(layer)))  # type: ignore[func-returns-value]
    images = images_file(tmp_path, f"{hostile.host}/team/app:v1")
    out = tmp_path / "b.tar"
    partial = tmp_path / "b.tar.staging" / "blobs" / "sha256" / f".{digest.removeprefix('sha256:')}.partial"
    export = [sys.executable, "-m", "paictl", "airgap", "export", "--images", str(images), "--out", str(out),
              "--plain-http"]
    proc = subprocess.Popen(export, cwd=REPO, stderr=subprocess.PIPE, text=True)
    ready = threading.Event()
    while proc.poll() is None and not (partial.exists() and partial.stat().st_size >= 1 << 20):
        ready.wait(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130
    assert err.splitlines() == [f"interrupted: the blobs fetched so far are kept in {out}.staging (a blob cut short "
                                "too); run the same command again: it fetches only what is missing"]
    kept = partial.stat().st_size
    assert kept >= 1 << 20

    hostile.script.clear()
    rerun = paictl(*export[3:])
    assert rerun.returncode == 0, rerun.stderr
    ranged = [r.headers.get("Range") for r in hostile.requests if r.method == "GET" and digest in r.path]
    assert ranged[-1] == f"bytes={kept}-"
    assert out.exists()


# ------------------------------------------------------------------------------------------ 9. helpers


def test_docker_credential_helpers_are_called(start_registry: StartRegistry, tmp_path: Path) -> None:
    secured, _, images = basic_auth_pair(start_registry, tmp_path)
    bin_dir, asked = tmp_path / "bin", tmp_path / "asked.txt"
    bin_dir.mkdir()
    helper = bin_dir / "docker-credential-pai-test"
    helper.write_text(f"#!/bin/sh\nread host\necho \"$host\" >> {asked}\n"
                      f"if [ \"$host\" = \"{secured.host}\" ]; then echo '{{\"Username\": \"mirror\", \"Secret\": "
                      f"\"'\"$PAI_TEST_SECRET\"'\"}}'; else echo 'credentials not found in native keychain'; "
                      "exit 1; fi\n")
    helper.chmod(0o755)
    env = {"PATH": f"{bin_dir}:{os.environ['PATH']}", "PAI_TEST_SECRET": "s3cret"}
    for config in ({"credHelpers": {secured.host: "pai-test"}}, {"credsStore": "pai-test"}):
        authfile = tmp_path / "auth.json"
        authfile.write_text(json.dumps(config))
        result = paictl("airgap", "mirror", "--images", str(images), "--to", secured.host, "--plain-http",
                        "--authfile", str(authfile), env=env)
        assert result.returncode == 0, result.stderr
    assert secured.host in asked.read_text().split()
    wrong = paictl("airgap", "mirror", "--images", str(images), "--to", secured.host, "--plain-http",
                   "--authfile", str(authfile), env={**env, "PAI_TEST_SECRET": "wrong-secret"})
    line = one_line_error(wrong, 1)
    assert f"refused the credentials of user 'mirror' from docker-credential-pai-test (named in {authfile})" in line
    assert "wrong-secret" not in wrong.stderr
    missing = paictl("airgap", "mirror", "--images", str(images), "--to", secured.host, "--plain-http",
                     "--authfile", str(authfile))
    assert "names the credential helper docker-credential-pai-test" in one_line_error(missing)


def test_a_401_names_the_user_and_the_file_not_the_password(start_registry: StartRegistry, tmp_path: Path) -> None:
    secured, _, images = basic_auth_pair(start_registry, tmp_path)
    authfile = tmp_path / "auth.json"
    authfile.write_text(json.dumps({"auths": {secured.host: {
        "auth": base64.b64encode(b"mirror:not-the-password").decode()}}}))
    result = paictl("airgap", "mirror", "--images", str(images), "--to", secured.host, "--plain-http",
                    "--authfile", str(authfile))
    assert f"refused the credentials of user 'mirror' from {authfile} (HTTP 401)" in one_line_error(result, 1)
    assert "not-the-password" not in result.stderr


# ------------------------------------------------------------------------------ 10. the operator's view


def test_a_registry_that_is_down_is_named_once_with_the_time_spent(tmp_path: Path) -> None:
    from registries import free_port

    host = f"127.0.0.1:{free_port()}"
    images = images_file(tmp_path, *(f"{host}/team/app-{i}:v1" for i in range(5)))
    result = paictl("airgap", "mirror", "--images", str(images), "--to", host, "--plain-http")
    line = one_line_error(result, 1)
    assert line.count("did not answer") == 1
    assert f"{host} did not answer (ConnectionRefusedError" in line and "retried 8 times over" in line
    assert line.endswith("(5 of 5 images not copied)")


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_shows_bytes_within_a_blob_on_a_terminal_and_nothing_in_ci(hostile: HostileRegistry,
                                                                            start_registry: StartRegistry) -> None:
    from airgap.mirror import mirror

    layer = os.urandom(3 << 20)
    hostile.add_image("team/app", "v1", [layer])
    pieces = iter([layer[i:i + 65536] for i in range(0, len(layer), 65536)])
    hostile.on("GET", f"/blobs/{sha256_digest(layer)}", lambda ex: ex.stream(
        200, lambda: time.sleep(0.05) or next(pieces, None), length=len(layer)))  # type: ignore[func-returns-value]
    target = start_registry("target")
    screen = Terminal()
    jobs = jobs_for([Reference.parse(f"{hostile.host}/team/app:v1")])
    mirror(jobs, target.host, plain_http=True, progress=TerminalProgress("mirrored", screen))
    frames = [f for f in screen.getvalue().split("\r") if f]
    moved = [f.split("moved ")[1].split(" at ")[0] for f in frames[:-1]]
    assert any(m not in ("0 B", "3.0 MiB") for m in moved), frames  # bytes of the blob in flight, not only whole
    assert all("/s" in f for f in frames)
    quiet = io.StringIO()
    TerminalProgress("mirrored", quiet).update(mirror(jobs, target.host, plain_http=True), final=True)
    assert quiet.getvalue() == ""


@pytest.mark.parametrize("index", [b"entries: [", b"- a list", b"entries: {demo: [{version: '1.0', urls: 5}]}",
                                   b"entries: {demo: 7}"])
def test_a_malformed_chart_repository_index_is_bad_input(hostile: HostileRegistry, index: bytes) -> None:
    from airgap.helmrepo import classic_job
    from airgap.mirror import mirror

    hostile.on("GET", "/index.yaml", functools.partial(Exchange.send, status=200, body=index))
    with pytest.raises(OciError, match=f"http://{hostile.host}") as refused:
        mirror([classic_job(f"http://{hostile.host}#demo:1.0")], hostile.host, plain_http=True)
    assert isinstance(refused.value, BadInput) or "no chart demo at version 1.0" in str(refused.value)
    assert hostile.count("PUT", "") == 0
