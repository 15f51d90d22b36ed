"""Pulumi entry point (Pulumi.yaml `main: stacks/`): builds the platform for the selected stack."""

from components.platform import deploy

deploy()
