package queries_test

import (
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/orderengine/engine/queries"
)

func TestConsistencyToken(t *testing.T) {
	t.Parallel()
	pool := newDB(t)
	id := newID(t)
	insertOrders(t, pool, order{id: id, created: base})
	insertItems(t, pool)
	h := newServer(t, pool, queries.WithConsistencyTimeout(2*time.Second), queries.WithPollInterval(5*time.Millisecond))

	paths := []string{"/v1/orders/" + id, "/v1/orders?limit=1", "/v1/inventory?limit=1", "/v1/inventory/nope"}
	wantStatus := []int{http.StatusOK, http.StatusOK, http.StatusOK, http.StatusNotFound}

	t.Run("without a checkpoint row, token 0 answers at once", func(t *testing.T) {
		for i, p := range paths {
			if rec := get(t, h, p, "Consistency-Token", "0"); rec.Code != wantStatus[i] {
				t.Errorf("%s: status %d; body %s", p, rec.Code, rec.Body)
			}
		}
	})

	setCheckpoint(t, pool, 5)
	// The checkpoint only rises; each case waits for one more sequence.
	next := uint64(5)
	for i, p := range paths {
		for _, how := range []string{"header", "query"} {
			t.Run("waits for the checkpoint: "+how+" "+p, func(t *testing.T) {
				next++
				token := strconv.FormatUint(next, 10)
				var bumped atomic.Bool
				done := make(chan struct{})
				go func() {
					defer close(done)
					time.Sleep(100 * time.Millisecond)
					bumped.Store(true)
					setCheckpoint(t, pool, next)
				}()
				var rec *httptest.ResponseRecorder
				if how == "header" {
					rec = get(t, h, p, "Consistency-Token", token)
				} else {
					rec = get(t, h, withQuery(p, "consistent_with="+token))
				}
				if !bumped.Load() {
					t.Errorf("answered %d before the checkpoint reached the token", rec.Code)
				}
				if rec.Code != wantStatus[i] {
					t.Errorf("status %d, want %d; body %s", rec.Code, wantStatus[i], rec.Body)
				}
				<-done
			})
		}
	}

	t.Run("a token the read models passed answers at once", func(t *testing.T) {
		for i, p := range paths {
			if rec := get(t, h, withQuery(p, "consistent_with=1"), "Consistency-Token", "2"); rec.Code != wantStatus[i] {
				t.Errorf("%s: status %d; body %s", p, rec.Code, rec.Body)
			}
		}
	})
	t.Run("a token never reached is 503 consistency_timeout", func(t *testing.T) {
		for _, p := range paths {
			rec := get(t, h, p, "Consistency-Token", "1000000")
			checkProblem(t, rec, http.StatusServiceUnavailable, "consistency_timeout", "")
			if rec.Header().Get("Retry-After") != "1" {
				t.Errorf("%s: Retry-After %q, want 1", p, rec.Header().Get("Retry-After"))
			}
		}
	})
	t.Run("with both, the later token counts", func(t *testing.T) {
		rec := get(t, h, withQuery(paths[0], "consistent_with=1"), "Consistency-Token", "1000000")
		checkProblem(t, rec, http.StatusServiceUnavailable, "consistency_timeout", "")
	})
	t.Run("a token of a sharded store waits for the shard it names", func(t *testing.T) {
		setShardCheckpoint(t, pool, 2, 3)
		// Shard 0 far ahead does not cover shard 2's sequence 4.
		rec := get(t, h, paths[0], "Consistency-Token", "2:4")
		checkProblem(t, rec, http.StatusServiceUnavailable, "consistency_timeout", "")
		var bumped atomic.Bool
		done := make(chan struct{})
		go func() {
			defer close(done)
			time.Sleep(100 * time.Millisecond)
			bumped.Store(true)
			setShardCheckpoint(t, pool, 2, 4)
		}()
		rec = get(t, h, withQuery(paths[0], "consistent_with=2:4,0:1"), "Consistency-Token", "1")
		if !bumped.Load() || rec.Code != http.StatusOK {
			t.Errorf("status %d, bumped %v; body %s", rec.Code, bumped.Load(), rec.Body)
		}
		<-done
		// Every shard a token names must be covered.
		checkProblem(t, get(t, h, paths[0], "Consistency-Token", "2:4,1:1"), http.StatusServiceUnavailable, "consistency_timeout", "")
		for _, bad := range []string{"2:", "x:1", "1:1,1:2", "1;2"} {
			checkProblem(t, get(t, h, paths[0], "Consistency-Token", bad), http.StatusUnprocessableEntity, "validation_failed", "Consistency-Token")
		}
	})
}

// withQuery appends the parameter q to path.
func withQuery(path, q string) string {
	if strings.Contains(path, "?") {
		return path + "&" + q
	}
	return path + "?" + q
}
