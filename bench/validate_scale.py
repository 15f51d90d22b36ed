"""`paictl validate --live` against 500 GPU nodes: a fake Kubernetes API (the real client over HTTP) and, where
Go and Debian's govmomi sources are installed, the govmomi simulator with one vGPU VM per node.

Prints the wall time of the whole command (a fresh process, as an operator runs it), the API calls it made,
the nodes, calls per node, and a peer measured in the same run against the same servers: a naive reader that
lists the nodes and then GETs each one (and reads each VM's properties one call at a time).

Run: .venv/bin/python bench/validate_scale.py [--nodes 500] [--vms-per-host 8] [--repeat 3] [--no-vcenter]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from fake_kube import (
    FakeKube,
    cluster_policy,
    crd,
    gfd_node,
    helm_release,
    operand_pod,
    serving,
    write_kubeconfig,
)
from kubernetes import client
from pyVim.connect import Disconnect, SmartConnect
from pyVmomi import vim
from vcsim import PASSWORD, USER, Vcsim, VcsimUnavailable, calls, gpu_host, running

from validation.live import PASSWORD_ENV
from validation.sources.kubernetes import api_client, cluster_facts
from validation.sources.vsphere import VCenter, read_vcenter

GUEST = "580.95.05"
LIMIT_S = 3.0


def inventory(nodes: int) -> FakeKube:
    """`nodes` GPU nodes labelled by GFD, a driver and a validator pod on each, Helm history, policy and CRDs."""
    kube = FakeKube()
    for i in range(nodes):
        name = f"gpu-{i:04d}"
        kube.add("/api/v1/nodes", gfd_node(name, driver=GUEST, cuda="13.0", count=8))
        for pod, app in ((f"nvidia-vgpu-driver-{i}", "nvidia-vgpu-driver-daemonset"),
                         (f"nvidia-operator-validator-{i}", "nvidia-operator-validator")):
            kube.add("/api/v1/namespaces/gpu-operator/pods", operand_pod(pod, app, name))
    for i in range(3):
        kube.add("/api/v1/nodes", gfd_node(f"cp-{i}", product=None))
    for revision, version in enumerate(("v25.3.0", "v25.3.1", "v26.7.0"), start=1):
        status = "deployed" if revision == 3 else "superseded"
        kube.add("/api/v1/namespaces/gpu-operator/secrets",
                 helm_release("gpu-operator", "gpu-operator", "gpu-operator", version, revision, status))
    kube.add("/apis/nvidia.com/v1/clusterpolicies", cluster_policy("ready", driver={
        "enabled": True, "repository": "harbor.pai.prod.example.internal/nvidia", "image": "vgpu-guest-driver",
        "version": GUEST, "licensingConfig": {"nlsEnabled": True, "secretName": "licensing-config"}}))
    for name in ("clusterpolicies.nvidia.com", "nvidiadrivers.nvidia.com"):
        kube.add("/apis/apiextensions.k8s.io/v1/customresourcedefinitions", crd(name, ["v1"], ["v1"]))
    return kube


def vcenter_hosts(nodes: int, per_host: int) -> list[dict[str, Any]]:
    names = [f"gpu-{i:04d}" for i in range(nodes)]
    return [gpu_host(f"esx-{h:03d}", "580.95.02", [(n, "nvidia_h100-80c") for n in names[at:at + per_host]])
            for h, at in enumerate(range(0, nodes, per_host))]


def paictl(kubeconfig: Path, sim: Vcsim | None) -> tuple[float, float, int]:
    """One `paictl validate --live` in a fresh process: wall seconds, its CPU seconds and exit code."""
    command = [sys.executable, "-m", "paictl", "validate", "--stack", "vks-prod", "--live", "--format", "json",
               "--kubeconfig", str(kubeconfig)]
    if sim is not None:
        command += ["--vcenter", f"{sim.host}:{sim.port}", "--vcenter-user", USER, "--vcenter-http"]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env={**os.environ, PASSWORD_ENV: PASSWORD},
                          check=False)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode not in (0, 1):
        raise SystemExit(f"paictl failed ({done.returncode}): {done.stderr}")
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    return wall, cpu, done.returncode


def naive_kubernetes(kubeconfig: Path) -> None:
    """The peer: list node names, then GET every node (one call per node)."""
    with api_client(kubeconfig) as api:
        core = client.CoreV1Api(api)
        for node in core.list_node().items:
            assert node.metadata is not None and node.metadata.name is not None
            core.read_node(node.metadata.name)


def naive_vcenter(sim: Vcsim, vms: int) -> None:
    """The peer: the first `vms` VMs' properties read one property access (one call) at a time."""
    si = SmartConnect(host=sim.host, port=sim.port, user=sim.user, pwd=sim.password, protocol="http",
                      disableSslCertValidation=True)
    content = si.RetrieveContent()
    view = content.viewManager.CreateContainerView(content.rootFolder, [vim.VirtualMachine], True)
    for vm in view.view[:vms]:
        _ = vm.name, vm.runtime.host, vm.config.hardware.device
    view.Destroy()
    Disconnect(si)


def ours_vcenter(sim: Vcsim) -> None:
    read_vcenter(VCenter(sim.host, sim.user, sim.password, port=sim.port, protocol="http", insecure=True))


def timed(fn: Any, *args: Any) -> float:
    start = time.perf_counter()
    fn(*args)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--nodes", type=int, default=500)
    parser.add_argument("--vms-per-host", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--no-vcenter", action="store_true")
    parser.add_argument("--peer-vms", type=int, default=50, help="VMs the naive vCenter peer reads (it is slow)")
    args = parser.parse_args()
    kube = inventory(args.nodes)
    with ExitStack() as stack, tempfile.TemporaryDirectory() as tmp:
        kubeconfig = write_kubeconfig(Path(tmp) / "kubeconfig", stack.enter_context(serving(kube)))
        sim = None
        if not args.no_vcenter:
            try:
                started = time.perf_counter()
                sim = stack.enter_context(running(vcenter_hosts(args.nodes, args.vms_per_host)))
                print(f"vcsim: {args.nodes} VMs on {-(-args.nodes // args.vms_per_host)} hosts, "
                      f"started in {time.perf_counter() - started:.1f} s")
            except VcsimUnavailable as exc:
                print(f"vcsim: skipped ({exc})")
        walls, cpus, k8s_calls, vc_calls = [], [], [], []
        for _ in range(args.repeat):
            k0, v0 = kube.calls(), calls(sim) if sim else 0
            wall, cpu, code = paictl(kubeconfig, sim)
            walls.append(wall)
            cpus.append(cpu)
            k8s_calls.append(kube.calls() - k0)
            vc_calls.append((calls(sim) if sim else 0) - v0)
        with api_client(kubeconfig) as api:
            cluster_facts(api)  # warm this process's client before timing both readers here
            k0 = kube.calls()
            ours_s = timed(cluster_facts, api)
        ours_k8s = kube.calls() - k0
        k0 = kube.calls()
        naive_kubernetes(kubeconfig)  # warm
        k0 = kube.calls()
        naive_s = timed(naive_kubernetes, kubeconfig)
        naive_k8s = kube.calls() - k0
        naive_vc = naive_vc_s = ours_vc = ours_vc_s = 0.0
        if sim is not None:
            v0 = calls(sim)
            ours_vc_s = timed(ours_vcenter, sim)
            ours_vc = calls(sim) - v0
            v0 = calls(sim)
            naive_vc_s = timed(naive_vcenter, sim, args.peer_vms)
            naive_vc = calls(sim) - v0

    wall = statistics.median(walls)
    total = k8s_calls[-1] + vc_calls[-1]
    print(f"paictl validate --live (vks-prod, {args.nodes} GPU nodes, exit {code}): wall median {wall:.2f} s "
          f"(min {min(walls):.2f}, runs {', '.join(f'{w:.2f}' for w in walls)}); limit {LIMIT_S:.1f} s: "
          f"{'OK' if wall < LIMIT_S else 'OVER'}; its CPU time median {statistics.median(cpus):.2f} s")
    print(f"  API calls: kubernetes {k8s_calls[-1]}, vcenter {vc_calls[-1]}; nodes {args.nodes}; "
          f"calls/node {total / args.nodes:.3f}")
    print(f"peer, naive per-node GET loop (same fake API, same process): kubernetes calls {naive_k8s} "
          f"({naive_k8s / ours_k8s:.0f}x ours: {ours_k8s}), time {naive_s:.2f} s vs {ours_s:.2f} s "
          f"({naive_s / ours_s:.1f}x)")
    if naive_vc:
        naive_calls, ours_calls = naive_vc / args.peer_vms, ours_vc / args.nodes
        naive_ms, ours_ms = naive_vc_s / args.peer_vms * 1000, ours_vc_s / args.nodes * 1000
        print(f"peer, naive per-VM property reads (same simulator, first {args.peer_vms} VMs): vcenter calls/node "
              f"{naive_calls:.2f} vs ours {ours_calls:.3f} ({naive_calls / ours_calls:.0f}x), "
              f"time/node {naive_ms:.1f} ms vs {ours_ms:.2f} ms ({naive_ms / ours_ms:.1f}x)")
    print(f"load average {' '.join(f'{x:.1f}' for x in os.getloadavg())} on {os.cpu_count()} CPUs")


if __name__ == "__main__":
    main()
