package eventstore

import (
	"strconv"
	"time"

	"github.com/orderengine/engine/domain"
	"github.com/orderengine/engine/internal/plainjson"
)

// The payloads on an order's hot path (its placement, its outcome, the
// SKU's decisions) are written and read by hand here, beside the
// envelope's codec: every one is encoded once and decoded by every reader,
// and encoding/json's reflection was about 5% of a loaded engine's CPU.
// The domain keeps its own codec (domain.EncodeOrderEvent and the rest,
// encoding/json only, as the domain imports nothing else); these wrap it.
// Like the envelope's codec, the hand forms take only the shape
// encoding/json itself writes (plain strings, plain integers, each key
// once, no key it does not know) and leave everything else to the
// domain's codec, so the bytes stored and the events read are exactly its
// (TestPlainPayloads*, FuzzPlainPayloads compare them).

// EncodeOrderEvent is domain.EncodeOrderEvent, the hot payloads written
// by hand.
func EncodeOrderEvent(e domain.OrderEvent) (string, []byte, error) {
	if b, ok := encodePlain(e); ok {
		return e.EventType(), b, nil
	}
	return domain.EncodeOrderEvent(e)
}

// EncodeSKUEvent is domain.EncodeSKUEvent, the hot payloads written by
// hand.
func EncodeSKUEvent(e domain.SKUEvent) (string, []byte, error) {
	if b, ok := encodePlain(e); ok {
		return e.EventType(), b, nil
	}
	return domain.EncodeSKUEvent(e)
}

// DecodeOrderEvent is domain.DecodeOrderEvent, the hot payloads of the
// current schema version read by hand. Every reader of order events
// decodes with it.
func DecodeOrderEvent(typ string, schemaVersion int, data []byte) (domain.OrderEvent, error) {
	if schemaVersion == domain.SchemaVersionOf(typ) {
		switch typ {
		case domain.OrderPlaced{}.EventType():
			return decodePlainOr(typ, schemaVersion, data, readOrderPlaced, domain.DecodeOrderEvent)
		case domain.OrderConfirmed{}.EventType():
			return decodePlainOr(typ, schemaVersion, data, readOrderConfirmed, domain.DecodeOrderEvent)
		case domain.OrderRejected{}.EventType():
			return decodePlainOr(typ, schemaVersion, data, readOrderRejected, domain.DecodeOrderEvent)
		}
	}
	return domain.DecodeOrderEvent(typ, schemaVersion, data)
}

// DecodeSKUEvent is domain.DecodeSKUEvent, the hot payloads of the
// current schema version read by hand. Every reader of SKU events
// decodes with it.
func DecodeSKUEvent(typ string, schemaVersion int, data []byte) (domain.SKUEvent, error) {
	if schemaVersion == domain.SchemaVersionOf(typ) {
		switch typ {
		case domain.ReservationsDecided{}.EventType():
			return decodePlainOr(typ, schemaVersion, data, readReservationsDecided, domain.DecodeSKUEvent)
		case domain.StockReserved{}.EventType():
			return decodePlainOr(typ, schemaVersion, data, readStockReserved, domain.DecodeSKUEvent)
		case domain.ReservationRefused{}.EventType():
			return decodePlainOr(typ, schemaVersion, data, readReservationRefused, domain.DecodeSKUEvent)
		case domain.ReservationReleased{}.EventType():
			return decodePlainOr(typ, schemaVersion, data, readReservationReleased, domain.DecodeSKUEvent)
		case domain.ReservationCommitted{}.EventType():
			return decodePlainOr(typ, schemaVersion, data, readReservationCommitted, domain.DecodeSKUEvent)
		}
	}
	return domain.DecodeSKUEvent(typ, schemaVersion, data)
}

// decodePlainOr reads data with read when it is in the plain shape, and
// with the domain's decoder otherwise. E is the event interface, T the
// payload's type.
func decodePlainOr[E any, T any](typ string, schemaVersion int, data []byte,
	read func(*T, []byte, int) (int, bool), decode func(string, int, []byte) (E, error)) (E, error) {
	var v T
	if readAll(&v, data, read) {
		if e, ok := any(v).(E); ok {
			return e, nil
		}
	}
	return decode(typ, schemaVersion, data)
}

// readAll reads the whole of data into *v with read; ok is false when
// data is not in the plain shape, and *v is then to be thrown away.
func readAll[T any](v *T, data []byte, read func(*T, []byte, int) (int, bool)) bool {
	end, ok := read(v, data, 0)
	return ok && plainjson.SkipSpace(data, end) == len(data)
}

// The keys of each payload, in the order of its struct's fields (the
// order encoding/json writes them in).
var (
	orderPlacedKeys         = []string{"order_id", "customer_id", "currency", "lines", "total_cents", "at"}
	lineKeys                = []string{"sku", "qty", "unit_price_cents"}
	orderConfirmedKeys      = []string{"sku", "granted_at", "at"}
	orderRejectedKeys       = []string{"reason", "short_skus", "available", "at"}
	reservationsDecidedKeys = []string{"decisions", "shard", "through_seq", "placed", "at"}
	decisionKeys            = []string{"reserved", "refused", "released", "committed", "told"}
	stockReservedKeys       = []string{"reservation_id", "order_id", "qty", "at"}
	reservationRefusedKeys  = []string{"reservation_id", "order_id", "qty", "available", "at"}
	reservationEndKeys      = []string{"reservation_id", "qty", "at"}
)

// encodePlain returns encoding/json's encoding of e when e is a hot
// payload in the plain shape; ok is false otherwise.
func encodePlain(e any) (_ []byte, ok bool) {
	size := plainSize(e)
	if size == 0 {
		return nil, false
	}
	w := plainWriter{b: make([]byte, 0, size), ok: true}
	switch v := e.(type) {
	case domain.OrderPlaced:
		writeOrderPlaced(v, &w)
	case domain.OrderConfirmed:
		writeOrderConfirmed(v, &w)
	case domain.OrderRejected:
		writeOrderRejected(v, &w)
	case domain.ReservationsDecided:
		writeReservationsDecided(v, &w)
	case domain.StockReserved:
		writeStockReserved(v, &w)
	case domain.ReservationRefused:
		writeReservationRefused(v, &w)
	case domain.ReservationReleased:
		writeReservationEnd(&w, v.ReservationID, v.Qty, v.At)
	case domain.ReservationCommitted:
		writeReservationEnd(&w, v.ReservationID, v.Qty, v.At)
	default:
		return nil, false
	}
	return w.b, w.ok
}

// plainSize is the buffer a hot payload's encoding starts from, and 0 for
// any other payload (which encoding/json writes). A decision grows with its
// orders (~175-190 bytes each, measured), so it is sized from them rather
// than regrown from 256 bytes (46 KB in 11 allocations for 64 orders).
func plainSize(e any) int {
	switch v := e.(type) {
	case domain.ReservationsDecided:
		return 64 + 192*len(v.Decisions)
	case domain.OrderPlaced, domain.OrderConfirmed, domain.OrderRejected,
		domain.StockReserved, domain.ReservationRefused, domain.ReservationReleased, domain.ReservationCommitted:
		return 256
	}
	return 0
}

func readReservationReleased(e *domain.ReservationReleased, b []byte, i int) (int, bool) {
	return readReservationEnd(b, i, &e.ReservationID, &e.Qty, &e.At)
}

func readReservationCommitted(e *domain.ReservationCommitted, b []byte, i int) (int, bool) {
	return readReservationEnd(b, i, &e.ReservationID, &e.Qty, &e.At)
}

func writeOrderPlaced(e domain.OrderPlaced, w *plainWriter) {
	w.str(`{"order_id":`, e.OrderID)
	w.str(`,"customer_id":`, e.CustomerID)
	w.str(`,"currency":`, e.Currency)
	w.raw(`,"lines":`)
	writeList(w, e.Lines, writeLine)
	w.int(`,"total_cents":`, e.TotalCents)
	w.time(`,"at":`, e.At)
	w.raw(`}`)
}

func readOrderPlaced(e *domain.OrderPlaced, b []byte, i int) (int, bool) {
	return readObject(b, i, orderPlacedKeys, func(f, i int) (int, bool) {
		switch f {
		case 0:
			return readString(b, i, &e.OrderID)
		case 1:
			return readString(b, i, &e.CustomerID)
		case 2:
			return readString(b, i, &e.Currency)
		case 3:
			return readList(b, i, &e.Lines, readLine)
		case 4:
			return readInt(b, i, &e.TotalCents)
		}
		return readTime(b, i, &e.At)
	})
}

func writeLine(l domain.Line, w *plainWriter) {
	w.str(`{"sku":`, l.SKU)
	w.int(`,"qty":`, l.Qty)
	w.int(`,"unit_price_cents":`, l.UnitPriceCents)
	w.raw(`}`)
}

func readLine(l *domain.Line, b []byte, i int) (int, bool) {
	return readObject(b, i, lineKeys, func(f, i int) (int, bool) {
		switch f {
		case 0:
			return readString(b, i, &l.SKU)
		case 1:
			return readInt(b, i, &l.Qty)
		}
		return readInt(b, i, &l.UnitPriceCents)
	})
}

func writeOrderConfirmed(e domain.OrderConfirmed, w *plainWriter) {
	w.raw(`{`)
	if e.SKU != "" {
		w.str(`"sku":`, e.SKU)
		w.raw(`,`)
	}
	if !e.GrantedAt.IsZero() {
		w.time(`"granted_at":`, e.GrantedAt)
		w.raw(`,`)
	}
	w.time(`"at":`, e.At)
	w.raw(`}`)
}

func readOrderConfirmed(e *domain.OrderConfirmed, b []byte, i int) (int, bool) {
	return readObject(b, i, orderConfirmedKeys, func(f, i int) (int, bool) {
		switch f {
		case 0:
			return readString(b, i, &e.SKU)
		case 1:
			return readTime(b, i, &e.GrantedAt)
		}
		return readTime(b, i, &e.At)
	})
}

func writeOrderRejected(e domain.OrderRejected, w *plainWriter) {
	w.str(`{"reason":`, e.Reason)
	if len(e.ShortSKUs) > 0 {
		w.raw(`,"short_skus":`)
		writeList(w, e.ShortSKUs, func(s string, w *plainWriter) { w.str(``, s) })
	}
	if e.Available != nil {
		w.int(`,"available":`, *e.Available)
	}
	w.time(`,"at":`, e.At)
	w.raw(`}`)
}

func readOrderRejected(e *domain.OrderRejected, b []byte, i int) (int, bool) {
	return readObject(b, i, orderRejectedKeys, func(f, i int) (int, bool) {
		switch f {
		case 0:
			return readString(b, i, &e.Reason)
		case 1:
			return readList(b, i, &e.ShortSKUs, func(s *string, b []byte, i int) (int, bool) { return readString(b, i, s) })
		case 2:
			e.Available = new(int64)
			return readInt(b, i, e.Available)
		}
		return readTime(b, i, &e.At)
	})
}

func writeReservationsDecided(e domain.ReservationsDecided, w *plainWriter) {
	w.raw(`{"decisions":`)
	writeList(w, e.Decisions, writeDecision)
	if e.Shard != 0 {
		w.int(`,"shard":`, int64(e.Shard))
	}
	if e.ThroughSeq != 0 {
		w.raw(`,"through_seq":`)
		w.b = strconv.AppendUint(w.b, e.ThroughSeq, 10)
	}
	if e.Placed {
		w.raw(`,"placed":true`)
	}
	w.time(`,"at":`, e.At)
	w.raw(`}`)
}

func readReservationsDecided(e *domain.ReservationsDecided, b []byte, i int) (int, bool) {
	return readObject(b, i, reservationsDecidedKeys, func(f, i int) (int, bool) {
		switch f {
		case 0:
			return readList(b, i, &e.Decisions, readDecision)
		case 1:
			n, next, ok := plainjson.Int(b, i, true)
			e.Shard = int(n)
			return next, ok && int64(int(n)) == n
		case 2:
			n, next, ok := plainjson.Int(b, i, false)
			e.ThroughSeq = uint64(n)
			return next, ok
		case 3:
			return readBool(b, i, &e.Placed)
		}
		return readTime(b, i, &e.At)
	})
}

func writeDecision(d domain.ReservationDecision, w *plainWriter) {
	sep := `{`
	member := func(key string, set bool, write func()) {
		if set {
			w.raw(sep)
			w.raw(key)
			write()
			sep = `,`
		}
	}
	member(`"reserved":`, d.Reserved != nil, func() { writeStockReserved(*d.Reserved, w) })
	member(`"refused":`, d.Refused != nil, func() { writeReservationRefused(*d.Refused, w) })
	member(`"released":`, d.Released != nil, func() {
		writeReservationEnd(w, d.Released.ReservationID, d.Released.Qty, d.Released.At)
	})
	member(`"committed":`, d.Committed != nil, func() {
		writeReservationEnd(w, d.Committed.ReservationID, d.Committed.Qty, d.Committed.At)
	})
	member(`"told":`, d.Told, func() { w.raw(`true`) })
	if sep == `{` {
		w.raw(`{`)
	}
	w.raw(`}`)
}

func readDecision(d *domain.ReservationDecision, b []byte, i int) (int, bool) {
	return readObject(b, i, decisionKeys, func(f, i int) (int, bool) {
		switch f {
		case 0:
			d.Reserved = new(domain.StockReserved)
			return readStockReserved(d.Reserved, b, i)
		case 1:
			d.Refused = new(domain.ReservationRefused)
			return readReservationRefused(d.Refused, b, i)
		case 2:
			r := new(domain.ReservationReleased)
			d.Released = r
			return readReservationEnd(b, i, &r.ReservationID, &r.Qty, &r.At)
		case 3:
			c := new(domain.ReservationCommitted)
			d.Committed = c
			return readReservationEnd(b, i, &c.ReservationID, &c.Qty, &c.At)
		}
		return readBool(b, i, &d.Told)
	})
}

func writeStockReserved(e domain.StockReserved, w *plainWriter) {
	writeReservationDecided(w, e.ReservationID, e.OrderID, e.Qty, nil, e.At)
}

func readStockReserved(e *domain.StockReserved, b []byte, i int) (int, bool) {
	return readReservationDecided(b, i, stockReservedKeys, &e.ReservationID, &e.OrderID, &e.Qty, nil, &e.At)
}

func writeReservationRefused(e domain.ReservationRefused, w *plainWriter) {
	writeReservationDecided(w, e.ReservationID, e.OrderID, e.Qty, &e.Available, e.At)
}

func readReservationRefused(e *domain.ReservationRefused, b []byte, i int) (int, bool) {
	return readReservationDecided(b, i, reservationRefusedKeys, &e.ReservationID, &e.OrderID, &e.Qty, &e.Available, &e.At)
}

// writeReservationDecided writes a StockReserved (available nil) or a
// ReservationRefused, which has the same fields and what was available.
func writeReservationDecided(w *plainWriter, id, orderID string, qty int64, available *int64, at time.Time) {
	w.str(`{"reservation_id":`, id)
	w.str(`,"order_id":`, orderID)
	w.int(`,"qty":`, qty)
	if available != nil {
		w.int(`,"available":`, *available)
	}
	w.time(`,"at":`, at)
	w.raw(`}`)
}

// readReservationDecided reads a StockReserved (available nil, keys
// without "available") or a ReservationRefused.
func readReservationDecided(b []byte, i int, keys []string, id, orderID *string, qty, available *int64, at *time.Time) (int, bool) {
	return readObject(b, i, keys, func(f, i int) (int, bool) {
		switch keys[f] {
		case "reservation_id":
			return readString(b, i, id)
		case "order_id":
			return readString(b, i, orderID)
		case "qty":
			return readInt(b, i, qty)
		case "available":
			return readInt(b, i, available)
		}
		return readTime(b, i, at)
	})
}

// writeReservationEnd writes a ReservationReleased or a
// ReservationCommitted, which have the same fields.
func writeReservationEnd(w *plainWriter, id string, qty int64, at time.Time) {
	w.str(`{"reservation_id":`, id)
	w.int(`,"qty":`, qty)
	w.time(`,"at":`, at)
	w.raw(`}`)
}

// readReservationEnd reads a ReservationReleased or a
// ReservationCommitted.
func readReservationEnd(b []byte, i int, id *string, qty *int64, at *time.Time) (int, bool) {
	return readObject(b, i, reservationEndKeys, func(f, i int) (int, bool) {
		switch f {
		case 0:
			return readString(b, i, id)
		case 1:
			return readInt(b, i, qty)
		}
		return readTime(b, i, at)
	})
}

// plainWriter appends JSON; ok turns false at the first value encoding/json
// would write in another form, and then b is to be discarded.
type plainWriter struct {
	b  []byte
	ok bool
}

func (w *plainWriter) raw(s string) { w.b = append(w.b, s...) }

func (w *plainWriter) str(key, s string) {
	w.ok = w.ok && plainjson.PlainString(s)
	w.b = append(append(append(append(w.b, key...), '"'), s...), '"')
}

func (w *plainWriter) int(key string, n int64) {
	w.b = strconv.AppendInt(append(w.b, key...), n, 10)
}

func (w *plainWriter) time(key string, t time.Time) {
	w.ok = w.ok && plainjson.TimeWritable(t)
	w.b = plainjson.AppendTime(append(w.b, key...), t)
}

// writeList writes s as encoding/json writes a slice: null when nil.
func writeList[T any](w *plainWriter, s []T, write func(T, *plainWriter)) {
	if s == nil {
		w.raw(`null`)
		return
	}
	w.raw(`[`)
	for i, v := range s {
		if i > 0 {
			w.raw(`,`)
		}
		write(v, w)
	}
	w.raw(`]`)
}

// readObject reads the object at b[i] whose keys are all among names,
// each at most once, calling member with the key's index in names and
// the index of its value. A key it does not know (which encoding/json
// would skip, or match without regard to case) or a repeated one (which
// encoding/json would decode again on top of the first) is left to
// encoding/json.
func readObject(b []byte, i int, names []string, member func(field, value int) (int, bool)) (int, bool) {
	var seen uint32
	return plainjson.Object(b, i, func(key []byte, i int) (int, bool) {
		for f, name := range names {
			if string(key) == name {
				if seen&(1<<f) != 0 {
					return 0, false
				}
				seen |= 1 << f
				return member(f, i)
			}
		}
		return 0, false
	})
}

// readList reads the array at b[i] into *dst (empty, not nil, when the
// array is); null is left to encoding/json.
func readList[T any](b []byte, i int, dst *[]T, read func(*T, []byte, int) (int, bool)) (int, bool) {
	if b[i] != '[' {
		return 0, false
	}
	s := []T{}
	var sc plainjson.Scanner
	end, ok := sc.List(b, i+1, ']', func(i int) (int, bool) {
		var v T
		end, ok := read(&v, b, i)
		s = append(s, v)
		return end, ok
	})
	*dst = s
	return end, ok
}

func readString(b []byte, i int, dst *string) (int, bool) {
	s, next, ok := plainjson.Quoted(b, i)
	*dst = string(s)
	return next, ok
}

func readInt(b []byte, i int, dst *int64) (int, bool) {
	n, next, ok := plainjson.Int(b, i, true)
	*dst = n
	return next, ok
}

func readBool(b []byte, i int, dst *bool) (int, bool) {
	v, next, ok := plainjson.Bool(b, i)
	*dst = v
	return next, ok
}

func readTime(b []byte, i int, dst *time.Time) (int, bool) {
	t, next, ok := plainjson.Time(b, i)
	*dst = t
	return next, ok
}
