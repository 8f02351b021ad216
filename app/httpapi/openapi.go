package httpapi

import (
	"encoding/json"
	"net/http"
	"strconv"
	"sync"

	"github.com/glasshouse-dev/glasshouse/app"
)

// openAPI builds the OpenAPI 3.1 document for every route in routes.go.
// It is plain data (maps), so a test can compare its paths with the mux's
// patterns and every status a handler test sees with what is documented.
func openAPI() map[string]any {
	type m = map[string]any
	ref := func(name string) m { return m{"$ref": "#/components/schemas/" + name} }
	str := func(desc string) m { return m{"type": "string", "description": desc} }
	jsonBody := func(schema m) m { return m{"content": m{"application/json": m{"schema": schema}}} }
	problem := func(desc string) m {
		return m{"description": desc, "content": m{"application/problem+json": m{"schema": ref("Problem")}}}
	}
	ok := func(desc string, schema m) m {
		return m{"description": desc, "content": m{"application/json": m{"schema": schema}}}
	}
	rateHeaders := m{
		"RateLimit-Limit":     m{"$ref": "#/components/headers/RateLimit-Limit"},
		"RateLimit-Remaining": m{"$ref": "#/components/headers/RateLimit-Remaining"},
		"RateLimit-Reset":     m{"$ref": "#/components/headers/RateLimit-Reset"},
	}
	limited := m{"description": "Rate limited (code `rate_limited`), or this client already has CONCURRENCY_LIMIT_PER_IP requests in flight (code `too_many_in_flight`). Retry after the Retry-After header's seconds.",
		"headers": m{"Retry-After": m{"$ref": "#/components/headers/Retry-After"}},
		"content": m{"application/problem+json": m{"schema": ref("Problem")}}}
	// Every route can answer these, from the middleware.
	edge := func(codes m) m {
		codes["414"] = problem("Request URI longer than 8 KiB.")
		codes["431"] = problem("Request headers larger than 16 KiB.")
		codes["500"] = problem("Internal error (a recovered panic or an unexpected failure); the body is safe to show.")
		return codes
	}
	// Every non-health route can also answer these.
	common := func(codes m) m {
		edge(codes)
		codes["429"] = limited
		codes["500"] = problem("Internal error (a recovered panic or an unexpected failure); the body is safe to show.")
		codes["503"] = problem("A dependency is unavailable, or the server is at its concurrency limit (code `overloaded`).")
		return codes
	}
	withBody := func(codes m) m {
		codes["400"] = problem("Malformed JSON, wrong field type, unknown field, invalid UTF-8 or trailing data.")
		codes["408"] = problem("The body arrived slower than MIN_BODY_RATE bytes/s after MIN_BODY_RATE_GRACE (code `body_timeout`); the connection is closed.")
		codes["413"] = problem("Body larger than the limit (MAX_BODY_BYTES, default 1 MiB).")
		codes["415"] = problem("Content-Type is not application/json.")
		codes["422"] = m{"description": "Validation failed; `errors` lists every invalid field.",
			"content": m{"application/problem+json": m{"schema": ref("Problem")}}}
		return codes
	}
	authed := func(codes m) m {
		codes["401"] = problem("Missing, malformed, expired or otherwise invalid bearer token.")
		return codes
	}
	// Either scheme authenticates: both carry the same bearer token;
	// oauth2 tells Swagger UI how to obtain one with a password.
	bearer := []m{{"bearer": []string{}}, {"oauth2": []string{}}}
	idParam := m{"name": "id", "in": "path", "required": true,
		"description": "Item ID. Anything but a positive integer is a 404.",
		"schema":      m{"type": "integer", "format": "int64", "minimum": 1}}

	paths := m{
		"/api/v1/users": m{"post": m{
			"operationId": "signup", "tags": []string{"users"}, "summary": "Create an account",
			"requestBody": withRequired(jsonBody(ref("SignupRequest"))),
			"responses": common(withBody(m{
				"201": m{"description": "Created.", "headers": rateHeaders, "content": m{"application/json": m{"schema": ref("User")}}},
				"409": problem("Username or email already taken (case-insensitive)."),
			})),
		}},
		"/api/v1/auth/login": m{"post": m{
			"operationId": "login", "tags": []string{"auth"}, "summary": "Exchange username and password for an access token",
			"description": "Limited by default to 20 attempts per minute per client over all usernames (RATE_LIMIT_LOGIN_IP) and 5 per minute per client and username (RATE_LIMIT_LOGIN). When too many password checks are queued (PASSWORD_HASH_QUEUE, a quarter of it per client), answers 503 `overloaded` at once.",
			"requestBody": withRequired(m{"content": m{
				"application/json":                  m{"schema": ref("LoginRequest")},
				"application/x-www-form-urlencoded": m{"schema": ref("LoginForm")},
			}}),
			"responses": override(common(withBody(m{
				"200": ok("An access token.", ref("Token")),
				"401": problem("Unknown user or wrong password (one answer for both)."),
			})), m{
				"400": problem("Malformed JSON, wrong field type, unknown field, invalid UTF-8 or trailing data; for a form, a malformed, unknown or repeated field (code `invalid_form`) or a grant_type other than `password` (code `unsupported_grant_type`)."),
				"415": problem("Content-Type is neither application/json nor application/x-www-form-urlencoded."),
			}),
		}},
		"/api/v1/users/me": m{"get": m{
			"operationId": "me", "tags": []string{"users"}, "summary": "The caller's account", "security": bearer,
			"responses": common(authed(m{"200": ok("The caller.", ref("User"))})),
		}},
		"/api/v1/items": m{
			"get": m{
				"operationId": "listItems", "tags": []string{"items"}, "summary": "List the caller's items, oldest first", "security": bearer,
				"parameters": []m{
					{"name": "limit", "in": "query", "description": "Page size; larger values are capped at " + strconv.Itoa(app.MaxPageLimit) + ".",
						"schema": m{"type": "integer", "minimum": 1, "default": app.DefaultPageLimit}},
					{"name": "offset", "in": "query", "description": "Items to skip.",
						"schema": m{"type": "integer", "minimum": 0, "maximum": maxOffset, "default": 0}},
				},
				"responses": common(authed(m{
					"200": ok("A page of items in ascending ID order, and the caller's total.", ref("ItemList")),
					"400": problem("limit or offset is not a valid integer (code `invalid_query`)."),
				})),
			},
			"post": m{
				"operationId": "createItem", "tags": []string{"items"}, "summary": "Create an item", "security": bearer,
				"description": "Send an `Idempotency-Key` to make retries safe: a retry by the same user with the same key and the same " +
					"request (after decoding: JSON spacing and key order do not matter) within 24 hours creates nothing and gets the " +
					"first answer again (201 with the item as first created, even if it has changed or been deleted since, and " +
					"`Idempotent-Replayed: true`). The same key with a different request is 422 `idempotency_key_reused`. " +
					"Without the header every request creates an item.",
				"parameters": []m{{"name": "Idempotency-Key", "in": "header", "required": false,
					"description": "A unique value per intended item, for example a UUID; 1 to 255 visible ASCII characters, " +
						"optionally quoted. Keys are per user and remembered for 24 hours.",
					"schema": m{"type": "string", "minLength": 1, "maxLength": maxIdempotencyKey, "pattern": `^"?[!#-\[\]-~]+"?$`}}},
				"requestBody": withRequired(jsonBody(ref("ItemRequest"))),
				"responses": override(common(authed(withBody(m{
					"201": m{"description": "Created, or the first answer replayed for a repeated Idempotency-Key.",
						"headers": m{
							"Location":            m{"schema": m{"type": "string"}, "description": "The item's URL."},
							"Idempotent-Replayed": m{"schema": m{"const": "true"}, "description": "Present when this is a replayed first answer."},
						},
						"content": m{"application/json": m{"schema": ref("Item")}}},
				}))), m{
					"400": problem("Malformed JSON, wrong field type, unknown field, invalid UTF-8 or trailing data; or an invalid Idempotency-Key header (code `invalid_idempotency_key`)."),
					"401": problem("Missing, malformed, expired or otherwise invalid bearer token, or the token's user no longer exists."),
					"422": problem("Validation failed (`errors` lists every invalid field), or the Idempotency-Key was already used with a different request (code `idempotency_key_reused`)."),
				}),
			},
		},
		"/api/v1/items/{id}": m{
			"parameters": []m{idParam},
			"get": m{
				"operationId": "getItem", "tags": []string{"items"}, "summary": "Get one of the caller's items", "security": bearer,
				"responses": common(authed(m{"200": ok("The item.", ref("Item")),
					"404": problem("No such item, or it belongs to another user.")})),
			},
			"put": m{
				"operationId": "updateItem", "tags": []string{"items"}, "summary": "Replace an item's name and description", "security": bearer,
				"requestBody": withRequired(jsonBody(ref("ItemRequest"))),
				"responses": common(authed(withBody(m{"200": ok("The updated item.", ref("Item")),
					"404": problem("No such item, or it belongs to another user.")}))),
			},
			"delete": m{
				"operationId": "deleteItem", "tags": []string{"items"}, "summary": "Delete an item", "security": bearer,
				"responses": common(authed(m{"204": m{"description": "Deleted."},
					"404": problem("No such item, or it belongs to another user.")})),
			},
		},
		"/api/v1/items/bulk": m{"post": m{
			"operationId": "createItemsBulk", "tags": []string{"items"}, "summary": "Create up to " + strconv.Itoa(app.MaxBulkItems) + " items at once", "security": bearer,
			"description": "Each item is validated on its own and the valid ones are stored in chunks of " + strconv.Itoa(bulkChunk) +
				", one transaction per chunk. The answer is 207 with one result per item, in request order: 201 with the item, or a problem " +
				"(400 `invalid_json` for an element that is not an item object, 422 `validation_failed`, or, when storing its chunk failed " +
				"after other chunks were stored, 503 `unavailable` or 500 `internal`: retry those items). The whole request fails only when " +
				"the envelope is invalid (422: `items` is not an array of 1 to " + strconv.Itoa(app.MaxBulkItems) + " elements), the body is " +
				"unreadable (400, 413 beyond MAX_BODY_BYTES, 415), or a storage error left nothing created (503, so retrying the whole " +
				"request is safe). Idempotency-Key is not supported here (400 `invalid_idempotency_key`): retry only the failed items " +
				"(as with a single create without the header, a chunk that committed just before its answer was lost can be created twice by a retry). " +
				"The request counts once against the per-user rate limit.",
			"requestBody": withRequired(jsonBody(obj(m{
				"items": m{"type": "array", "minItems": 1, "maxItems": app.MaxBulkItems, "items": ref("ItemRequest")},
			}, "items"))),
			"responses": override(common(authed(withBody(m{
				"207": ok("One result per item, in request order.", obj(m{
					"results": m{"type": "array", "items": obj(m{
						"index":   m{"type": "integer", "description": "The item's position in the request, from 0."},
						"status":  m{"type": "integer", "description": "201, or the problem's status."},
						"item":    ref("Item"),
						"problem": ref("Problem"),
					}, "index", "status")},
					"created": m{"type": "integer", "description": "Results with status 201."},
					"failed":  m{"type": "integer", "description": "Results with a problem."},
				}, "results", "created", "failed")),
			}))), m{
				"400": problem("Malformed JSON, wrong field type, unknown field, invalid UTF-8 or trailing data in the envelope; or an Idempotency-Key header (code `invalid_idempotency_key`)."),
				"401": problem("Missing, malformed, expired or otherwise invalid bearer token, or the token's user no longer exists."),
				"422": problem("Invalid envelope: `items` is missing or not an array of 1 to " + strconv.Itoa(app.MaxBulkItems) + " elements (code `validation_failed`)."),
			}),
		}},
		"/health": m{"get": m{
			"operationId": "health", "tags": []string{"health"}, "summary": "Status, version and time",
			"responses": edge(m{"200": ok("Up.", ref("Health"))}),
		}},
		"/health/live": m{"get": m{
			"operationId": "live", "tags": []string{"health"}, "summary": "Liveness (no I/O)",
			"responses": edge(m{"200": ok("Alive.", obj(m{"status": m{"const": "alive"}}, "status"))}),
		}},
		"/health/ready": m{"get": m{
			"operationId": "ready", "tags": []string{"health"}, "summary": "Readiness: every required dependency check passes",
			"responses": edge(m{
				"200": ok("Ready.", ref("Ready")),
				"503": problem("A required check failed (code `not_ready`, `checks` gives each state) or shutdown has begun (code `shutting_down`)."),
			}),
		}},
		"/health/detailed": m{"get": m{
			"operationId": "healthDetailed", "tags": []string{"health"}, "summary": "Each check's state and latency, plus memory and CPU use (HEALTH_DETAILED_SYSTEM)",
			"responses": edge(m{"200": ok("Always 200; read `status`.", ref("HealthDetailed"))}),
		}},
		"/openapi.json": m{"get": m{
			"operationId": "openapi", "tags": []string{"meta"}, "summary": "This document",
			"responses": common(m{"200": ok("OpenAPI 3.1.", m{"type": "object"})}),
		}},
		"/docs": m{"get": m{
			"operationId": "docs", "tags": []string{"meta"}, "summary": "Swagger UI: this document, interactive (try it out, authorize)",
			"responses": common(m{"200": m{"description": "HTML.", "content": m{"text/html": m{"schema": m{"type": "string"}}}}}),
		}},
		"/redoc": m{"get": m{
			"operationId": "redoc", "tags": []string{"meta"}, "summary": "ReDoc: this document as a three-panel reference",
			"responses": common(m{"200": m{"description": "HTML.", "content": m{"text/html": m{"schema": m{"type": "string"}}}}}),
		}},
		"/docs/assets/{file}": m{"get": m{
			"operationId": "docsAssets", "tags": []string{"meta"}, "summary": "The documentation pages' scripts, styles and licences (embedded in the binary)",
			"parameters": []m{{"name": "file", "in": "path", "required": true, "schema": m{"type": "string"}}},
			"responses": common(m{
				"200": m{"description": "The file.", "content": m{"*/*": m{"schema": m{"type": "string"}}}},
				"404": problem("No such file."),
			}),
		}},
	}

	ts := m{"type": "string", "format": "date-time"}
	checkState := m{"type": "string", "pattern": "^(healthy|unhealthy: .+)$"}
	checkStates := m{"type": "object", "description": "Each dependency check by name: `healthy` or `unhealthy: <reason>` (`timeout` or `unavailable`).",
		"additionalProperties": checkState}
	schemas := m{
		"SignupRequest": obj(m{
			"username": m{"type": "string", "minLength": app.UsernameMinLen, "maxLength": app.UsernameMaxLen, "pattern": "^[A-Za-z0-9_]+$"},
			"email":    m{"type": "string", "format": "email", "maxLength": app.EmailMaxLen},
			"password": m{"type": "string", "minLength": app.PasswordMinLen, "maxLength": app.PasswordMaxLen,
				"description": "At least one uppercase letter, one lowercase letter, one digit and one special character."},
		}, "username", "email", "password"),
		"LoginRequest": obj(m{
			"username": m{"type": "string", "maxLength": app.UsernameMaxLen},
			"password": m{"type": "string", "maxLength": app.PasswordMaxLen},
		}, "username", "password"),
		"LoginForm": m{
			"type":        "object",
			"description": "An OAuth2 password-grant token request (RFC 6749 section 4.3), as FastAPI's OAuth2PasswordRequestForm reads it. Each field at most once.",
			"properties": m{
				"grant_type":    m{"const": "password", "description": "Optional; when present it must be `password`."},
				"username":      m{"type": "string", "maxLength": app.UsernameMaxLen},
				"password":      m{"type": "string", "maxLength": app.PasswordMaxLen},
				"scope":         m{"type": "string", "description": "Accepted and ignored."},
				"client_id":     m{"type": "string", "description": "Accepted and ignored."},
				"client_secret": m{"type": "string", "description": "Accepted and ignored."},
			},
			"required":             []string{"username", "password"},
			"additionalProperties": false,
		},
		"Token": obj(m{
			"access_token": str("HS256 JWT with sub, iat, exp, iss and type=access."),
			"token_type":   m{"const": "bearer"},
			"expires_in":   m{"type": "integer", "description": "Seconds until the token expires."},
		}, "access_token", "token_type", "expires_in"),
		"User": obj(m{
			"id": m{"type": "integer", "format": "int64"}, "username": m{"type": "string"},
			"email": m{"type": "string", "format": "email"}, "created_at": ts,
		}, "id", "username", "email", "created_at"),
		"ItemRequest": obj(m{
			"name":        m{"type": "string", "minLength": 1, "maxLength": app.ItemNameMaxLen, "description": "Not blank; no control characters."},
			"description": m{"type": "string", "maxLength": app.ItemDescMaxLen, "default": "", "description": "Newlines and tabs allowed; no other control characters."},
		}, "name"),
		"Item": obj(m{
			"id": m{"type": "integer", "format": "int64"}, "owner_id": m{"type": "integer", "format": "int64"},
			"name": m{"type": "string"}, "description": m{"type": "string"}, "created_at": ts, "updated_at": ts,
		}, "id", "owner_id", "name", "description", "created_at", "updated_at"),
		"ItemList": obj(m{
			"items": m{"type": "array", "items": ref("Item")}, "total": m{"type": "integer"},
			"limit": m{"type": "integer"}, "offset": m{"type": "integer"},
		}, "items", "total", "limit", "offset"),
		"Problem": m{
			"type": "object", "description": "RFC 9457 problem details. Branch on `code`, not on `detail`.",
			"required": []string{"type", "title", "status", "code"},
			"properties": m{
				"type": m{"type": "string", "const": "about:blank"}, "title": m{"type": "string"},
				"status": m{"type": "integer"}, "detail": m{"type": "string"},
				"code": m{"type": "string", "enum": []string{
					"invalid_json", "invalid_form", "unsupported_grant_type", "invalid_utf8", "unreadable_body", "body_too_large", "uri_too_long", "headers_too_large", "unsupported_media_type", "invalid_query",
					"invalid_idempotency_key", "idempotency_key_reused",
					"validation_failed", "unauthorized", "invalid_token", "invalid_credentials", "not_found", "method_not_allowed",
					"conflict", "rate_limited", "cors_origin_not_allowed", "client_closed_request", "internal", "unavailable",
					"overloaded", "not_ready", "shutting_down"}},
				"request_id": str("The X-Request-Id of this request; quote it in bug reports."),
				"errors":     m{"type": "array", "items": obj(m{"field": m{"type": "string"}, "message": m{"type": "string"}}, "field", "message")},
				"checks":     checkStates,
			},
		},
		"Health": obj(m{"status": m{"const": "healthy"}, "version": m{"type": "string"}, "timestamp": ts}, "status", "version", "timestamp"),
		"Ready":  obj(m{"status": m{"const": "ready"}, "checks": checkStates}, "status", "checks"),
		"HealthDetailed": obj(m{
			"status": m{"enum": []string{"healthy", "degraded", "unhealthy"},
				"description": "`unhealthy` when a required check fails, `degraded` when only optional ones do. Resource warnings do not change it."},
			"version": m{"type": "string"}, "timestamp": ts,
			"uptime_seconds": m{"type": "number"}, "draining": m{"type": "boolean"},
			"checks": m{"type": "object",
				"description":          "Each dependency check (`database`, `redis`) by name, `healthy` or `unhealthy: <reason>`; with HEALTH_DETAILED_SYSTEM also `memory` and `cpu`.",
				"properties":           m{"memory": ref("ResourceCheck"), "cpu": ref("ResourceCheck")},
				"additionalProperties": checkState},
			"dependencies": m{"type": "array", "description": "Each dependency check with its latency.", "items": obj(m{
				"name": m{"type": "string"}, "status": m{"enum": []string{"healthy", "unhealthy", "degraded"}}, "optional": m{"type": "boolean"},
				"latency_ms": m{"type": "number"}, "error": m{"enum": []string{"timeout", "unavailable"}},
			}, "name", "status", "latency_ms")},
			"system": obj(m{
				"cpu_percent": m{"type": "number"}, "memory_used_bytes": m{"type": "integer"}, "memory_available_bytes": m{"type": "integer"},
				"process_rss_bytes": m{"type": "integer"}, "goroutines": m{"type": "integer"},
			}),
			"system_partial": m{"type": "boolean", "description": "Some system readings failed; they are 0 in `system`."},
		}, "status", "version", "timestamp", "checks", "dependencies"),
		"ResourceCheck": obj(m{
			"status":        m{"enum": []string{"healthy", "warning"}, "description": "`warning` at 90% memory or 80% CPU and above."},
			"usage_percent": m{"type": "number", "minimum": 0, "maximum": 100},
		}, "status", "usage_percent"),
	}
	header := func(desc string) m { return m{"description": desc, "schema": m{"type": "integer"}} }
	return m{
		"openapi": "3.1.0",
		"info": m{
			"title":       "glasshouse API",
			"version":     "v1",
			"description": "JSON over HTTP. Every error is application/problem+json (RFC 9457). Every response carries X-Request-Id, Traceresponse and X-Process-Time.",
			"license":     m{"name": "Apache-2.0", "identifier": "Apache-2.0"},
		},
		"paths": paths,
		"components": m{
			"schemas": schemas,
			"securitySchemes": m{
				"bearer": m{"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
				"oauth2": m{"type": "oauth2", "description": "The password flow: Swagger UI's Authorize posts the username and password as a form to the token URL and sends the token it gets as a bearer token.",
					"flows": m{"password": m{"tokenUrl": "/api/v1/auth/login", "scopes": m{}}}},
			},
			"headers": m{
				"RateLimit-Limit":     header("The quota's burst size."),
				"RateLimit-Remaining": header("Requests left now."),
				"RateLimit-Reset":     header("Seconds until the quota is full again."),
				"Retry-After":         header("Seconds to wait before retrying."),
			},
		},
	}
}

func obj(props map[string]any, required ...string) map[string]any {
	o := map[string]any{"type": "object", "properties": props, "additionalProperties": false}
	if len(required) > 0 {
		o["required"] = required
	}
	return o
}

// override returns codes with the responses in extra replacing the shared
// ones (for a route whose 4xx have more causes than the common text says).
func override(codes, extra map[string]any) map[string]any {
	for k, v := range extra {
		codes[k] = v
	}
	return codes
}

func withRequired(body map[string]any) map[string]any {
	body["required"] = true
	return body
}

var openAPIJSON = sync.OnceValue(func() []byte {
	b, err := json.MarshalIndent(openAPI(), "", "  ")
	if err != nil {
		panic("openapi document does not marshal: " + err.Error()) // start-up invariant, covered by tests
	}
	return b
})

func handleOpenAPI() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(openAPIJSON())
	})
}
