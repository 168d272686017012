package domain

import (
	"reflect"
	"testing"
	"time"

	"github.com/cockroachdb/errors"
)

// The reservation TTL runs from the grant of the order's stock, not from
// the moment the order learned of it: an outcome delayed by a hand-over
// must not hold the unit longer.

func TestDecideRecordReservationCarriesTheGrantTime(t *testing.T) {
	t.Parallel()
	now := at(time.Minute)
	granted := at(10 * time.Second)
	one := placedWith(Line{SKU: "apple", Qty: 2, UnitPriceCents: 150})
	tests := []struct {
		name  string
		given []OrderEvent
		when  RecordReservation
		then  []OrderEvent
	}{
		{
			name: "the grant time is recorded with the line", given: []OrderEvent{one},
			when: RecordReservation{SKU: "apple", Granted: true, GrantedAt: granted, At: now},
			then: []OrderEvent{OrderConfirmed{SKU: "apple", GrantedAt: granted, At: now}},
		},
		{
			name: "the grant time is normalised to UTC", given: []OrderEvent{one},
			when: RecordReservation{SKU: "apple", Granted: true, GrantedAt: granted.In(time.FixedZone("X", 7200)), At: now},
			then: []OrderEvent{OrderConfirmed{SKU: "apple", GrantedAt: granted, At: now}},
		},
		{
			name: "an outcome without a grant time records none", given: []OrderEvent{one},
			when: RecordReservation{SKU: "apple", Granted: true, At: now},
			then: []OrderEvent{OrderConfirmed{SKU: "apple", At: now}},
		},
		{
			name: "a refusal ignores a grant time", given: []OrderEvent{one},
			when: RecordReservation{SKU: "apple", GrantedAt: granted, Available: 1, At: now},
			then: []OrderEvent{
				OrderRejected{Reason: "insufficient stock", ShortSKUs: []string{"apple"}, Available: ptr(int64(1)), At: now},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			events, err := DecideOrder(foldOrder(t, tt.given), tt.when)
			checkErr(t, err, nil)
			if !reflect.DeepEqual(events, tt.then) {
				t.Fatalf("events = %#v\nwant     %#v", events, tt.then)
			}
		})
	}
}

func TestExpiryRunsFromTheEarliestGrant(t *testing.T) {
	t.Parallel()
	placed := placedEvent() // apple and pear-1
	confirmedAt := at(time.Minute)
	reserved := func(sku string, granted time.Duration) LineReserved {
		return LineReserved{SKU: sku, GrantedAt: at(granted), At: confirmedAt}
	}
	tests := []struct {
		name string
		// given brings the order to confirmed at confirmedAt.
		given []OrderEvent
		due   time.Time
	}{
		{
			name:  "one line: its grant",
			given: []OrderEvent{placedWith(Line{SKU: "apple", Qty: 1}), reserved("apple", 5*time.Second), OrderConfirmed{At: confirmedAt}},
			due:   at(5*time.Second + testTTL),
		},
		{
			name:  "two lines: the earlier grant, whichever was recorded first",
			given: []OrderEvent{placed, reserved("apple", 30*time.Second), reserved("pear-1", 20*time.Second), OrderConfirmed{At: confirmedAt}},
			due:   at(20*time.Second + testTTL),
		},
		{
			name:  "events stored without a grant time: the confirmation",
			given: []OrderEvent{placed, LineReserved{SKU: "apple", At: at(50 * time.Second)}, LineReserved{SKU: "pear-1", At: confirmedAt}, OrderConfirmed{At: confirmedAt}},
			due:   confirmedAt.Add(testTTL),
		},
		{
			name:  "a confirmation with no line events (older engines): the confirmation",
			given: historyFor(StatusConfirmed),
			due:   confirmedAt.Add(testTTL),
		},
		{
			name:  "one line without a grant time: the grant that is known",
			given: []OrderEvent{placed, LineReserved{SKU: "apple", At: at(50 * time.Second)}, reserved("pear-1", 40*time.Second), OrderConfirmed{At: confirmedAt}},
			due:   at(40*time.Second + testTTL),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := foldOrder(t, tt.given)
			if got := s.ExpiryDue(testTTL); !got.Equal(tt.due) {
				t.Fatalf("ExpiryDue = %s, want %s", got, tt.due)
			}
			if _, err := DecideOrder(s, ExpireOrder{TTL: testTTL, At: tt.due.Add(-1)}); !isInvalidTransition(err) {
				t.Fatalf("expire a nanosecond before %s: %v, want an invalid transition", tt.due, err)
			}
			events, err := DecideOrder(s, ExpireOrder{TTL: testTTL, At: tt.due})
			checkErr(t, err, nil)
			if want := []OrderEvent{OrderExpired{At: tt.due}}; !reflect.DeepEqual(events, want) {
				t.Fatalf("events = %#v, want %#v", events, want)
			}
		})
	}
}

func TestOrderExpiryDueIsZeroUntilConfirmed(t *testing.T) {
	t.Parallel()
	s := foldOrder(t, []OrderEvent{placedEvent(), LineReserved{SKU: "apple", GrantedAt: at(time.Second), At: at(time.Second)}})
	if got := s.ExpiryDue(testTTL); !got.IsZero() {
		t.Fatalf("pending order due at %s, want zero", got)
	}
}

func TestLineReservedWithoutGrantTimeDecodes(t *testing.T) {
	t.Parallel()
	// As stored before the grant time existed (schema version 1 either way:
	// the field is optional).
	ev, err := DecodeOrderEvent("LineReserved", 1, []byte(`{"sku":"apple","at":"2025-03-14T09:26:53Z"}`))
	checkErr(t, err, nil)
	if want := (LineReserved{SKU: "apple", At: t0}); !reflect.DeepEqual(ev, want) {
		t.Fatalf("decoded %#v, want %#v", ev, want)
	}
	_, data, err := EncodeOrderEvent(LineReserved{SKU: "apple", GrantedAt: t0, At: at(time.Second)})
	checkErr(t, err, nil)
	if want := `{"sku":"apple","granted_at":"2025-03-14T09:26:53Z","at":"2025-03-14T09:26:54Z"}`; string(data) != want {
		t.Fatalf("encoded %s, want %s", data, want)
	}
}

func isInvalidTransition(err error) bool { return errors.Is(err, ErrInvalidTransition) }

func ptr[T any](v T) *T { return &v }
