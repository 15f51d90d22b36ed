"""Pulumi entry point (Pulumi.yaml `main: stacks/`): builds the platform for the selected stack."""

from program.deploy import deploy

deploy()
