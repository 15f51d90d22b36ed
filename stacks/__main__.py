"""Pulumi entry point (Pulumi.yaml `main: stacks/`): builds the platform for the selected stack. A model endpoint
named `mlflow://NAME@ALIAS` is resolved through the MLflow of MLFLOW_TRACKING_URI before anything is registered."""

from components.config import set_model_resolver
from models.mlflow import resolve_from_env
from program.deploy import deploy

set_model_resolver(resolve_from_env)
deploy()
