// Package infra is the clawdeploy Pulumi program: it loads and validates the stack's Config before
// any resource exists, then wires the components of the deployment target and exports the outputs
// operators and the driver read.
//
// The same Program runs under `pulumi up` (cmd/infra) and inline under the Automation API driver
// (package automation), so both paths execute identical code.
package infra
