"""paictl airgap bom --resolve / --resolve-on: the bill of materials pinned by digest, against real registries
(Debian docker-registry) on 127.0.0.1."""

from __future__ import annotations

import json
import subprocess
import sys

from conftest import REPO, StartRegistry
from registries import RegistryProcess, gzip_layer, push_chart, push_image

from airgap.bom import Bom, Entry, stack_bill_of_materials
from airgap.mirror import bom_jobs
from airgap.oci import Registry
from airgap.resolve import resolve
from program.offline import load_stack_file, stack_path

DEV = stack_bill_of_materials(load_stack_file(stack_path("dev"), "dev"))


def seed(registry: RegistryProcess, bill: Bom, prefix: str, skip: tuple[str, ...] = ()) -> dict[str, str]:
    """A small artifact where each reference of the bill lands on a mirror under `prefix`: reference -> digest."""
    client = Registry(registry.host, plain_http=True)
    digests = {ref: push_image(client, f"{prefix}/{job.path}", job.ref, [gzip_layer(ref, 256)]).digest
               for ref, job in bom_jobs(bill).items() if ref not in skip}
    client.close()
    return digests


def test_resolving_on_a_mirror_pins_every_reference(start_registry: StartRegistry) -> None:
    mirror = start_registry("mirror")
    digests = seed(mirror, DEV, "site")
    pinned, failed = resolve(DEV, on=f"{mirror.host}/site", plain_http=True)
    assert failed == []
    assert pinned.images == sorted(f"{ref}@{digests[ref]}" for ref in DEV.images)
    assert pinned.charts == sorted(f"{ref}@{digests[ref]}" for ref in DEV.charts)
    before = {e.ref: e for e in DEV.entries}
    for entry in pinned.entries:
        ref, _, digest = entry.ref.partition("@")
        if before[ref].status in ("unresolved", "unverified"):
            assert digest == digests[ref]
            # an unverified tag stays flagged: its digest is the tag's, which the chart may not render
            assert entry.status == ("unverified" if before[ref].status == "unverified" else "resolved")
    assert pinned.summary()["unresolved"] == 0 and pinned.summary()["unverified"] == DEV.summary()["unverified"]


def test_a_reference_the_mirror_lacks_stays_unresolved_and_is_named(start_registry: StartRegistry) -> None:
    mirror = start_registry("mirror")
    missing = DEV.images[0]
    seed(mirror, DEV, "site", skip=(missing,))
    pinned, failed = resolve(DEV, on=f"{mirror.host}/site", plain_http=True)
    tag = missing.rsplit(":", 1)[1]
    assert failed == [f"{missing}: not resolved on {mirror.host}/site: no manifest at {tag}"]
    assert missing in pinned.unresolved
    assert len(pinned.images) == len(DEV.images)


def test_resolving_asks_each_references_own_registry(start_registry: StartRegistry) -> None:
    upstream = start_registry("upstream")
    client = Registry(upstream.host, plain_http=True)
    image = push_image(client, "team/app", "v1", [gzip_layer("app", 512)])
    chart = push_chart(client, "charts/demo", "0.1.0", gzip_layer("chart", 300))
    client.close()
    refs = {"image": f"{upstream.host}/team/app:v1", "chart": f"oci://{upstream.host}/charts/demo:0.1.0"}
    classic = "https://charts.example.com#demo:0.1.0"
    bill = Bom(images=[refs["image"]], charts=sorted([refs["chart"], classic]), models=[], entries=[
        Entry("image", refs["image"], "unresolved", ("test",)), Entry("chart", refs["chart"], "unresolved", ("test",)),
        Entry("chart", classic, "unresolved", ("test",))])
    pinned, failed = resolve(bill, plain_http=True)
    assert pinned.images == [f"{refs['image']}@{image.digest}"]
    assert pinned.charts == sorted([f"{refs['chart']}@{chart.digest}", classic])
    assert failed == [f"{classic}: not resolved: a classic Helm repository chart has no digest before it is "
                      "mirrored"]


def test_cli_prints_the_pinned_bill_and_exits_1_naming_what_is_left(start_registry: StartRegistry) -> None:
    mirror = start_registry("mirror")
    missing = DEV.models[0]
    digests = seed(mirror, DEV, "site", skip=(missing,))
    command = [sys.executable, "-m", "paictl", "airgap", "bom", "--stack", "dev", "--resolve-on",
               f"{mirror.host}/site", "--plain-http", "--format", "json"]
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 1
    assert result.stderr.splitlines() == [f"error: {missing}: not resolved on {mirror.host}/site: no manifest at "
                                          f"{missing.rsplit(':', 1)[1]}"]
    body = json.loads(result.stdout)
    assert body["models"] == sorted([missing] + [f"{m}@{digests[m]}" for m in DEV.models if m != missing])
    assert body["summary"]["unresolved"] == 1
