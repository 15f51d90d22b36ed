"""Tests of the reference-schema checks in schemas.py."""

from __future__ import annotations

import copy
import re
from typing import Any

import pytest
from schemas import (
    SchemaError,
    chart_defaults,
    crd_storage_version,
    crd_versions,
    validate_core,
    validate_custom_resource,
    validate_helm_values,
    validate_object,
)

K8S = "1.33"
GPU_OPERATOR = ("gpu-operator", "v26.7.0")


def _cluster_queue() -> dict[str, Any]:
    return {
        "apiVersion": "kueue.x-k8s.io/v1beta2",
        "kind": "ClusterQueue",
        "metadata": {"name": "team-a"},
        "spec": {
            "cohortName": "org",
            "namespaceSelector": {},
            "resourceGroups": [
                {
                    "coveredResources": ["cpu", "memory", "nvidia.com/gpu"],
                    "flavors": [
                        {
                            "name": "h100",
                            "resources": [
                                {"name": "cpu", "nominalQuota": 64},
                                {"name": "memory", "nominalQuota": "512Gi"},
                                {"name": "nvidia.com/gpu", "nominalQuota": 8},
                            ],
                        }
                    ],
                }
            ],
        },
    }


def _inference_service() -> dict[str, Any]:
    return {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {"name": "llm", "namespace": "models"},
        "spec": {
            "predictor": {
                "minReplicas": 1,
                "model": {
                    "modelFormat": {"name": "huggingface"},
                    "storageUri": "hf://meta-llama/Llama-3.1-8B-Instruct",
                    "resources": {"limits": {"nvidia.com/gpu": "1", "cpu": 4, "memory": "32Gi"}},
                },
            }
        },
    }


def _fails(match: str) -> Any:
    return pytest.raises(SchemaError, match=re.escape(match))


def test_namespace_passes_and_unknown_metadata_field_fails() -> None:
    namespace: dict[str, Any] = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "x"}}
    validate_core(namespace, K8S)
    namespace["metadata"]["bogus"] = 1
    with _fails("Namespace/x: metadata: Additional properties are not allowed ('bogus' was unexpected)"):
        validate_core(namespace, K8S)


def test_core_error_names_nested_path_and_unknown_kind() -> None:
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web"},
        "spec": {"selector": {}, "template": {"spec": {"containers": [{"name": "a", "imag": "nginx"}]}}},
    }
    with _fails("Deployment/web: spec.template.spec.containers.0: Additional properties are not allowed"):
        validate_object(deployment, K8S)
    with _fails("Couldn't find schema for kind Nope"):
        validate_core({"apiVersion": "v1", "kind": "Nope", "metadata": {"name": "n"}}, K8S)


def test_kubernetes_version_maps_to_known_schema() -> None:
    namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "x"}}
    validate_core(namespace, "v1.30.2")
    validate_core(namespace, "1.99")  # newer than any bundled schema: the newest is used
    with _fails("no Kubernetes schema for 1.20"):
        validate_core(namespace, "1.20")


def test_cluster_queue_passes_and_misspelled_field_fails() -> None:
    queue = _cluster_queue()
    validate_custom_resource(queue)
    validate_object(queue, K8S)
    queue["spec"]["cohortNme"] = queue["spec"].pop("cohortName")
    with _fails(
        "ClusterQueue/team-a: spec: Additional properties are not allowed ('cohortNme' was unexpected)"
    ):
        validate_custom_resource(queue)


def test_cluster_queue_nested_errors() -> None:
    queue = _cluster_queue()
    flavor = queue["spec"]["resourceGroups"][0]["flavors"][0]
    flavor["resources"][0]["nominalQuota"] = True  # int-or-string accepts neither bool
    with _fails("spec.resourceGroups.0.flavors.0.resources.0.nominalQuota: True is not of type"):
        validate_custom_resource(queue)
    queue = _cluster_queue()
    del queue["spec"]["resourceGroups"][0]["flavors"][0]["resources"][0]["nominalQuota"]
    with _fails("'nominalQuota' is a required property"):
        validate_custom_resource(queue)


def test_custom_resource_metadata_is_checked_loosely() -> None:
    queue = _cluster_queue()
    queue["metadata"].update(labels={"team": "a"}, annotations={"x": "y"}, finalizers=["f"])
    validate_custom_resource(queue)
    queue["metadata"]["labels"] = {"team": 1}
    with _fails("metadata.labels.team: 1 is not of type 'string'"):
        validate_custom_resource(queue)
    del queue["metadata"]["name"]
    with _fails("ClusterQueue/?: metadata: 'name' is a required property"):
        validate_custom_resource(queue)


def test_unknown_top_level_field_fails() -> None:
    queue = _cluster_queue()
    queue["sepc"] = {}
    with _fails("ClusterQueue/team-a: Additional properties are not allowed ('sepc' was unexpected)"):
        validate_custom_resource(queue)


def test_inference_service_passes_and_typo_fails() -> None:
    service = _inference_service()
    validate_object(service, K8S)
    model = service["spec"]["predictor"]["model"]
    model["storageUrl"] = model.pop("storageUri")
    with _fails(
        "InferenceService/llm: spec.predictor.model: Additional properties are not allowed ('storageUrl'"
    ):
        validate_object(service, K8S)


def test_unserved_version_lists_served_versions() -> None:
    service = _inference_service()
    service["apiVersion"] = "serving.kserve.io/v1alpha1"
    with _fails("InferenceService.serving.kserve.io does not serve v1alpha1 (served: v1beta1)"):
        validate_custom_resource(service)
    queue = _cluster_queue()
    queue["apiVersion"] = "kueue.x-k8s.io/v1"
    with _fails("(served: v1beta1, v1beta2)"):
        validate_custom_resource(queue)


def test_crd_versions() -> None:
    assert crd_storage_version("kueue.x-k8s.io", "ClusterQueue") == "v1beta2"
    assert crd_versions("kueue.x-k8s.io", "ClusterQueue") == ["v1beta1", "v1beta2"]
    assert crd_versions("gateway.networking.k8s.io", "TLSRoute") == ["v1"]  # v1alpha2/3 not served
    with _fails("no reference CRD for Nope.kueue.x-k8s.io"):
        crd_versions("kueue.x-k8s.io", "Nope")


def test_gateway_api_dispatches_to_its_crd() -> None:
    gateway: dict[str, Any] = {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "Gateway",
        "metadata": {"name": "gw", "namespace": "edge"},
        "spec": {"gatewayClassName": "eg", "listeners": [{"name": "http", "protocol": "HTTP", "port": 80}]},
    }
    validate_object(gateway, K8S)
    gateway["spec"]["listeners"][0]["prot"] = "HTTP"
    with _fails(
        "Gateway/gw: spec.listeners.0: Additional properties are not allowed ('prot' was unexpected)"
    ):
        validate_object(gateway, K8S)


def test_unknown_custom_group_fails() -> None:
    with _fails("X/x: no reference CRD for X.example.com"):
        validate_object({"apiVersion": "example.com/v1", "kind": "X", "metadata": {"name": "x"}}, K8S)


def test_go_regex_flags_and_defaulted_required_fields() -> None:
    check: dict[str, Any] = {
        "apiVersion": "kueue.x-k8s.io/v1beta2",
        "kind": "AdmissionCheck",
        "metadata": {"name": "prov"},
        "spec": {
            "controllerName": "kueue.x-k8s.io/provisioning-request",
            "parameters": {"apiGroup": "kueue.x-k8s.io", "kind": "ProvisioningRequestConfig", "name": "p"},
        },
    }
    validate_custom_resource(check)  # pattern ^(?i)... is Go syntax
    check["spec"]["parameters"]["kind"] = "Bad_Kind"
    with _fails("spec.parameters.kind: 'Bad_Kind' does not match"):
        validate_custom_resource(check)
    # driverType, image and default are required but defaulted by the API server
    driver: dict[str, Any] = {
        "apiVersion": "nvidia.com/v1alpha1",
        "kind": "NVIDIADriver",
        "metadata": {"name": "d"},
        "spec": {},
    }
    validate_custom_resource(driver)
    driver["spec"]["driverType"] = "cpu"
    with _fails("spec.driverType: 'cpu' is not one of"):
        validate_custom_resource(driver)


def test_helm_values_real_paths_pass() -> None:
    defaults = chart_defaults(*GPU_OPERATOR)
    assert defaults["driver"]["licensingConfig"]["nlsEnabled"] is True
    validate_helm_values(
        *GPU_OPERATOR,
        {"driver": {"enabled": False, "licensingConfig": {"nlsEnabled": True, "secretName": "s"}}},
    )


def test_helm_values_typo_fails_with_suggestion() -> None:
    with _fails(
        "gpu-operator v26.7.0: values path driver.licensingConfg does not exist"
        " (nearby: driver.licensingConfig)"
    ):
        validate_helm_values(*GPU_OPERATOR, {"driver": {"licensingConfg": {"nlsEnabled": True}}})


def test_helm_values_renamed_between_versions() -> None:
    values = {"driver": {"licensingConfig": {"secretName": "s"}}}
    with _fails("gpu-operator v25.3.0: values path driver.licensingConfig.secretName does not exist"):
        validate_helm_values("gpu-operator", "v25.3.0", values)


def test_helm_values_free_form_maps_pass() -> None:
    validate_helm_values(
        *GPU_OPERATOR,
        {
            "devicePlugin": {"config": {"create": True, "name": "c", "data": {"any-key": {"x": 1}}}},
            "daemonsets": {"labels": {"team": "a"}, "tolerations": [{"key": "k", "operator": "Exists"}]},
            "operator": {"nodeSelector": {"node-role": "infra"}, "resources": {"limits": {"memory": "1Gi"}}},
            "node-feature-discovery": {"worker": {"anythingTheSubchartTakes": True}},
        },
    )
    validate_helm_values("kube-prometheus-stack", "88.5.3", {"grafana": {"notInParentDefaults": 1}})


def test_helm_values_shape_mismatch_fails() -> None:
    with _fails("values path driver.version is a scalar in the defaults ('595.91.07'), not a map"):
        validate_helm_values(*GPU_OPERATOR, {"driver": {"version": {"tag": "x"}}})
    with _fails("values path driver is a map in the defaults, not bool"):
        validate_helm_values(*GPU_OPERATOR, {"driver": False})
    validate_helm_values(*GPU_OPERATOR, {"driver": {"licensingConfig": None}})


def test_helm_values_allow_paths_documented_in_comments() -> None:
    values = {"operator": {"metrics": {"serviceMonitor": {"enabled": True}}}}
    with _fails("values path operator.metrics does not exist"):
        validate_helm_values(*GPU_OPERATOR, values)
    validate_helm_values(*GPU_OPERATOR, values, allow={"operator.metrics"})


def test_helm_values_reports_every_error() -> None:
    with pytest.raises(SchemaError) as info:
        validate_helm_values(*GPU_OPERATOR, {"driver": {"enabld": True}, "toolkit": {"versoin": "v1"}})
    assert "driver.enabld" in str(info.value)
    assert "toolkit.versoin" in str(info.value)


def test_helm_missing_chart_or_version_lists_what_exists() -> None:
    with _fails("gpu-operator v99.0.0: no reference values (available versions: v25.3.0, v26.7.0)"):
        validate_helm_values("gpu-operator", "v99.0.0", {})
    with _fails("no reference chart nope (available charts: "):
        chart_defaults("nope", "1.0.0")


def test_chart_defaults_returns_a_copy() -> None:
    defaults = chart_defaults(*GPU_OPERATOR)
    pristine = copy.deepcopy(defaults)
    defaults["driver"]["enabled"] = "mutated"
    assert chart_defaults(*GPU_OPERATOR) == pristine
