package main

import (
	"context"
	"fmt"
	"os"
	"testing"

	"github.com/orderengine/engine/internal/pglocal"
)

// TestMain stops the private Postgres the tests share. With
// ENGINE_TEST_RUN_MAIN=1 the test binary is the engine itself (args after
// "--"), so benchmarks can measure a real engine process.
func TestMain(m *testing.M) {
	if os.Getenv("ENGINE_TEST_RUN_MAIN") == "1" {
		args := os.Args[1:]
		for i, a := range args {
			if a == "--" {
				args = args[i+1:]
				break
			}
		}
		if err := run(context.Background(), args, os.Getenv, os.Stdout, os.Stderr); err != nil {
			fmt.Fprintf(os.Stderr, "engine: %v\n", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(pglocal.Main(m))
}
