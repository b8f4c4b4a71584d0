// Package components holds the AWS side of an ec2-spot deployment as Pulumi ComponentResources,
// one per concern, each usable on its own: Network, Secrets, BackupBucket, Monitoring,
// InstanceRole, DataVolume, SpotInstance and SnapshotPolicy.
//
// Every AWS resource they create is tagged with the stack (OpenClawStack) and with its own URN
// (clawdeploy:urn): that is its deterministic identity, by which a resource whose creation was
// interrupted is found again. Children are named from the component's name.
//
// The data volume is the one thing that must never be lost. An `up` cannot replace it (the
// properties that would force a replacement are ignored after creation, and a zone change fails
// the preview); only `destroy` deletes it, and then only after a final snapshot. It is never
// detached from a running instance: the attachment's deletion leaves the volume attached, and
// the volume comes free when the instance terminates and its OS has unmounted it.
package components
