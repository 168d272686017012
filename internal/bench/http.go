package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/errors"
)

// apiClient calls the engine's HTTP API over loopback as a checkout
// frontend would: keep-alive connections, one per concurrent client.
type apiClient struct {
	base, token string
	hc          *http.Client
	keys        atomic.Int64
}

func newAPIClient(base, token string, conns int) *apiClient {
	tr := &http.Transport{MaxIdleConns: conns + 16, MaxIdleConnsPerHost: conns + 16, IdleConnTimeout: time.Minute, DisableCompression: true}
	return &apiClient{base: base, token: token, hc: &http.Client{Transport: tr, Timeout: time.Minute}}
}

// apiAnswer is a response's status, body and the headers the bench reads.
type apiAnswer struct {
	Status      int
	Body        []byte
	Consistency string
}

// do sends one request with a JSON body (when body is not nil) and reads
// the whole answer.
func (c *apiClient) do(ctx context.Context, method, path string, body any, header ...string) (apiAnswer, error) {
	var r io.Reader
	if body != nil {
		data, err := json.Marshal(body)
		if err != nil {
			return apiAnswer{}, errors.Wrap(err, "encode the request")
		}
		r = bytes.NewReader(data)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, r)
	if err != nil {
		return apiAnswer{}, errors.Wrap(err, "build the request")
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return apiAnswer{}, errors.Wrapf(err, "%s %s", method, path)
	}
	defer func() { _ = resp.Body.Close() }()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return apiAnswer{}, errors.Wrapf(err, "read the answer to %s %s", method, path)
	}
	return apiAnswer{Status: resp.StatusCode, Body: data, Consistency: resp.Header.Get("Consistency-Token")}, nil
}

// expect fails unless the answer has one of the statuses.
func (a apiAnswer) expect(what string, statuses ...int) error {
	for _, s := range statuses {
		if a.Status == s {
			return nil
		}
	}
	body := a.Body
	if len(body) > 300 {
		body = body[:300]
	}
	return errors.Newf("%s: status %d, want %v: %s", what, a.Status, statuses, body)
}

// orderAnswer is the part of an order's JSON the bench reads.
type orderAnswer struct {
	OrderID string `json:"order_id"`
	Status  string `json:"status"`
}

type benchLine struct {
	SKU            string `json:"sku"`
	Qty            int64  `json:"qty"`
	UnitPriceCents int64  `json:"unit_price_cents"`
}

type benchOrder struct {
	CustomerID string      `json:"customer_id"`
	Currency   string      `json:"currency"`
	Lines      []benchLine `json:"lines"`
}

// placeOrder posts a one-line order for qty of sku, with an idempotency
// key of its own, and decodes the order it answers.
func (c *apiClient) placeOrder(ctx context.Context, sku string, qty int64, header ...string) (apiAnswer, orderAnswer, error) {
	n := c.keys.Add(1)
	body := benchOrder{CustomerID: "bench-" + strconv.FormatInt(n%1000, 10), Currency: "USD",
		Lines: []benchLine{{SKU: sku, Qty: qty, UnitPriceCents: 1999}}}
	a, err := c.do(ctx, http.MethodPost, "/v1/orders", body, append(header, "Idempotency-Key", fmt.Sprint("bench-", n))...)
	if err != nil {
		return a, orderAnswer{}, err
	}
	var o orderAnswer
	if a.Status < 300 {
		if err := json.Unmarshal(a.Body, &o); err != nil {
			return a, o, errors.Wrap(err, "decode the placed order")
		}
	}
	return a, o, nil
}

// setStock sets the on-hand quantity of sku.
func (c *apiClient) setStock(ctx context.Context, sku string, onHand int64) error {
	a, err := c.do(ctx, http.MethodPut, "/v1/inventory/"+sku, map[string]int64{"on_hand": onHand})
	if err != nil {
		return err
	}
	return a.expect("set the stock of "+sku, http.StatusOK, http.StatusCreated)
}
