package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/orderengine/engine/commands"
	"github.com/orderengine/engine/domain"
	"github.com/orderengine/engine/eventstore"
	"github.com/orderengine/engine/internal/enginetest"
	"github.com/orderengine/engine/internal/pglocal"
	"github.com/orderengine/engine/internal/testnats"
)

func TestVerifyCommand(t *testing.T) {
	t.Parallel()
	e := enginetest.Start(t, time.Hour)
	ns, store, app := e.NATS, e.Store, e.App
	ctx := context.Background()
	out, err := app.PlaceOrder(ctx, commands.Meta{CommandID: app.NewID()}, commands.PlaceOrder{CustomerID: "c", Currency: "USD",
		Lines: []domain.Line{{SKU: "A1", Qty: 1, UnitPriceCents: 100}}})
	if err != nil {
		t.Fatal(err)
	}
	id := out.State.ID
	if _, err := app.CancelOrder(ctx, commands.Meta{CommandID: app.NewID()}, id, commands.CancelOrder{}); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"NATS_URL": ns.ClientURL()}
	verify := func() (string, string, error) {
		var stdout, stderr bytes.Buffer
		err := run(ctx, []string{"verify"}, func(k string) string { return env[k] }, &stdout, &stderr)
		return stdout.String(), stderr.String(), err
	}

	t.Run("a clean store", func(t *testing.T) {
		stdout, stderr, err := verify()
		if err != nil {
			t.Fatalf("verify: %v\n%s", err, stdout)
		}
		if !strings.Contains(stdout, "OK: 2 events of 1 aggregates") {
			t.Errorf("stdout: %q", stdout)
		}
		if !strings.Contains(stderr, "verifying: 2 events checked (") || !strings.HasSuffix(stderr, "\n") {
			t.Errorf("stderr: %q", stderr)
		}
	})

	t.Run("a forged event", func(t *testing.T) {
		subject := eventstore.OrderSubjects + "." + id
		forged := eventstore.Envelope{Type: "OrderPaid", SchemaVersion: 1, AggregateType: "order", AggregateID: id,
			Version: 3, OccurredAt: time.Now(), Data: []byte(`{"amount_cents":1,"payment_ref":"x","at":"2026-01-01T00:00:00Z"}`),
			PrevHash: strings.Repeat("0", 64), Hash: strings.Repeat("f", 64)}
		body, err := json.Marshal(forged)
		if err != nil {
			t.Fatal(err)
		}
		js, err := jetstream.New(store.Conn())
		if err != nil {
			t.Fatal(err)
		}
		_, stored := store.Locate(store.ShardOf(id), subject)
		ack, err := js.Publish(ctx, stored, body)
		if err != nil {
			t.Fatal(err)
		}
		stdout, _, err := verify()
		if err == nil {
			t.Fatalf("verify of a tampered store succeeded:\n%s", stdout)
		}
		want := fmt.Sprintf("forged       %s seq %d version 3 (expected 3): ", subject, ack.Sequence)
		if !strings.Contains(stdout, "BROKEN: 1 problem(s) in 3 events of 1 aggregates") || !strings.Contains(stdout, want) {
			t.Fatalf("stdout %q lacks %q", stdout, want)
		}
	})

	t.Run("an empty embedded store", func(t *testing.T) {
		var stdout, stderr bytes.Buffer
		dir := t.TempDir()
		getenv := func(k string) string { return map[string]string{"ENGINE_DATA_DIR": dir}[k] }
		if err := run(ctx, []string{"verify"}, getenv, &stdout, &stderr); err != nil {
			t.Fatalf("verify: %v", err)
		}
		if !strings.Contains(stdout.String(), "OK: 0 events of 0 aggregates") {
			t.Fatalf("stdout: %q", stdout.String())
		}
	})

	t.Run("the usage names verify", func(t *testing.T) {
		var stdout bytes.Buffer
		if err := run(ctx, []string{"help"}, func(string) string { return "" }, &stdout, io.Discard); err != nil ||
			!strings.Contains(stdout.String(), "verify") {
			t.Fatalf("help: %v %q", err, stdout.String())
		}
	})
}

func TestVerifyCommandComparesTheReadModels(t *testing.T) {
	ns, _ := testnats.Start(t)
	dbURL := pglocal.ForTest(t)
	env := map[string]string{
		"ENGINE_HTTP_ADDR": "127.0.0.1:0", "ENGINE_DATA_DIR": t.TempDir(), "ENGINE_API_TOKENS": "a:admin",
		"NATS_URL": ns.ClientURL(), "DATABASE_URL": dbURL,
	}
	base, _, stop := startEngine(t, env)
	req, _ := http.NewRequest("PUT", base+"/v1/inventory/VER", strings.NewReader(`{"on_hand": 3}`))
	req.Header.Set("Authorization", "Bearer a")
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	req, _ = http.NewRequest("GET", base+"/v1/inventory/VER", nil)
	req.Header.Set("Authorization", "Bearer a")
	req.Header.Set("Consistency-Token", resp.Header.Get("Consistency-Token"))
	if resp, err = http.DefaultClient.Do(req); err != nil || resp.StatusCode != 200 {
		t.Fatalf("read model not caught up: %v %v", resp, err)
	}
	_ = resp.Body.Close()
	if err := stop(); err != nil {
		t.Fatal(err)
	}

	verify := func() (string, error) {
		var stdout, stderr syncBuffer
		err := run(context.Background(), []string{"verify"}, func(k string) string { return env[k] }, &stdout, &stderr)
		return stdout.String(), err
	}
	if out, err := verify(); err != nil || !strings.Contains(out, "read models equal a fresh replay") {
		t.Fatalf("verify of an untouched engine: %v\n%s", err, out)
	}
	conn, err := pgx.Connect(context.Background(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close(context.Background()) }()
	if _, err := conn.Exec(context.Background(), `UPDATE rm.inventory SET reserved = 1 WHERE sku = 'VER'`); err != nil {
		t.Fatal(err)
	}
	if out, err := verify(); err == nil || !strings.Contains(out, "inventory") {
		t.Errorf("verify after a read-model row was changed: %v\n%s", err, out)
	}
}
