package main

import (
	"os"
	"testing"

	"github.com/orderengine/engine/internal/pglocal"
)

// TestMain stops the private Postgres the tests share.
func TestMain(m *testing.M) { os.Exit(pglocal.Main(m)) }
