// Package web is the live dashboard page that the engine serves at /: plain
// HTML, CSS and JavaScript embedded in the binary, so it works offline and
// needs no build step. The page reads the API with the token the user signs
// in with; these handlers only serve files and need no token.
package web

import (
	"embed"
	"io/fs"
	"mime"
	"net/http"
	"path"

	"github.com/go-chi/chi/v5"

	"github.com/orderengine/engine/internal/httpx"
)

//go:embed static
var static embed.FS

// files is static without its directory prefix.
var files, _ = fs.Sub(static, "static")

// securityHeaders keep the page to its own origin: scripts, styles and
// connections only from the engine, no framing, no referrer (the URL may
// briefly hold a #token fragment, which browsers never send anyway).
func securityHeaders(h http.Header) {
	h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "+
		"connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Frame-Options", "DENY")
	// The files change only with the binary; revalidating is cheap.
	h.Set("Cache-Control", "no-cache")
}

// HandleIndex serves the dashboard page, GET /.
func HandleIndex(w http.ResponseWriter, r *http.Request) {
	serve(w, r, "index.html")
}

// HandleAsset serves GET /assets/{name}: the page's script, style sheet and
// icon. An unknown name is a 404 problem.
func HandleAsset(w http.ResponseWriter, r *http.Request) {
	serve(w, r, chi.URLParam(r, "name"))
}

func serve(w http.ResponseWriter, r *http.Request, name string) {
	b, err := fs.ReadFile(files, path.Clean(name))
	if err != nil || name == "index.html" && r.URL.Path != "/" {
		httpx.WriteProblem(w, httpx.NewProblem(http.StatusNotFound, "not_found", "no such asset"))
		return
	}
	securityHeaders(w.Header())
	ct := mime.TypeByExtension(path.Ext(name))
	if ct == "" {
		ct = "application/octet-stream"
	}
	w.Header().Set("Content-Type", ct)
	_, _ = w.Write(b)
}
