package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/orderengine/engine/commands"
	"github.com/orderengine/engine/domain"
	"github.com/orderengine/engine/internal/enginetest"
	"github.com/orderengine/engine/internal/pglocal"
	"github.com/orderengine/engine/projections"
)

func TestRebuildCommand(t *testing.T) {
	t.Parallel()
	e := enginetest.Start(t, time.Hour)
	ns, app := e.NATS, e.App
	ctx := context.Background()
	if _, err := app.SetOnHand(ctx, commands.Meta{CommandID: app.NewID()}, "A1", commands.SetOnHand{OnHand: 4}); err != nil {
		t.Fatal(err)
	}
	out, err := app.PlaceOrder(ctx, commands.Meta{CommandID: app.NewID()}, commands.PlaceOrder{CustomerID: "c", Currency: "USD",
		Lines: []domain.Line{{SKU: "A1", Qty: 1, UnitPriceCents: 100}}})
	if err != nil {
		t.Fatal(err)
	}
	id := out.State.ID
	if _, err := app.CancelOrder(ctx, commands.Meta{CommandID: app.NewID()}, id, commands.CancelOrder{}); err != nil {
		t.Fatal(err)
	}
	dbURL := pglocal.ForTest(t)
	env := map[string]string{"NATS_URL": ns.ClientURL(), "DATABASE_URL": dbURL, "ENGINE_DATA_DIR": t.TempDir()}
	rebuild := func(args ...string) (string, string, error) {
		var stdout, stderr bytes.Buffer
		err := run(ctx, append([]string{"rebuild"}, args...), func(k string) string { return env[k] }, &stdout, &stderr)
		return stdout.String(), stderr.String(), err
	}

	t.Run("rebuilds the read models from the store", func(t *testing.T) {
		stdout, stderr, err := rebuild("main")
		if err != nil {
			t.Fatalf("rebuild: %v\n%s\n%s", err, stdout, stderr)
		}
		if !strings.Contains(stdout, "OK: projection main rebuilt from 3 events in ") {
			t.Errorf("stdout: %q", stdout)
		}
		if !strings.Contains(stderr, "rebuilding: 3/3 events (100%, ") || strings.Contains(stderr, "\r") || !strings.HasSuffix(stderr, "\n") {
			t.Errorf("stderr: %q", stderr)
		}
		conn, err := pgx.Connect(ctx, dbURL)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = conn.Close(ctx) }()
		var status string
		var cp int64
		err = conn.QueryRow(ctx, `SELECT o.status, c.last_seq FROM rm.orders o, rm.checkpoints c
WHERE o.order_id = $1 AND c.projection = 'main'`, id).Scan(&status, &cp)
		if err != nil || status != "cancelled" || cp == 0 {
			t.Errorf("rebuilt order: %q at checkpoint %d, %v", status, cp, err)
		}
	})
	t.Run("again, over the rebuilt read models", func(t *testing.T) {
		if stdout, stderr, err := rebuild("main"); err != nil {
			t.Fatalf("rebuild: %v\n%s\n%s", err, stdout, stderr)
		}
	})
	t.Run("an unknown projection", func(t *testing.T) {
		if _, _, err := rebuild("orders"); err == nil || !strings.Contains(err.Error(), `unknown projection "orders"`) {
			t.Errorf("rebuild orders: %v", err)
		}
	})
	t.Run("no projection named", func(t *testing.T) {
		if _, stderr, err := rebuild(); err == nil || !strings.Contains(stderr, "usage:") {
			t.Errorf("rebuild without a name: %v %q", err, stderr)
		}
	})
	t.Run("the usage names rebuild", func(t *testing.T) {
		var stdout bytes.Buffer
		if err := run(ctx, []string{"help"}, func(string) string { return "" }, &stdout, io.Discard); err != nil ||
			!strings.Contains(stdout.String(), "rebuild NAME") {
			t.Fatalf("help: %v %q", err, stdout.String())
		}
	})
}

func TestRebuildAndVerifyReadModelsOverHTTP(t *testing.T) {
	dbURL := pglocal.ForTest(t)
	base, _, _ := startEngine(t, map[string]string{
		"ENGINE_HTTP_ADDR":  "127.0.0.1:0",
		"ENGINE_DATA_DIR":   t.TempDir(),
		"DATABASE_URL":      dbURL,
		"ENGINE_API_TOKENS": "c:client,u:auditor,a:admin",
	})
	if code, body := call(t, "PUT", base+"/v1/inventory/RB", "a", `{"on_hand": 9}`); code != 200 {
		t.Fatalf("set on hand: %d %v", code, body)
	}
	if code, body := call(t, "POST", base+"/v1/orders", "c",
		`{"customer_id":"rb","currency":"USD","lines":[{"sku":"RB","qty":2,"unit_price_cents":300}]}`); code != http.StatusAccepted {
		t.Fatalf("place: %d %v", code, body)
	}
	path := base + "/v1/admin/projections/main/rebuild"

	// Another process's rebuild holds the lock: a 409.
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close(ctx) }()
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, int64(projections.RebuildLockKey)); err != nil {
		t.Fatal(err)
	}
	if code, body := call(t, "POST", path, "a", ""); code != http.StatusConflict || body["code"] != "rebuild_in_progress" {
		t.Errorf("rebuild while another runs: %d %v", code, body)
	}
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_unlock($1)`, int64(projections.RebuildLockKey)); err != nil {
		t.Fatal(err)
	}

	if code, body := call(t, "POST", base+"/v1/admin/projections/nope/rebuild", "a", ""); code != http.StatusNotFound {
		t.Errorf("rebuild of an unknown projection: %d %v", code, body)
	}
	if code, _ := call(t, "POST", path, "u", ""); code != http.StatusForbidden {
		t.Errorf("an auditor starts a rebuild: %d", code)
	}
	code, body := call(t, "POST", path, "a", "")
	if code != http.StatusAccepted || body["name"] != "main" || body["state"] != "rebuilding" {
		t.Fatalf("rebuild: %d %v", code, body)
	}
	var st map[string]any
	deadline := time.Now().Add(30 * time.Second)
	for {
		code, st = call(t, "GET", path, "a", "")
		if code != 200 || st["state"] != "rebuilding" || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if code != 200 || st["state"] != "rebuilt" || st["events_applied"] != st["events_total"] {
		t.Fatalf("rebuild status: %d %v", code, st)
	}

	req, _ := http.NewRequest("GET", base+"/v1/audit/verify/read-models", nil)
	req.Header.Set("Authorization", "Bearer u")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	var rep struct {
		OK          bool  `json:"ok"`
		Differences []any `json:"differences"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&rep); err != nil || resp.StatusCode != 200 || !rep.OK || rep.Differences == nil {
		t.Errorf("verify read models: %d %+v %v", resp.StatusCode, rep, err)
	}
	if code, _ := call(t, "GET", base+"/v1/audit/verify/read-models", "c", ""); code != http.StatusForbidden {
		t.Errorf("a client verifies the read models: %d", code)
	}
}
