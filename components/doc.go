// Package components holds both targets' resources as Pulumi ComponentResources, one per
// concern, each usable on its own.
//
// ec2-spot: Network, Secrets, BackupBucket, Monitoring, InstanceRole, DataVolume, SpotInstance
// and SnapshotPolicy. Every AWS resource they create is tagged with the stack (OpenClawStack) and
// with its own URN (clawdeploy:urn): that is its deterministic identity, by which a resource
// whose creation was interrupted is found again. The data volume is the one thing that must
// never be lost. An `up` cannot replace it (the properties that would force a replacement are
// ignored after creation, and a zone change fails the preview); only `destroy` deletes it, and
// then only after a final snapshot. It is never detached from a running instance: the
// attachment's deletion leaves the volume attached, and the volume comes free when the instance
// terminates and its OS has unmounted it.
//
// vps: SSHKey (the deployment's own key pair), SSHAccess (its authorization on the host, with
// the operator's credential), VPSSetup (the detached launch of the setup script) and
// OpenRouterKey (an OpenRouter API key of the deployment's own). They run commands on the host
// and where clawdeploy runs (pulumi-command), each idempotent, so that an interrupted creation
// can always be created again.
//
// GatewayToken (both targets) makes the gateway's token when none is configured.
//
// Children are named from the component's name, and type tokens are
// clawdeploy:<module>:<Type>; the Type* constants name them, and the driver maps them to stages.
package components
