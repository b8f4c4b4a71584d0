// Package setup is the setup-script protocol shared by every target: the script itself
// (openclaw-setup.sh), the one-session command that launches it detached on a host, the one-exec
// command that polls it, and the parser of the poll's answer.
//
// The launch and poll commands are pure functions of their arguments, so the strings tests check
// are the strings that run, over SSH on a VPS and from cloud-init on EC2.
package setup
