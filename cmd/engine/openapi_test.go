package main

import (
	"encoding/json"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/go-chi/chi/v5"
)

// TestOpenAPICoversEveryRoute walks the full server's router and fails for
// every route the document lacks and every documented operation the router
// does not serve; and the document is served, without a token, as OpenAPI
// 3.1 whose operations name the roles of the role matrix.
func TestOpenAPICoversEveryRoute(t *testing.T) {
	_, router, srv := fullServer(t)
	env := &apiEnv{srv: srv}
	r := env.do(t, apiCall{method: http.MethodGet, path: "/openapi.json"})
	wantStatus(t, r, http.StatusOK)
	var doc struct {
		OpenAPI string `json:"openapi"`
		Paths   map[string]map[string]struct {
			Roles []string `json:"x-roles"`
		} `json:"paths"`
	}
	if err := json.Unmarshal(r.body, &doc); err != nil {
		t.Fatalf("the document is not JSON: %v", err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.1.") {
		t.Errorf("openapi %q, want 3.1.x", doc.OpenAPI)
	}
	documented := map[string]bool{}
	for path, ops := range doc.Paths {
		for method, o := range ops {
			key := strings.ToUpper(method) + " " + path
			documented[key] = true
			want := roleMatrix[key]
			var roles []string
			for _, tok := range want {
				roles = append(roles, strings.TrimPrefix(tok, "tok-"))
			}
			if !slices.Equal(o.Roles, roles) {
				t.Errorf("%s: x-roles %v, the role matrix says %v", key, o.Roles, roles)
			}
		}
	}
	param := regexp.MustCompile(`\{([^}:]+)(:[^}]*)?\}`)
	served := map[string]bool{}
	err := chi.Walk(router, func(method, route string, _ http.Handler, _ ...func(http.Handler) http.Handler) error {
		key := method + " " + param.ReplaceAllString(route, "{$1}")
		served[key] = true
		if !documented[key] {
			t.Errorf("%s is served but not in openapi.json", key)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for key := range documented {
		if !served[key] {
			t.Errorf("openapi.json documents %s, which the router does not serve", key)
		}
	}
}
