// Command engine is the order engine: `engine serve` runs it (see README.md).
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/cockroachdb/errors"
)

func main() {
	tuneGC(os.Getenv)
	if err := run(context.Background(), os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintf(os.Stderr, "engine: %v\n", err)
		// The hints say what to do about it, which is what a user needs.
		for _, h := range errors.GetAllHints(err) {
			fmt.Fprintf(os.Stderr, "hint: %s\n", h)
		}
		os.Exit(1)
	}
}
