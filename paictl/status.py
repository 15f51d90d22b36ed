"""`paictl status`: what a cluster runs, read from it (never from Pulumi state): the Kubernetes version and every
Helm release (read by helm through pyhelm3) with its chart version, beside the version this project's catalog pins
for that chart."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from components.catalog import CATALOG
from validation.sources.helm import HelmError, HelmMissing, read_releases
from validation.sources.kubernetes import ClusterError, read_version

EXIT_USAGE = 2


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--kubeconfig", type=Path, help="default: $KUBECONFIG or ~/.kube/config")
    parser.add_argument("--context", help="kubeconfig context (default: its current context)")
    parser.add_argument("--format", choices=["table", "json"], default="table")


def pinned(chart: str) -> str:
    """The catalog's version(s) of a chart, by chart name; '-' for a chart the platform does not install."""
    versions = sorted({v for pin in CATALOG.charts.values() if pin.chart == chart
                       for v in (pin.versions or [pin.version])})
    return ", ".join(versions) or "-"


def run(args: argparse.Namespace) -> int:
    try:
        kubernetes = read_version(args.kubeconfig, args.context)
        releases = read_releases(args.kubeconfig, args.context)
    except (ClusterError, HelmError, HelmMissing) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    rows = [{"namespace": r.namespace, "release": r.name, "chart": r.chart, "version": r.version,
             "status": r.status, "catalog": pinned(r.chart)} for r in releases]
    if args.format == "json":
        sys.stdout.write(json.dumps({"kubernetes": kubernetes, "releases": rows}, indent=2, sort_keys=True) + "\n")
        return 0
    header = {"namespace": "NAMESPACE", "release": "RELEASE", "chart": "CHART", "version": "VERSION",
              "status": "STATUS", "catalog": "CATALOG"}
    widths = {k: max(len(str(row[k])) for row in [header, *rows]) for k in header}
    lines = [f"kubernetes {kubernetes}"] + ["  ".join(str(row[k]).ljust(w) for k, w in widths.items()).rstrip()
                                           for row in [header, *rows]]
    sys.stdout.write("\n".join(lines) + "\n")
    return 0
