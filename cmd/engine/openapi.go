package main

import (
	_ "embed"
	"net/http"
)

// openAPI is the OpenAPI 3.1 document of every route newServer serves;
// TestOpenAPICoversEveryRoute keeps the two in step.
//
//go:embed openapi.json
var openAPI []byte

// handleOpenAPI serves GET /openapi.json, without a token (API.md).
func handleOpenAPI(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(openAPI)
}
