// Package cloudinit renders the user-data of an ec2-spot instance: a cloud-config that installs
// the packages, writes the settings file, the scripts and the systemd units that keep OpenClaw's
// data safe, and launches the setup script of the protocol (package setup).
//
// Templates hold data only: the user-data and the KEY=VALUE settings file. The scripts and units
// in files/ are static, so shellcheck and systemd-analyze check them exactly as they run; they
// read the settings file. Render is pure and validates its Args first.
//
// On the instance:
//
//	/etc/openclaw/openclaw.env                 settings (no secrets)
//	/usr/local/libexec/openclaw/*.sh           the scripts
//	/etc/systemd/system/openclaw*.{service,timer}
//	/opt/openclaw                              the data volume: .openclaw/, workspace/,
//	                                           docker-compose.yaml, auto-approve-devices.sh
//	/run/openclaw/.env                         secrets from SSM, tmpfs, 0600
package cloudinit
