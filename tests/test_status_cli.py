"""`paictl status`: the Kubernetes version (the real `kubernetes` client) and the installed Helm releases with their
chart versions (helm through pyhelm3), read from a fake API server over HTTP, beside the catalog's pins."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fake_kube import FakeKube, helm_release, serving, write_kubeconfig

from components.catalog import CATALOG
from paictl.cli import main


def test_status_lists_the_latest_revision_of_each_release_beside_the_catalog_pin(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    kube = FakeKube(version="v1.33.2")
    kube.add("/api/v1/namespaces/gpu-operator/secrets",
             helm_release("gpu-operator", "gpu-operator", "gpu-operator", "v25.3.0", 1, "superseded"))
    kube.add("/api/v1/namespaces/gpu-operator/secrets",
             helm_release("gpu-operator", "gpu-operator", "gpu-operator", "v26.7.0", 2))
    kube.add("/api/v1/namespaces/kueue/secrets", helm_release("kueue", "kueue", "kueue", "0.19.2"))
    kube.add("/api/v1/namespaces/web/secrets", helm_release("shop", "web", "nginx", "1.0.0"))
    with serving(kube) as url:
        kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", url)
        assert main(["status", "--kubeconfig", str(kubeconfig), "--format", "json"]) == 0
        status = json.loads(capsys.readouterr().out)
        assert main(["status", "--kubeconfig", str(kubeconfig)]) == 0
        table = capsys.readouterr().out.splitlines()
    operator_pins = ", ".join(sorted(CATALOG.chart("gpu-operator").versions))
    assert status == {"kubernetes": "v1.33.2", "releases": [
        {"namespace": "gpu-operator", "release": "gpu-operator", "chart": "gpu-operator", "version": "v26.7.0",
         "status": "deployed", "catalog": operator_pins},
        {"namespace": "kueue", "release": "kueue", "chart": "kueue", "version": "0.19.2", "status": "deployed",
         "catalog": CATALOG.chart("kueue").version},
        {"namespace": "web", "release": "shop", "chart": "nginx", "version": "1.0.0", "status": "deployed",
         "catalog": "-"}]}
    assert table[0] == "kubernetes v1.33.2"
    assert table[1].split() == ["NAMESPACE", "RELEASE", "CHART", "VERSION", "STATUS", "CATALOG"]
    assert table[2].split()[:5] == ["gpu-operator", "gpu-operator", "gpu-operator", "v26.7.0", "deployed"]


def test_an_unreachable_cluster_is_a_one_line_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", "http://127.0.0.1:9")
    assert main(["status", "--kubeconfig", str(kubeconfig)]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.startswith("error: cluster http://127.0.0.1:9")
    assert len(captured.err.splitlines()) == 1
