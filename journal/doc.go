// Package journal records each deployment the driver manages: its status and last completed
// stage, its attempts and last error, and the lease that says which process holds it.
//
// Journal is the interface; SQL implements it on database/sql. The embedded default
// (OpenSQLite) is a SQLite file under the driver's state directory, chosen because SQLite in WAL
// mode gives atomic, crash-safe transactions in one file that several driver processes can share
// (they wait on each other through the busy timeout), with a pure-Go driver (modernc.org/sqlite),
// so the binary stays static. Backend replicas that must share one journal use NewSQL with a
// PostgreSQL database and the Postgres dialect: the statements are the same.
package journal
