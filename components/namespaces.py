"""Names of the platform's own namespaces, shared by the components that create them and those that allow
traffic from them."""

GATEWAY = "envoy-gateway-system"
MONITORING = "monitoring"
KUBE_SYSTEM = "kube-system"
PLATFORM_LABEL = "pai.io/platform"
TENANT_LABEL = "pai.io/tenant"

