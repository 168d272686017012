package main

import (
	"encoding/json"
	"mime"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/go-chi/chi/v5"
)

// openAPIOperation is what the test reads of one operation.
type openAPIOperation struct {
	Roles      []string `json:"x-roles"`
	Parameters []struct {
		Ref  string `json:"$ref"`
		Name string `json:"name"`
		In   string `json:"in"`
	} `json:"parameters"`
	Responses map[string]json.RawMessage `json:"responses"`
}

// pathParam matches a chi route parameter, with or without a regexp, and
// an OpenAPI path template's.
var pathParam = regexp.MustCompile(`\{([^}:]+)(:[^}]*)?\}`)

// TestOpenAPICoversEveryRoute walks the full server's router and fails for
// every route the document lacks and every documented operation the router
// does not serve; and the document is served, without a token, as OpenAPI
// 3.1 whose operations name the roles of the role matrix.
func TestOpenAPICoversEveryRoute(t *testing.T) {
	_, router, srv := fullServer(t)
	env := &apiEnv{srv: srv}
	r := env.do(t, apiCall{method: http.MethodGet, path: "/openapi.json"})
	wantStatus(t, r, http.StatusOK)
	if mt, _, err := mime.ParseMediaType(r.header.Get("Content-Type")); err != nil || mt != "application/json" {
		t.Errorf("Content-Type %q, want application/json", r.header.Get("Content-Type"))
	}
	var doc struct {
		OpenAPI string                                 `json:"openapi"`
		Paths   map[string]map[string]openAPIOperation `json:"paths"`
	}
	if err := json.Unmarshal(r.body, &doc); err != nil {
		t.Fatalf("the document is not JSON: %v", err)
	}
	var tree any // the same document, for following $refs
	if err := json.Unmarshal(r.body, &tree); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.1.") {
		t.Errorf("openapi %q, want 3.1.x", doc.OpenAPI)
	}
	documented := map[string]bool{}
	for path, ops := range doc.Paths {
		for method, o := range ops {
			key := strings.ToUpper(method) + " " + path
			documented[key] = true
			var roles []string
			for _, tok := range roleMatrix[key] {
				roles = append(roles, strings.TrimPrefix(tok, "tok-"))
			}
			if !slices.Equal(o.Roles, roles) {
				t.Errorf("%s: x-roles %v, the role matrix says %v", key, o.Roles, roles)
			}
			if len(o.Responses) == 0 {
				t.Errorf("%s has no responses", key)
			}
			checkPathParams(t, tree, key, path, o)
		}
	}
	served := map[string]bool{}
	err := chi.Walk(router, func(method, route string, _ http.Handler, _ ...func(http.Handler) http.Handler) error {
		key := method + " " + pathParam.ReplaceAllString(route, "{$1}")
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
	checkRefs(t, tree)
}

// checkPathParams fails unless every {name} of path is declared as a path
// parameter of the operation, inline or through a $ref.
func checkPathParams(t *testing.T, tree any, key, path string, o openAPIOperation) {
	t.Helper()
	declared := map[string]bool{}
	for _, p := range o.Parameters {
		name, in := p.Name, p.In
		if p.Ref != "" {
			v, _ := resolveRef(tree, p.Ref)
			m, _ := v.(map[string]any)
			name, _ = m["name"].(string)
			in, _ = m["in"].(string)
		}
		if in == "path" {
			declared[name] = true
		}
	}
	for _, m := range pathParam.FindAllStringSubmatch(path, -1) {
		if !declared[m[1]] {
			t.Errorf("%s: path parameter %q is not declared", key, m[1])
		}
	}
}

// checkRefs fails for every "$ref" of the document that names nothing in it.
func checkRefs(t *testing.T, tree any) {
	t.Helper()
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, e := range v {
				if s, ok := e.(string); ok && k == "$ref" {
					if _, ok := resolveRef(tree, s); !ok {
						t.Errorf("$ref %q names nothing in the document", s)
					}
					continue
				}
				walk(e)
			}
		case []any:
			for _, e := range v {
				walk(e)
			}
		}
	}
	walk(tree)
}

// resolveRef follows a local JSON pointer such as
// "#/components/schemas/Order" in the decoded document tree.
func resolveRef(tree any, ref string) (any, bool) {
	if !strings.HasPrefix(ref, "#/") {
		return nil, false
	}
	node := tree
	for _, part := range strings.Split(strings.TrimPrefix(ref, "#/"), "/") {
		part = strings.NewReplacer("~1", "/", "~0", "~").Replace(part)
		m, ok := node.(map[string]any)
		if !ok {
			return nil, false
		}
		if node, ok = m[part]; !ok {
			return nil, false
		}
	}
	return node, true
}
