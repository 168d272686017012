package commands

import (
	"context"
	"time"

	"github.com/orderengine/engine/domain"
	"github.com/orderengine/engine/eventstore"
)

// ExpireDue expires order id if it is still confirmed and unpaid once the
// reservation TTL has passed since its stock was granted
// (domain.Order.ExpiryDue); its release requests go out with the OrderExpired event.
// It returns how long to wait when the order is not due yet (the timer can
// fire up to a second early, or the TTL may have grown since it was set).
// An order that was paid or cancelled meanwhile is left alone.
func (a *App) ExpireDue(ctx context.Context, id string) (time.Duration, error) {
	if !domain.ValidOrderID(id) {
		return 0, nil
	}
	var retry time.Duration
	_, err := a.Orders.Update(ctx, id, eventstore.UpdateOptions[domain.Order]{CommandID: "expire-" + id, MaxAttempts: 20, Settle: true},
		func(s eventstore.Snapshot[domain.Order]) ([]domain.OrderEvent, error) {
			retry = 0
			if s.State.Status != domain.StatusConfirmed {
				return nil, nil
			}
			now := a.Now()
			if due := s.State.ExpiryDue(a.ReservationTTL); now.Before(due) {
				retry = due.Sub(now)
				return nil, nil
			}
			return domain.DecideOrder(s.State, domain.ExpireOrder{TTL: a.ReservationTTL, At: now})
		})
	return retry, err
}
