"""CertManager: the chart with its CRDs and catalog images, and the CA chain (self-signed bootstrap issuer -> CA
Certificate -> the CA ClusterIssuer), every CR valid against its reference CRD and waiting for the release."""

from __future__ import annotations

from typing import Any

import pytest
from conftest import Program, minimal, of_kind, releases
from schemas import chart_defaults, crd_storage_version, validate_helm_values, validate_object

from components import namespaces
from components.catalog import CATALOG
from program.offline import Registered

PIN = CATALOG.chart("cert-manager")
MIRROR = "harbor.example.com/mirror"
RELEASE_KEY = "kubernetes:helm.sh/v3:Release::platform-cert-manager-release"


def release(records: list[Registered]) -> dict[str, Any]:
    (found,) = [r for r in releases(records) if r["name"] == "cert-manager"]
    return found


def image_blocks(defaults: dict[str, Any], prefix: str = "") -> set[str]:
    """Paths of the chart's image blocks: the maps under an `image` key naming a cert-manager image."""
    found = set()
    for key, value in defaults.items():
        if isinstance(value, dict):
            if key == "image" and str(value.get("name", "")).startswith("cert-manager-"):
                found.add(f"{prefix}{key}")
            found |= image_blocks(value, f"{prefix}{key}.")
    return found


def test_release_installs_the_crds_from_the_pinned_chart(run_program: Program) -> None:
    found = release(run_program(minimal()))
    assert (found["chart"], found["version"], found["namespace"]) == (
        "oci://quay.io/jetstack/charts/cert-manager", "v1.21.1", namespaces.CERT_MANAGER)
    assert found["values"]["crds"] == {"enabled": True, "keep": True}
    assert chart_defaults("cert-manager", PIN.version)["crds"]["enabled"] is False  # so setting it matters
    validate_helm_values("cert-manager", PIN.version, found["values"])


def test_catalog_lists_every_image_of_the_chart_at_its_app_version() -> None:
    assert set(PIN.images) == image_blocks(chart_defaults("cert-manager", PIN.version))
    assert {i.tag for i in PIN.images.values()} == {PIN.version}
    assert all(i.repository.startswith("quay.io/jetstack/cert-manager-") for i in PIN.images.values())


def test_air_gap_puts_every_image_and_the_chart_on_the_mirror(run_program: Program) -> None:
    found = release(run_program(minimal(registry={"mirror": MIRROR, "pullSecret": "mirror-pull"})))
    values = found["values"]
    assert found["chart"] == f"oci://{MIRROR}/charts/cert-manager"
    for path, image in PIN.images.items():
        block = values
        for key in path.split("."):
            block = block[key]
        assert block == {"repository": f"{MIRROR}/{image.repository.split('/', 1)[1]}"}, path
    assert values["global"] == {"imagePullSecrets": [{"name": "mirror-pull"}]}
    validate_helm_values("cert-manager", PIN.version, values)


def test_without_a_mirror_images_are_the_catalogs(run_program: Program) -> None:
    values = release(run_program(minimal()))["values"]
    assert values["webhook"]["image"]["repository"] == "quay.io/jetstack/cert-manager-webhook"
    assert "global" not in values


def test_ca_chain_ends_in_the_cluster_issuer(run_program: Program) -> None:
    records = run_program(minimal())
    issuers = {i["metadata"]["name"]: i for i in of_kind(records, "ClusterIssuer")}
    (certificate,) = of_kind(records, "Certificate")
    assert set(issuers) == {"pai-selfsigned", namespaces.CLUSTER_ISSUER}
    assert issuers["pai-selfsigned"]["spec"] == {"selfSigned": {}}
    spec = certificate["spec"]
    assert certificate["metadata"]["namespace"] == namespaces.CERT_MANAGER
    assert spec["isCA"] is True
    assert spec["issuerRef"] == {"group": "cert-manager.io", "kind": "ClusterIssuer", "name": "pai-selfsigned"}
    # A ClusterIssuer reads its CA from the cert-manager namespace, where the Certificate writes it.
    assert issuers[namespaces.CLUSTER_ISSUER]["spec"] == {"ca": {"secretName": spec["secretName"]}}
    for obj in [*issuers.values(), certificate]:
        assert obj["apiVersion"] == f"cert-manager.io/{crd_storage_version('cert-manager.io', obj['kind'])}"
        validate_object(obj, "1.33")


def test_custom_resources_wait_for_the_release(run_program: Program) -> None:
    records = run_program(minimal())
    crs = [r for r in records if r.type.startswith("kubernetes:cert-manager.io/")]
    assert len(crs) == 3
    assert all(RELEASE_KEY in r.dependencies for r in crs)


@pytest.mark.parametrize("stack", ["dev", "vks-prod", "vks-cluster", "airgap"])
def test_every_stack_installs_cert_manager(run_stack: Any, stack: str) -> None:
    records = run_stack(stack)
    assert [r.name for r in records if r.type == "pai:certmanager:CertManager"] == ["platform-cert-manager"]
