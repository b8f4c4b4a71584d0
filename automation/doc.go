// Package automation is the clawdeploy driver: it runs the deployment program (infra.Program by
// default) inline through the Pulumi Automation API, so the operator's shell, a provisioning
// backend and CI all execute the same code against the same state.
//
// The driver needs the Pulumi CLI (`make tools` builds the pinned version into ./bin) but no
// language plugin: the program runs in the driver's own process.
package automation
