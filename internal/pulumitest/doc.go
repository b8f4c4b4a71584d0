// Package pulumitest runs Pulumi programs and components under pulumi.WithMocks for unit tests.
//
// Run injects config (plain and secret) straight into the run, records every registered resource
// with its full registration request (parent, options, secret inputs), and answers data-source
// calls from a table: an invocation without an answer fails the program, so no test passes on a
// default nobody chose.
package pulumitest
