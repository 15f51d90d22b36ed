"""The model gallery: validate a model directory, then push, list, pull, promote, register and retire it as an
OCI artifact (a KServe modelcar) in Harbor, over the air-gap OCI client. Above the program layer, beside airgap;
only paictl imports it."""
