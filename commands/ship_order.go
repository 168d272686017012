package commands

import (
	"context"
	"net/http"

	"github.com/orderengine/engine/domain"
)

// ShipOrder records that a paid order left the warehouse; shipping commits
// its reservations (on-hand goes down for good).
type ShipOrder struct {
	Carrier        string `json:"carrier"`
	TrackingNumber string `json:"tracking_number"`
}

// ShipOrder ships order id. It fails with domain.ErrNotFound,
// ErrInvalidTransition (not paid), a ValidationError or a failed If-Match.
func (a *App) ShipOrder(ctx context.Context, m Meta, id string, c ShipOrder) (OrderResult, error) {
	return a.updateOrder(ctx, m, id, shipCommand(a, c))
}

func shipCommand(a *App, c ShipOrder) domain.OrderCommand {
	return domain.ShipOrder{Carrier: c.Carrier, TrackingNumber: c.TrackingNumber, At: a.Now()}
}

// HandleShipOrder serves POST /v1/orders/{id}/shipment.
func HandleShipOrder(a *App) http.HandlerFunc { return handleOrderCommand(a, shipCommand) }
