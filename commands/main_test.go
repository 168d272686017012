package commands_test

import (
	"os"
	"testing"

	"github.com/orderengine/engine/internal/pglocal"
)

// TestMain stops the private Postgres that the baseline benchmarks start.
func TestMain(m *testing.M) { os.Exit(pglocal.Main(m)) }
