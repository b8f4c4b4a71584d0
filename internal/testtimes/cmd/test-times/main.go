// Command test-times prints where a `go test -json` run's time went: each package's wall time,
// the slowest tests and subtests, and the counts. It reads the files named, or standard input.
//
//	go test -json ./... > tmp/test.json; go run ./internal/testtimes/cmd/test-times -n 20 tmp/test.json
package main

import (
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/clawdeploy/clawdeploy/internal/testtimes"
)

func main() {
	n := flag.Int("n", 20, "how many of the slowest tests and subtests to print")
	flag.Parse()
	if err := run(*n, flag.Args()); err != nil {
		fmt.Fprintf(os.Stderr, "test-times: %v\n", err)
		os.Exit(1)
	}
}

func run(n int, files []string) error {
	var in io.Reader = os.Stdin
	if len(files) > 0 {
		var readers []io.Reader
		for _, name := range files {
			f, err := os.Open(name)
			if err != nil {
				return err
			}
			defer func() { _ = f.Close() }()
			readers = append(readers, f)
		}
		in = io.MultiReader(readers...)
	}
	rep, err := testtimes.Read(in)
	if err != nil {
		return err
	}
	return rep.Write(os.Stdout, n)
}
