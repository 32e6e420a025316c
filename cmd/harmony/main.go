// Command harmony bootstraps a local Kubernetes runtime and launches a repository's manifests.
package main

import (
	"os"

	"github.com/NationTech/harmony-agent/internal/cli"
	"github.com/NationTech/harmony-agent/internal/initgc"
)

func main() {
	initgc.Done()
	os.Exit(cli.Main())
}
