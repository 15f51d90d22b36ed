"""The model gallery: validate a model directory, then push, list, pull, promote, register and retire it as an
OCI artifact (a KServe modelcar) in Harbor, over the air-gap OCI client. The layer above airgap (whose client it
uses); imported by paictl and by the stack's entry point (the `mlflow://` resolver)."""
