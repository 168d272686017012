package queries

import (
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/orderengine/engine/domain"
	"github.com/orderengine/engine/eventstore"
)

// consistentWith is the query-parameter spelling of the Consistency-Token
// header; every query accepts it.
const consistentWith = "consistent_with"

// params reads a request's query parameters, collecting a message per bad
// parameter so the client learns about all of them in one answer. An empty
// value counts as absent, so clients may send ?status=&limit= for "any".
type params struct {
	q        url.Values
	fields   map[string]string
	token    eventstore.Token
	hasToken bool
	// tokenField names where token came from, for a problem about it.
	tokenField string
}

// newParams refuses parameters not in allowed (consistent_with always is)
// and parameters given twice, and parses the consistency token.
func newParams(r *http.Request, allowed ...string) *params {
	p := &params{fields: map[string]string{}}
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		p.fields["query"] = "is not a valid URL query string"
	}
	p.q = q
	for name, vs := range q {
		switch {
		case name != consistentWith && !slices.Contains(allowed, name):
			p.fields[name] = "is not a known parameter; known are " + strings.Join(append(slices.Clone(allowed), consistentWith), ", ")
		case len(vs) > 1:
			p.fields[name] = "must be given at most once"
		}
	}
	p.parseToken(r)
	return p
}

// parseToken reads the Consistency-Token header and consistent_with; with
// both, the request waits for the later of the two.
func (p *params) parseToken(r *http.Request) {
	if vs := r.Header.Values("Consistency-Token"); len(vs) > 0 {
		t, err := eventstore.ParseToken(vs[0])
		if err != nil || len(vs) > 1 {
			p.fields["Consistency-Token"] = "must be a single token as a command answered: a decimal stream sequence or <shard>:<seq> pairs separated by commas"
		} else {
			p.token, p.hasToken, p.tokenField = t, true, "Consistency-Token"
		}
	}
	if s := p.str(consistentWith); s != "" {
		t, err := eventstore.ParseToken(s)
		if err != nil {
			p.set(consistentWith, "must be a token as a command answered: a decimal stream sequence or <shard>:<seq> pairs separated by commas")
		} else {
			if !p.hasToken || !t.CoveredBy(p.token) {
				p.tokenField = consistentWith
			}
			p.token = p.token.Max(t)
			p.hasToken = true
		}
	}
}

// set records msg for name unless name already has a message.
func (p *params) set(name, msg string) {
	if _, ok := p.fields[name]; !ok {
		p.fields[name] = msg
	}
}

// str returns the parameter's value, "" when absent.
func (p *params) str(name string) string { return p.q.Get(name) }

// intIn returns the parameter as an integer in [lo, hi], def when absent.
func (p *params) intIn(name string, def, lo, hi int64) int64 {
	s := p.str(name)
	if s == "" {
		return def
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < lo || n > hi {
		if hi == maxInt64 {
			p.set(name, "must be an integer of at least "+strconv.FormatInt(lo, 10))
		} else {
			p.set(name, "must be an integer between "+strconv.FormatInt(lo, 10)+" and "+strconv.FormatInt(hi, 10))
		}
		return def
	}
	return n
}

const maxInt64 = 1<<63 - 1

// err returns a validation error naming every bad parameter, or nil.
func (p *params) err() error {
	if len(p.fields) == 0 {
		return nil
	}
	return &domain.ValidationError{Fields: p.fields}
}
