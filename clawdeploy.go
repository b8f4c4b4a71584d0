// Package clawdeploy carries the project definition, Pulumi.yaml, inside the binary, so that a
// provisioning backend runs the driver without a checkout of this repository.
package clawdeploy

import _ "embed" // Pulumi.yaml

// Project is the Pulumi project's name, the one Pulumi.yaml declares: it namespaces the config
// keys (openclaw:availability_zone) and is part of every URN and of the backend's paths.
const Project = "openclaw"

// ProjectYAML is Pulumi.yaml: the project's name, runtime and typed config block.
//
//go:embed Pulumi.yaml
var ProjectYAML []byte
