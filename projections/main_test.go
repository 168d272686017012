package projections

import (
	"os"
	"testing"

	"github.com/orderengine/engine/internal/pglocal"
)

// TestMain stops the private Postgres the tests start.
func TestMain(m *testing.M) { os.Exit(pglocal.Main(m)) }
