//go:build tools

// Package tools pins the command-line tools the project builds from source.
package tools

import (
	_ "github.com/pulumi/pulumi/pkg/v3/cmd/pulumi"
)
