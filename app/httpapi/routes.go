package httpapi

import "net/http"

// router is what addRoutes needs: *http.ServeMux, or a recorder in tests.
type router interface {
	Handle(pattern string, h http.Handler)
}

// addRoutes is the whole API surface. Authenticated routes are wrapped in
// requireAuth. Rate limits run before the mux (limitClient, edge.go): per
// user with a valid token, per client IP otherwise; login adds per-client
// and per-username limits inside its handler. Health probes are never
// limited.
func addRoutes(mux router, s *server) {
	authed := s.requireAuth
	log, store := s.errs, s.opts.Store

	mux.Handle("POST /api/v1/users", handleSignup(log, store, s.opts.Hasher, s.tel, s.metrics, s.hashGate))
	mux.Handle("POST /api/v1/auth/login", handleLogin(s, store))
	mux.Handle("GET /api/v1/users/me", authed(handleMe(log, store)))

	mux.Handle("GET /api/v1/items", authed(handleItemList(log, store)))
	mux.Handle("POST /api/v1/items", authed(handleItemCreate(log, store, s.metrics)))
	mux.Handle("POST /api/v1/items/bulk", authed(handleItemBulkCreate(log, store, s.metrics)))
	mux.Handle("GET /api/v1/items/{id}", authed(handleItemGet(log, store)))
	mux.Handle("PUT /api/v1/items/{id}", authed(handleItemUpdate(log, store)))
	mux.Handle("DELETE /api/v1/items/{id}", authed(handleItemDelete(log, store)))

	mux.Handle("GET /health", handleHealth(s))
	mux.Handle("GET /health/live", handleLive())
	mux.Handle("GET /health/ready", handleReady(s))
	mux.Handle("GET /health/detailed", handleDetailed(s))

	mux.Handle("GET /openapi.json", handleOpenAPI())
	mux.Handle("GET /docs", handleDocs())
	mux.Handle("GET /docs/assets/{file...}", handleDocsAssets())
	mux.Handle("GET /redoc", handleRedoc())
}
