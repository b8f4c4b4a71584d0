// Package backup proves that an instance's backup restores: it downloads an archive the
// instance's openclaw-backup.sh uploaded, checks it against the SHA-256 the backup recorded and
// every file against the manifest inside it, unpacks it into a scratch directory as the boot
// restore would, and runs SQLite's integrity check on every database in it.
package backup
