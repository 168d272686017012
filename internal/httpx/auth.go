package httpx

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"net/http"
	"slices"
	"strings"

	"github.com/cockroachdb/errors"
)

// Role is what a token may do; see API.md.
type Role string

// The roles of API.md. Admin may do everything.
const (
	RoleClient  Role = "client"
	RoleViewer  Role = "viewer"
	RoleAuditor Role = "auditor"
	RoleAdmin   Role = "admin"
)

// Principal is the caller a token stands for. ID is a digest of the token,
// safe to log and to scope idempotency keys with.
type Principal struct {
	ID   string
	Role Role
}

type tokenEntry struct {
	digest [32]byte
	p      Principal
}

// Tokens authenticates bearer tokens.
type Tokens struct{ entries []tokenEntry }

// roles lists every Role, in the order error messages name them.
var roles = []Role{RoleClient, RoleViewer, RoleAuditor, RoleAdmin}

// ParseTokens reads ENGINE_API_TOKENS: comma-separated token:role pairs. It
// returns an error naming the bad entry and, for an unknown role, the role
// and the valid ones (never the token itself). A token listed twice is
// refused: which role it should have is then a guess.
func ParseTokens(spec string) (*Tokens, error) {
	t := &Tokens{}
	valid := make([]string, len(roles))
	for i, r := range roles {
		valid[i] = string(r)
	}
	hint := "each entry is token:role, role one of " + strings.Join(valid, ", ")
	seen := map[[32]byte]int{}
	for i, pair := range strings.Split(spec, ",") {
		pair = strings.TrimSpace(pair)
		if pair == "" {
			continue
		}
		tok, role, ok := strings.Cut(pair, ":")
		if !ok || tok == "" {
			return nil, errors.WithHint(errors.Newf("ENGINE_API_TOKENS entry %d is not token:role", i+1), hint)
		}
		r := Role(role)
		if !slices.Contains(roles, r) {
			return nil, errors.WithHint(errors.Newf("ENGINE_API_TOKENS entry %d has unknown role %q; valid roles: %s",
				i+1, role, strings.Join(valid, ", ")), hint)
		}
		d := sha256.Sum256([]byte(tok))
		if first, dup := seen[d]; dup {
			return nil, errors.WithHint(errors.Newf("ENGINE_API_TOKENS entry %d repeats the token of entry %d", i+1, first),
				"list each token once, with the one role it should have")
		}
		seen[d] = i + 1
		t.add(tok, r)
	}
	if len(t.entries) == 0 {
		return nil, errors.New("ENGINE_API_TOKENS holds no token")
	}
	return t, nil
}

// GenerateAdminToken returns a fresh random admin token and the Tokens that
// accept it, for a start without ENGINE_API_TOKENS.
func GenerateAdminToken() (string, *Tokens) {
	b := make([]byte, 24)
	_, _ = rand.Read(b)
	tok := base64.RawURLEncoding.EncodeToString(b)
	t := &Tokens{}
	t.add(tok, RoleAdmin)
	return tok, t
}

// TokenDigest is what Tokens keeps of a token: its SHA-256. A digest can be
// stored where the token itself must not be.
func TokenDigest(tok string) [32]byte { return sha256.Sum256([]byte(tok)) }

// AdminTokenDigest returns the Tokens that accept, as admin, the one token
// whose TokenDigest is d.
func AdminTokenDigest(d [32]byte) *Tokens {
	t := &Tokens{}
	t.addDigest(d, RoleAdmin)
	return t
}

func (t *Tokens) add(tok string, r Role) { t.addDigest(TokenDigest(tok), r) }

func (t *Tokens) addDigest(d [32]byte, r Role) {
	t.entries = append(t.entries, tokenEntry{digest: d, p: Principal{ID: hex.EncodeToString(d[:8]), Role: r}})
}

// authenticate compares digests in constant time, and always against every
// entry, so neither the timing nor the length of a guess tells anything.
func (t *Tokens) authenticate(r *http.Request) (Principal, bool) {
	h := r.Header.Get("Authorization")
	scheme, tok, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || tok == "" {
		return Principal{}, false
	}
	d := sha256.Sum256([]byte(strings.TrimSpace(tok)))
	var found Principal
	match := 0
	for _, e := range t.entries {
		if subtle.ConstantTimeCompare(d[:], e.digest[:]) == 1 {
			found, match = e.p, 1
		}
	}
	return found, match == 1
}

type principalKey struct{}

// PrincipalFrom returns the authenticated caller of a request.
func PrincipalFrom(ctx context.Context) Principal {
	p, _ := ctx.Value(principalKey{}).(Principal)
	return p
}

// Require lets a request through only with a valid token whose role is one
// of roles (admin always passes): 401 without a known token, 403 otherwise.
func (t *Tokens) Require(roles ...Role) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			p, ok := t.authenticate(r)
			if !ok {
				w.Header().Set("WWW-Authenticate", `Bearer realm="engine"`)
				WriteProblem(w, NewProblem(http.StatusUnauthorized, "unauthorized", "a valid bearer token is required"))
				return
			}
			if p.Role != RoleAdmin && !slices.Contains(roles, p.Role) {
				WriteProblem(w, NewProblem(http.StatusForbidden, "forbidden", "the token's role may not do this"))
				return
			}
			next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), principalKey{}, p)))
		})
	}
}
