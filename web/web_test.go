package web_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/go-chi/chi/v5"

	"github.com/orderengine/engine/web"
)

func TestPageAndEveryAssetItNamesAreServed(t *testing.T) {
	r := chi.NewRouter()
	r.Get("/", web.HandleIndex)
	r.Get("/assets/{name}", web.HandleAsset)
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)
	get := func(path string) (*http.Response, string) {
		t.Helper()
		res, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = res.Body.Close() }()
		b, _ := io.ReadAll(res.Body)
		return res, string(b)
	}
	res, page := get("/")
	if res.StatusCode != http.StatusOK || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("GET /: %d %q", res.StatusCode, res.Header.Get("Content-Type"))
	}
	if csp := res.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") {
		t.Errorf("CSP %q does not keep scripts to the engine", csp)
	}
	// Everything the page loads comes from the engine itself: no CDN.
	refs := regexp.MustCompile(`(?:src|href)="([^"]+)"`).FindAllStringSubmatch(page, -1)
	if len(refs) < 3 {
		t.Fatalf("the page names %d files, want its script, style sheet and icon", len(refs))
	}
	for _, m := range refs {
		if !strings.HasPrefix(m[1], "/assets/") {
			t.Errorf("the page loads %s from elsewhere than /assets/", m[1])
			continue
		}
		if res, _ := get(m[1]); res.StatusCode != http.StatusOK {
			t.Errorf("GET %s: %d", m[1], res.StatusCode)
		}
	}
	for _, path := range []string{"/assets/nope.js", "/assets/index.html"} {
		if res, body := get(path); res.StatusCode != http.StatusNotFound || !strings.Contains(body, `"not_found"`) {
			t.Errorf("GET %s: %d %s, want a 404 problem", path, res.StatusCode, body)
		}
	}
}
