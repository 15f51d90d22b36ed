"""Interop rules: small functions over Facts and the matrix, each returning checks under one id.

A check's status is pass, warn, fail, or skip when a fact it needs is missing. Its message states the versions
involved; its fix says what to change; its sources list where the facts came from and the matrix rows it used.
A check that rests on a matrix value marked unverified says so in its message, and lists what is marked (the
research notes behind the value) among its sources, which `--format json` prints and the table leaves out. A check
that cannot apply to the stack (a vGPU check in datacenter mode) is a skip whose message starts "not applicable".
"""

from validation.rules.registry import (
    FAILING_PODS,
    NOT_APPLICABLE,
    RULES,
    STATUSES,
    UNVERIFIED_SOURCE,
    UPGRADE_RULES,
    Check,
    Rule,
    Status,
    UpgradeRule,
    allow,
    check_ids,
    rule,
    run_checks,
    run_upgrade_checks,
    upgrade_rule,
)

# The sections in the order their checks run and are reported: importing one registers its rules.
# isort: off
from validation.rules.cuda import cuda_driver
from validation.rules.products import gpu_product
from validation.rules.engines import engine_compute_capability, engine_format
from validation.rules.operator import operator_driver_branch, operator_kubernetes
from validation.rules.vgpu import (
    driver_known_issues,
    gpu_driver_ceiling,
    gpu_driver_minimum,
    vgpu_compute_capability,
    vgpu_host_graphics,
    vgpu_host_guest,
    vgpu_no_datacenter_driver,
    vgpu_products,
)
from validation.rules.vks import (
    vks_cluster_class,
    vks_host_profile,
    vks_memory_reservation,
    vks_node_os,
    vks_release,
    vks_vgpu_profile,
    vks_vm_class,
)
from validation.rules.live import cluster_policy, driver_pods, smoke
from validation.rules.upgrades import (
    upgrade_crd_versions,
    upgrade_driver,
    upgrade_operator_kubernetes,
    upgrade_operator_path,
    upgrade_runtime_cuda,
    upgrade_vgpu_host_guest,
)
# isort: on

__all__ = [
    "FAILING_PODS",
    "NOT_APPLICABLE",
    "RULES",
    "STATUSES",
    "UNVERIFIED_SOURCE",
    "UPGRADE_RULES",
    "Check",
    "Rule",
    "Status",
    "UpgradeRule",
    "allow",
    "check_ids",
    "cluster_policy",
    "cuda_driver",
    "driver_known_issues",
    "driver_pods",
    "engine_compute_capability",
    "engine_format",
    "gpu_driver_ceiling",
    "gpu_driver_minimum",
    "gpu_product",
    "operator_driver_branch",
    "operator_kubernetes",
    "rule",
    "run_checks",
    "run_upgrade_checks",
    "smoke",
    "upgrade_crd_versions",
    "upgrade_driver",
    "upgrade_operator_kubernetes",
    "upgrade_operator_path",
    "upgrade_rule",
    "upgrade_runtime_cuda",
    "upgrade_vgpu_host_guest",
    "vgpu_compute_capability",
    "vgpu_host_graphics",
    "vgpu_host_guest",
    "vgpu_no_datacenter_driver",
    "vgpu_products",
    "vks_cluster_class",
    "vks_host_profile",
    "vks_memory_reservation",
    "vks_node_os",
    "vks_release",
    "vks_vgpu_profile",
    "vks_vm_class",
]
