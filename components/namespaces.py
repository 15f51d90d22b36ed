"""Names of the platform's own namespaces and shared labels, used both by the components that create them and
by those that allow traffic from them or refer to them."""

GPU_OPERATOR = "gpu-operator"
CERT_MANAGER = "cert-manager"
KSERVE = "kserve"
GATEWAY = "envoy-gateway-system"
AI_GATEWAY = "envoy-ai-gateway-system"
KUEUE = "kueue-system"
HARBOR = "harbor"
MLFLOW = "mlflow"
MONITORING = "monitoring"
KUBE_SYSTEM = "kube-system"

PLATFORM_LABEL = "pai.io/platform"  # "true" on every platform namespace tenants may reach
TENANT_LABEL = "pai.io/tenant"
TENANT_QUEUE = "pai-tenant-queue"  # the Kueue LocalQueue in every tenant namespace
ROUTING_NAME_ANNOTATION = "pai.io/routing-name"  # on each InferenceService: the name clients ask for
QUEUE_LABEL = "kueue.x-k8s.io/queue-name"  # on each InferenceService and its pods: the tenant's LocalQueue
ENGINE_LABEL = "pai.io/engine"  # on each model endpoint's pods: vllm | infinity | llamacpp
MODEL_LABEL = "pai.io/model"  # on each model endpoint's pods: the model's config name
SERVING_PORT = 8080  # every serving runtime listens here, OpenAI API and /metrics alike
SERVING_PORT_NAME = "http1"
CLUSTER_ISSUER = "pai-ca"  # the cert-manager ClusterIssuer the platform's own certificates come from
