package eventstore_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/errors"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/orderengine/engine/eventstore"
	"github.com/orderengine/engine/internal/testnats"
)

// fireTimers stores n fired expiry timers, expire.<prefix>-<i>, as the
// server's scheduler does when their time comes.
func fireTimers(t *testing.T, s *eventstore.Store, prefix string, n int) {
	t.Helper()
	for i := range n {
		_, subject := locate(s, fmt.Sprintf("%s.%s-%d", eventstore.ExpirySubjects, prefix, i))
		if _, err := s.Conn().Request(subject, []byte("x"), 5*time.Second); err != nil {
			t.Fatalf("fire a timer: %v", err)
		}
	}
}

// consumeExpiries runs ConsumeExpiries on s until the test ends or stop is
// called.
func consumeExpiries(t *testing.T, s *eventstore.Store, handle func(context.Context, string) (time.Duration, error)) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.ConsumeExpiries(ctx, slog.New(slog.NewTextHandler(io.Discard, nil)), handle) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("ConsumeExpiries: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// TestExpiriesAreHandledManyAtOnce: fired timers are handled concurrently,
// so that their appends share the group committer's fsyncs. Handled one
// by one, the expiry worker runs at one fsync per order and falls behind a
// flash sale's grants. Every handler here waits until 64 of them are
// running at once; handled serially, the first never returns.
func TestExpiriesAreHandledManyAtOnce(t *testing.T) {
	_, nc := testnats.Start(t)
	s := openStore(t, nc)
	const n = 64
	fireTimers(t, s, "many", n)
	var (
		mu      sync.Mutex
		running int
		handled = map[string]bool{}
		all     = make(chan struct{})
	)
	consumeExpiries(t, s, func(ctx context.Context, id string) (time.Duration, error) {
		mu.Lock()
		if running++; running == n {
			close(all)
		}
		mu.Unlock()
		select {
		case <-all:
		case <-ctx.Done():
			return 0, ctx.Err()
		}
		mu.Lock()
		handled[id] = true
		mu.Unlock()
		return 0, nil
	})
	select {
	case <-all:
	case <-time.After(30 * time.Second):
		mu.Lock()
		defer mu.Unlock()
		t.Fatalf("at most %d of %d fired timers were handled at once", running, n)
	}
	waitFor(t, "every timer acknowledged", func() bool {
		b, _, err := s.ExpiryBacklog(context.Background())
		return err == nil && b == 0
	})
	mu.Lock()
	defer mu.Unlock()
	if len(handled) != n {
		t.Errorf("%d distinct orders handled, want %d", len(handled), n)
	}
}

// TestExpiriesHandOverWithinFiveSeconds: an instance still handling its
// fired timers keeps them (in-progress acknowledgements, however long it
// takes), and when it dies another instance gets them within 5 s.
func TestExpiriesHandOverWithinFiveSeconds(t *testing.T) {
	ns, nc := testnats.Start(t)
	victimConn := testnats.Connect(t, ns)
	victim := openStore(t, victimConn)
	got := make(chan struct{}, 8)
	consumeExpiries(t, victim, func(ctx context.Context, _ string) (time.Duration, error) {
		got <- struct{}{}
		<-ctx.Done() // stuck until its connection is gone
		return 0, ctx.Err()
	})
	const n = 4
	fireTimers(t, victim, "handover", n)
	for range n {
		select {
		case <-got:
		case <-time.After(10 * time.Second):
			t.Fatal("the first instance was not handed the fired timers")
		}
	}

	survivor := openStore(t, nc)
	var mu sync.Mutex
	handled := map[string]time.Time{}
	consumeExpiries(t, survivor, func(_ context.Context, id string) (time.Duration, error) {
		mu.Lock()
		defer mu.Unlock()
		handled[id] = time.Now()
		return 0, nil
	})
	// Longer than the AckWait: a live instance keeps what it works on.
	time.Sleep(8 * time.Second)
	mu.Lock()
	early := len(handled)
	mu.Unlock()
	if early > 0 {
		t.Fatalf("%d timers went to a second instance while the first was still handling them", early)
	}

	victimConn.Close()
	died := time.Now()
	waitFor(t, "the survivor handled every timer", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(handled) == n
	})
	mu.Lock()
	defer mu.Unlock()
	for id, at := range handled {
		// Five seconds is the bound; a busy machine gets one more.
		if took := at.Sub(died); took > 6*time.Second {
			t.Errorf("%s handed over %s after the instance died, want within 5 s", id, took.Round(time.Millisecond))
		}
	}
}

// waitFor polls cond every 20 ms for up to 20 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for: %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestHandledExpiryTimersLeaveTheStream: a fired timer, once handled, is
// removed, so a long sale does not leave an expire.<order_id> subject per
// order in the stream (and in nats-server's memory); one to retry stays.
func TestHandledExpiryTimersLeaveTheStream(t *testing.T) {
	_, nc := testnats.Start(t)
	s := openStore(t, nc)
	fireTimers(t, s, "done", 10)
	fireTimers(t, s, "failing", 1)
	consumeExpiries(t, s, func(_ context.Context, id string) (time.Duration, error) {
		if id == "failing-0" {
			return 0, errors.New("the store is down")
		}
		return 0, nil
	})
	_, failing := locate(s, eventstore.ExpirySubjects+".failing-0")
	waitFor(t, "only the failing timer is left", func() bool {
		left := subjectCounts(t, nc, s, eventstore.ExpirySubjects+".*")
		return len(left) == 1 && left[failing] == 1
	})
}

// TestTimersFireWhenDue: a timer stored for later is handed over when its
// due time comes, not before and not much after; timers stored in due
// order wait only for their own due.
func TestTimersFireWhenDue(t *testing.T) {
	_, nc := testnats.Start(t)
	s := openStore(t, nc)
	start := time.Now()
	dues := map[string]time.Time{}
	for i, after := range []time.Duration{-time.Second, 0, 1500 * time.Millisecond, 3 * time.Second, 3 * time.Second} {
		id := fmt.Sprintf("due-%d", i)
		dues[id] = start.Add(after)
		_, subject := locate(s, eventstore.TimerSubjects+"."+id)
		m := nats.NewMsg(subject)
		m.Header.Set("Engine-Due", dues[id].UTC().Format(time.RFC3339Nano))
		if _, err := nc.RequestMsg(m, 5*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	var mu sync.Mutex
	handled := map[string]time.Time{}
	consumeExpiries(t, s, func(_ context.Context, id string) (time.Duration, error) {
		mu.Lock()
		defer mu.Unlock()
		handled[id] = time.Now()
		return 0, nil
	})
	waitFor(t, "every timer handled", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(handled) == len(dues)
	})
	mu.Lock()
	defer mu.Unlock()
	for id, at := range handled {
		// A timer already due when the worker starts is due at its start;
		// a generous second for a busy machine.
		if late := at.Sub(dues[id]); late < 0 || at.Sub(later(dues[id], start)) > time.Second {
			t.Errorf("%s handled %s after its due, want within [0, 1s]", id, late.Round(time.Millisecond))
		}
	}
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// TestConfirmationsExpireFromTheirOwnMessage: a confirmation carries its
// expiry due in its message's Engine-Due header, so no timer message is
// stored for it; the worker hands over each one when due and passes over
// the order events without a due, and still fires the timers that earlier
// versions stored.
func TestConfirmationsExpireFromTheirOwnMessage(t *testing.T) {
	_, nc := testnats.Start(t)
	s := openStore(t, nc)
	start := time.Now()
	dues := map[string]time.Time{}
	publish := func(subject string, due time.Time) {
		t.Helper()
		_, stored := locate(s, subject)
		m := nats.NewMsg(stored)
		m.Data = []byte(`{}`)
		if !due.IsZero() {
			m.Header.Set("Engine-Due", due.UTC().Format(time.RFC3339Nano))
		}
		if _, err := nc.RequestMsg(m, 5*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	for i, after := range []time.Duration{0, 1500 * time.Millisecond, 2 * time.Second} {
		id := fmt.Sprintf("order-%d", i)
		dues[id] = start.Add(after)
		publish(eventstore.OrderSubjects+"."+id, time.Time{}) // placed: no due
		publish(eventstore.OrderSubjects+"."+id, dues[id])    // confirmed
		publish(eventstore.OrderSubjects+"."+id, time.Time{}) // paid, say
	}
	dues["legacy-0"] = start.Add(time.Second)
	publish(eventstore.TimerSubjects+".legacy-0", dues["legacy-0"])
	var mu sync.Mutex
	handled := map[string][]time.Time{}
	consumeExpiries(t, s, func(_ context.Context, id string) (time.Duration, error) {
		mu.Lock()
		defer mu.Unlock()
		handled[id] = append(handled[id], time.Now())
		return 0, nil
	})
	waitFor(t, "every due handled", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(handled) == len(dues)
	})
	time.Sleep(500 * time.Millisecond) // room for a wrong second hand-over
	mu.Lock()
	defer mu.Unlock()
	for id, at := range handled {
		due, ok := dues[id]
		if !ok || len(at) != 1 {
			t.Errorf("%s handed over %d times, want once (due: %v)", id, len(at), ok)
			continue
		}
		if late := at[0].Sub(due); late < 0 || at[0].Sub(later(due, start)) > time.Second {
			t.Errorf("%s handled %s after its due, want within [0, 1s]", id, late.Round(time.Millisecond))
		}
	}
	var n uint64
	for _, c := range subjectCounts(t, nc, s, eventstore.OrderSubjects+".*") {
		n += c
	}
	if n != 9 {
		t.Errorf("the order subjects hold %d messages after expiry, want the 9 events untouched", n)
	}
}

// subjectCounts returns how many messages each stored subject matching the
// logical filter holds, over every shard of s.
func subjectCounts(t *testing.T, nc *nats.Conn, s *eventstore.Store, logical string) map[string]uint64 {
	t.Helper()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	counts := map[string]uint64{}
	for k := range s.Shards() {
		name, filter := s.Locate(k, logical)
		stream, err := js.Stream(context.Background(), name)
		if err != nil {
			t.Fatal(err)
		}
		info, err := stream.Info(context.Background(), jetstream.WithSubjectFilter(filter))
		if err != nil {
			t.Fatal(err)
		}
		maps.Copy(counts, info.State.Subjects)
	}
	return counts
}

// TestExpiryLateSaysHowFarTheWorkerRunsBehind: a confirmation handed over
// three seconds after its due (the worker started late) makes ExpiryLate
// about three seconds; a worker with nothing due starts nothing, and two
// seconds after its last start it is not late any more.
func TestExpiryLateSaysHowFarTheWorkerRunsBehind(t *testing.T) {
	_, nc := testnats.Start(t)
	s := openStore(t, nc)
	if late := s.ExpiryLate(); late != 0 {
		t.Fatalf("ExpiryLate before any expiry: %s, want 0", late)
	}
	_, stored := locate(s, eventstore.OrderSubjects+".late-1")
	m := nats.NewMsg(stored)
	m.Data = []byte(`{}`)
	m.Header.Set("Engine-Due", time.Now().Add(-3*time.Second).UTC().Format(time.RFC3339Nano))
	if _, err := nc.RequestMsg(m, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	handled := make(chan struct{}, 1)
	consumeExpiries(t, s, func(context.Context, string) (time.Duration, error) {
		handled <- struct{}{}
		return 0, nil
	})
	select {
	case <-handled:
	case <-time.After(30 * time.Second):
		t.Fatal("the confirmation was not handed over")
	}
	if late := s.ExpiryLate(); late < 3*time.Second || late > 30*time.Second {
		t.Errorf("ExpiryLate after a start three seconds past the due: %s", late)
	}
	waitFor(t, "ExpiryLate back to 0 once nothing starts", func() bool { return s.ExpiryLate() == 0 })
}
