package webhooks

import (
	"log/slog"
	"net/http"

	"github.com/go-chi/chi/v5"

	"github.com/orderengine/engine/internal/httpx"
)

// Registered is the answer to a registration: the endpoint and, this once,
// its signing secret.
type Registered struct {
	Endpoint
	Secret string `json:"secret"`
}

// HandleRegister serves POST /v1/admin/webhooks.
func HandleRegister(s *Service, log *slog.Logger) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		body, err := httpx.ReadBody(w, r)
		if err != nil {
			httpx.Fail(w, r, log, err)
			return
		}
		reg, err := httpx.Decode[Registration](body)
		if err != nil {
			httpx.Fail(w, r, log, err)
			return
		}
		ep, secret, err := s.Register(r.Context(), reg)
		if err != nil {
			httpx.Fail(w, r, log, err)
			return
		}
		w.Header().Set("Location", "/v1/admin/webhooks/"+ep.ID)
		w.Header().Set("Cache-Control", "no-store")
		httpx.WriteJSON(w, http.StatusCreated, Registered{Endpoint: ep, Secret: secret})
	}
}

// HandleList serves GET /v1/admin/webhooks.
func HandleList(s *Service, log *slog.Logger) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		eps, err := s.List(r.Context())
		if err != nil {
			httpx.Fail(w, r, log, err)
			return
		}
		httpx.WriteJSON(w, http.StatusOK, map[string]any{"webhooks": eps})
	}
}

// HandleGet serves GET /v1/admin/webhooks/{id}.
func HandleGet(s *Service, log *slog.Logger) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ep, err := s.Get(r.Context(), chi.URLParam(r, "id"))
		if err != nil {
			httpx.Fail(w, r, log, err)
			return
		}
		httpx.WriteJSON(w, http.StatusOK, ep)
	}
}

// HandleDelete serves DELETE /v1/admin/webhooks/{id}.
func HandleDelete(s *Service, log *slog.Logger) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := s.Delete(r.Context(), chi.URLParam(r, "id")); err != nil {
			httpx.Fail(w, r, log, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}
}

// HandleDeadLetters serves GET /v1/admin/webhooks/{id}/dead-letters.
func HandleDeadLetters(s *Service, log *slog.Logger) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		dls, err := s.DeadLetters(r.Context(), chi.URLParam(r, "id"))
		if err != nil {
			httpx.Fail(w, r, log, err)
			return
		}
		httpx.WriteJSON(w, http.StatusOK, map[string]any{"dead_letters": dls})
	}
}

// HandleRedeliver serves POST /v1/admin/webhooks/{id}/dead-letters/redeliver:
// 202, the endpoint's worker redelivers in the background.
func HandleRedeliver(s *Service, log *slog.Logger) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		n, err := s.Redeliver(r.Context(), chi.URLParam(r, "id"))
		if err != nil {
			httpx.Fail(w, r, log, err)
			return
		}
		httpx.WriteJSON(w, http.StatusAccepted, map[string]any{"status": "redelivering", "dead_letters": n})
	}
}
