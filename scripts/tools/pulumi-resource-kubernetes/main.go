// The Kubernetes provider plugin: the provider's own main embeds files generated at its build (schema-embed.json),
// which its module does not ship, so this main serves the provider with the schema and mapping the module does ship.
//
//embed-from-module: cmd/pulumi-resource-kubernetes/schema.json
//embed-from-module: cmd/pulumi-resource-kubernetes/terraform-mapping.json
package main

import (
	_ "embed"

	"github.com/pulumi/pulumi-kubernetes/provider/v4/pkg/provider"
	"github.com/pulumi/pulumi-kubernetes/provider/v4/pkg/version"
)

//go:embed schema.json
var pulumiSchema []byte

//go:embed terraform-mapping.json
var terraformMapping []byte

func main() {
	provider.Serve("kubernetes", version.Version, pulumiSchema, terraformMapping)
}
