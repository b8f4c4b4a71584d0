// Package enginetest sets up engine-level tests: the Pulumi CLI that `make tools` built into
// ./bin, a project in a temporary directory and a file backend in another, so nothing a test does
// reaches the operator's own state.
package enginetest
