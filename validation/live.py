"""The hook `paictl validate --live` calls: facts read from the running cluster, the Supervisor, vCenter and the
node probes.

`add_arguments` adds the live sources' options to `paictl validate`; `live_facts` reads them and returns the
merged facts (`validation.facts.merge`, least authoritative first: cluster, Supervisor, vCenter, probe results).
With `--supervisor-kubeconfig` (a stack with pai:supervisor) the vSphere namespace is read; the workload cluster
is then read only when `--kubeconfig` is given too (before `pulumi up` it does not exist yet). Anything
that cannot be read (kubeconfig, cluster or vCenter unreachable, a refused login, no password) raises
`LiveUnavailable`, which paictl reports as a usage error (exit 2). The vCenter password is read from an
environment variable, never from a flag, and never printed.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from components.config import Supervisor
from validation.facts import Facts, merge
from validation.sources import helm, kubernetes, nvml, supervisor, vsphere

PASSWORD_ENV = "PAI_VCENTER_PASSWORD"


class LiveUnavailable(Exception):
    """Live facts cannot be read (no source wired, cluster or vCenter unreachable, bad credentials)."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of the live sources: kubeconfig and context, vCenter address and user, probe Job logs."""
    live = parser.add_argument_group("live sources (with --live)")
    live.add_argument("--kubeconfig", type=Path, help="default: $KUBECONFIG or ~/.kube/config")
    live.add_argument("--context", help="kubeconfig context (default: its current context)")
    live.add_argument("--supervisor-kubeconfig", type=Path, metavar="PATH",
                      help="also read the vSphere namespace of pai:supervisor on the Supervisor (VM classes, quotas, "
                      "ClusterClass, images); without --kubeconfig the workload cluster is not read")
    live.add_argument("--supervisor-context", help="context of --supervisor-kubeconfig (default: its current one)")
    live.add_argument("--vcenter", metavar="HOST[:PORT]", help="also read ESXi hosts and node VMs from this vCenter")
    live.add_argument("--vcenter-user", metavar="USER", help="vCenter user (the password comes from --vcenter-"
                      f"password-env, default ${PASSWORD_ENV})")
    live.add_argument("--vcenter-password-env", metavar="VAR", default=PASSWORD_ENV,
                      help="environment variable holding the vCenter password")
    live.add_argument("--vcenter-insecure", action="store_true", help="do not verify vCenter's TLS certificate")
    live.add_argument("--vcenter-http", action="store_true", help=argparse.SUPPRESS)  # plain http: simulators only
    live.add_argument("--probe-log", type=Path, action="append", default=[], metavar="FILE",
                      help="the log of a GPU probe Job (kubectl logs job/pai-gpu-probe); repeatable")


def vcenter_target(args: argparse.Namespace) -> vsphere.VCenter:
    """Where and as whom to read vCenter; the password from the environment."""
    if not args.vcenter_user:
        raise LiveUnavailable("--vcenter needs --vcenter-user")
    password = os.environ.get(args.vcenter_password_env)
    if not password:
        raise LiveUnavailable(f"--vcenter: set the vCenter password in ${args.vcenter_password_env}")
    host, _, port = str(args.vcenter).partition(":")
    if port and not port.isdigit():
        raise LiveUnavailable(f"--vcenter {args.vcenter}: the port must be a number")
    protocol = "http" if args.vcenter_http else "https"
    return vsphere.VCenter(host, args.vcenter_user, password, port=int(port or (80 if args.vcenter_http else 443)),
                           protocol=protocol, insecure=args.vcenter_insecure or args.vcenter_http)


def live_facts(args: argparse.Namespace, sup: Supervisor | None = None) -> Facts:
    """Facts from the cluster (its Helm releases read by helm through pyhelm3), the Supervisor (with
    --supervisor-kubeconfig, in the vSphere namespace of `sup`), vCenter (with --vcenter) and probe Job logs (with
    --probe-log)."""
    target = vcenter_target(args) if args.vcenter else None
    if args.supervisor_kubeconfig and sup is None:
        raise LiveUnavailable("--supervisor-kubeconfig: the stack has no pai:supervisor (no vSphere namespace to read)")
    read_cluster = args.kubeconfig is not None or not args.supervisor_kubeconfig
    parts: list[Facts] = []
    node_names: list[str] | None = None
    try:
        if read_cluster:
            cluster, node_names = kubernetes.read_cluster(args.kubeconfig, args.context)
            parts.append(cluster.model_copy(update={"releases": helm.read_releases(args.kubeconfig, args.context)}))
        if args.supervisor_kubeconfig and sup is not None:
            parts.append(supervisor.read_supervisor(args.supervisor_kubeconfig, sup.namespace, args.supervisor_context,
                                                    (sup.clusterClassNamespace, sup.clusterClass)))
        if target:
            parts.append(vsphere.read_vcenter(target, node_names))
    except (kubernetes.ClusterError, vsphere.VCenterError, helm.HelmError, helm.HelmMissing) as exc:
        raise LiveUnavailable(str(exc)) from None
    for log in args.probe_log:
        try:
            parts.append(nvml.probe_facts(log.read_text()))
        except (OSError, ValueError, KeyError) as exc:
            raise LiveUnavailable(f"--probe-log {log}: {exc}") from None
    return merge(*parts)
