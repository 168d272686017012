package eventstore

import (
	"fmt"
	"testing"

	"github.com/nats-io/nats.go"
)

func queuedPending(subject string, n int, settle bool) *pending {
	msgs := make([]*nats.Msg, n)
	for i := range msgs {
		msgs[i] = nats.NewMsg(subject)
	}
	return &pending{subject: subject, msgs: msgs, settle: settle}
}

// TestSettlingWorkIsCommittedFirst: with more commands waiting than one
// batch holds, the work that settles admitted orders (grants, outcomes,
// releases) goes into the next batch ahead of commands queued before it,
// so under overload it is the admissions that wait.
func TestSettlingWorkIsCommittedFirst(t *testing.T) {
	c := &committer{in: make(chan *pending, 16), settle: make(chan *pending, 16), maxBatch: maxBatchMsgs}
	for i := range 3 {
		c.in <- queuedPending(fmt.Sprintf("orders.new-%d", i), 400, false)
	}
	c.settle <- queuedPending("inventory.HOT", 400, true)
	first, ok := c.queued()
	if !ok {
		t.Fatal("nothing queued")
	}
	group, rest := c.gather(first, nil)
	var got []string
	for _, p := range group {
		got = append(got, p.subject)
	}
	if len(group) != 2 || group[0].subject != "inventory.HOT" {
		t.Errorf("next batch %v, want the settling append first and one admission", got)
	}
	if len(rest)+len(c.in) != 2 {
		t.Errorf("%d admissions left waiting, want 2", len(rest)+len(c.in))
	}
}
