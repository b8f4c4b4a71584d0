// Package automation is the clawdeploy driver: it runs a target's deployment program
// (infra.Program for ec2-spot, infra.VPSProgram for vps) inline through the Pulumi Automation
// API, so the operator's shell, a provisioning backend and CI all execute the same code against
// the same state, and it keeps a journal of every deployment so that whatever a dead process
// left half done is continued, never done twice.
//
// The driver needs the Pulumi CLI (`make tools` builds the pinned version into ./bin) but no
// language plugin: the program runs in the driver's own process.
//
// The files, top-down (docs/architecture.md draws the flows):
//
//	driver.go       Options, New, the Driver
//	target.go       the target profiles: everything that differs between targets
//	ec2spot.go      the ec2-spot target: stages, setup wait on SSM, relaunch, user-data
//	ec2spot_finder.go  AWSFinder: interrupted creations looked up in AWS
//	vps.go          the vps target: stages, finder, setup wait over SSH, relaunch, the order of
//	                an ordered VPS (package ordering) before the engine and its release on destroy
//	operations.go   Up, Preview, Destroy, Refresh, Outputs, Status, Cancel, UserData
//	resume.go       Resume and ResumeAll
//	worker.go       Work (clawdeploy worker): takeovers, queued requests, the stale sweep; Enqueue
//	heal.go         Heal and HealAll: a host taken away, brought back
//	backup.go       VerifyBackup: the stack's newest backup proven to restore
//	checkpoint.go   upgrades that can be undone: the pre-upgrade checkpoint, --rollback
//	changes.go      a preview summed up for reviewers: counts, risks, ignored configuration
//	comment.go      that summary as a pull-request comment
//	lease.go        step 1: the deployment's lease, its heartbeat and the journal's writes
//	recovery.go     steps 2 and 3: leftovers, dead locks, torn state files, pending creates
//	config.go       configuration: keys, validation before anything is touched, stack files
//	workspace.go    the project, the state backend and the stacks' work directories
//	cli.go          the Pulumi CLI, its version checked once per binary
//	process.go      a driver's identity and the processes that work for it
//	locks.go        the backend's locks: read, judged by recovery.go, removed
//	stages.go       stages and the tracker that records them
//	waiter.go       the setup wait's polling, shared by the targets' waiters
//	finder.go       the Finder interface
//	events.go       the NDJSON and human event streams
//	errors.go       typed errors and the exit codes they map to
package automation
