// Package clawdeploy carries the project definition, Pulumi.yaml, inside the binary, so that a
// provisioning backend runs the driver without a checkout of this repository.
package clawdeploy

import _ "embed" // Pulumi.yaml

// ProjectYAML is Pulumi.yaml: the project's name, runtime and typed config block.
//
//go:embed Pulumi.yaml
var ProjectYAML []byte

// VPSProjectYAML is vps/Pulumi.yaml: the vps target's project definition and typed config block.
//
//go:embed vps/Pulumi.yaml
var VPSProjectYAML []byte
