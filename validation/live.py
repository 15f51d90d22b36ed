"""The hook `paictl validate --live` calls: facts read from the running cluster, vCenter and the node probes.

The live sources (validation/sources/kubernetes.py, vsphere.py, nvml.py, smoke.py) plug in here:
`add_arguments` adds their command-line options to `paictl validate`, `live_facts` reads them and returns the
merged facts (`validation.facts.merge`, least authoritative first). Until they are wired, `--live` is refused
with `LiveUnavailable`, which paictl reports as a usage error (exit 2).
"""

from __future__ import annotations

import argparse

from validation.facts import Facts


class LiveUnavailable(Exception):
    """Live facts cannot be read (no source wired, cluster or vCenter unreachable, bad credentials)."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options the live sources need (kubeconfig, vCenter address, ...); none until they are wired."""


def live_facts(args: argparse.Namespace) -> Facts:
    """Facts from the cluster, vCenter, NVML and the smoke probe."""
    raise LiveUnavailable("--live is not available in this build: no live source of facts is wired")
