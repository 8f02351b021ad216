package httpapi

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"

	"go.opentelemetry.io/otel/trace"

	"github.com/glasshouse-dev/glasshouse/app"
	"github.com/glasshouse-dev/glasshouse/app/errtrack"
	"github.com/glasshouse-dev/glasshouse/telemetry"
)

// itemRequest is the body of POST /api/v1/items and PUT /api/v1/items/{id}
// (PUT replaces both fields; a missing description becomes "").
type itemRequest struct {
	Name        string `json:"name"`
	Description string `json:"description"`
}

// itemList is the body of GET /api/v1/items.
type itemList struct {
	Items  []app.Item `json:"items"`
	Total  int        `json:"total"`
	Limit  int        `json:"limit"`
	Offset int        `json:"offset"`
}

// maxOffset bounds offsets so they fit every store's integer type.
const maxOffset = 1 << 31

// parsePage reads ?limit= and ?offset=. limit defaults to
// app.DefaultPageLimit and is capped at app.MaxPageLimit; non-numeric,
// negative or zero values are 400.
func parsePage(limit, offset string) (app.Page, error) {
	p := app.Page{Limit: app.DefaultPageLimit}
	if limit != "" {
		n, err := strconv.Atoi(limit)
		if err != nil || n < 1 {
			return p, badRequest("invalid_query", "limit must be a positive integer")
		}
		p.Limit = min(n, app.MaxPageLimit)
	}
	if offset != "" {
		n, err := strconv.Atoi(offset)
		if err != nil || n < 0 || n > maxOffset {
			return p, badRequest("invalid_query", "offset must be an integer between 0 and %d", maxOffset)
		}
		p.Offset = n
	}
	return p, nil
}

// parseID reads the {id} path segment. Anything but a positive integer
// cannot name an item, so it is a 404 like a missing one.
func parseID(s string) (int64, error) {
	id, err := strconv.ParseInt(s, 10, 64)
	if err != nil || id < 1 {
		return 0, fmt.Errorf("item id %q: %w", s, app.ErrNotFound)
	}
	return id, nil
}

// pathID is parseID on r's {id}, answering the 404 itself when it fails.
// Store errors are answered at each handler's own call site instead, since
// the error tracker groups 5xx errors by the frames that reported them.
func pathID(log *errorLog, w http.ResponseWriter, r *http.Request) (int64, bool) {
	id, err := parseID(r.PathValue("id"))
	if err != nil {
		respondErr(log, w, r, err)
		return 0, false
	}
	return id, true
}

func decodeItem(r *http.Request) (app.ItemInput, error) {
	req, err := decode[itemRequest](r)
	if err != nil {
		return app.ItemInput{}, err
	}
	in := app.ItemInput{Name: req.Name, Description: req.Description}
	return in, in.Validate()
}

func handleItemList(log *errorLog, store app.Store) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q, err := url.ParseQuery(r.URL.RawQuery)
		if err != nil {
			respondErr(log, w, r, badRequest("invalid_query", "the query string is malformed"))
			return
		}
		p, err := parsePage(q.Get("limit"), q.Get("offset"))
		if err != nil {
			respondErr(log, w, r, err)
			return
		}
		items, total, err := store.ListItems(r.Context(), userID(r.Context()), p)
		if err != nil {
			respondErr(log, w, r, err)
			return
		}
		if items == nil {
			items = []app.Item{}
		}
		encode(w, http.StatusOK, itemList{Items: items, Total: total, Limit: p.Limit, Offset: p.Offset})
	})
}

// maxIdempotencyKey bounds the Idempotency-Key header (a UUID needs 36).
const maxIdempotencyKey = 255

// idempotencyKey reads the Idempotency-Key header: absent is "" (no
// idempotency); otherwise one value of 1 to 255 visible ASCII characters,
// optionally written as a quoted structured-field string ("..."), which is
// the same key unquoted.
func idempotencyKey(h http.Header) (string, error) {
	vs := h.Values("Idempotency-Key")
	if len(vs) == 0 {
		return "", nil
	}
	bad := badRequest("invalid_idempotency_key",
		"Idempotency-Key must be one value of 1 to %d visible ASCII characters", maxIdempotencyKey)
	if len(vs) > 1 {
		return "", bad
	}
	k := vs[0]
	if len(k) >= 2 && k[0] == '"' && k[len(k)-1] == '"' {
		k = k[1 : len(k)-1]
	}
	if k == "" || len(k) > maxIdempotencyKey {
		return "", bad
	}
	for i := range len(k) {
		if k[i] < 0x21 || k[i] > 0x7e || k[i] == '"' || k[i] == '\\' {
			return "", bad
		}
	}
	return k, nil
}

// fingerprint is the digest an idempotency key is bound to: the decoded
// request, so a retry that differs only in JSON spacing or key order is the
// same request, and one that changes a value is not.
func fingerprint(in app.ItemInput) string {
	b, _ := json.Marshal(itemRequest{Name: in.Name, Description: in.Description}) // strings only: cannot fail
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// handleItemCreate creates an item. With an Idempotency-Key header (and a
// store that implements app.IdempotentStore) a retry of the same request
// by the same user within app.IdempotencyWindow gets the first answer
// again (201 and the item as first created, with Idempotent-Replayed:
// true) instead of a second item; the same key with another body is 422.
func handleItemCreate(log *errorLog, store app.Store, m *metrics) http.Handler {
	idem, _ := store.(app.IdempotentStore)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key, err := idempotencyKey(r.Header)
		if err != nil {
			respondErr(log, w, r, err)
			return
		}
		in, err := decodeItem(r)
		if err != nil {
			respondErr(log, w, r, err)
			return
		}
		it := app.Item{OwnerID: userID(r.Context()), Name: in.Name, Description: in.Description}
		replayed := false
		switch {
		case key == "":
			err = store.CreateItem(r.Context(), &it)
		case idem == nil:
			// Creating without the promised deduplication would be worse
			// than refusing: the client retries on the strength of it.
			err = badRequest("invalid_idempotency_key", "this server's store does not support Idempotency-Key")
		default:
			replayed, err = idem.CreateItemOnce(r.Context(), &it, app.IdempotencyKey{Key: key, Fingerprint: fingerprint(in)})
		}
		if err != nil {
			respondErr(log, w, r, err)
			return
		}
		if replayed {
			w.Header().Set("Idempotent-Replayed", "true")
		} else {
			m.itemCreated()
		}
		w.Header().Set("Location", "/api/v1/items/"+strconv.FormatInt(it.ID, 10))
		encode(w, http.StatusCreated, it)
	})
}

func handleItemGet(log *errorLog, store app.Store) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, ok := pathID(log, w, r)
		if !ok {
			return
		}
		it, err := store.Item(r.Context(), userID(r.Context()), id)
		if err != nil {
			respondErr(log, w, r, err)
			return
		}
		encode(w, http.StatusOK, it)
	})
}

func handleItemUpdate(log *errorLog, store app.Store) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, ok := pathID(log, w, r)
		if !ok {
			return
		}
		in, err := decodeItem(r)
		if err != nil {
			respondErr(log, w, r, err)
			return
		}
		it := app.Item{ID: id, OwnerID: userID(r.Context()), Name: in.Name, Description: in.Description}
		if err := store.UpdateItem(r.Context(), &it); err != nil {
			respondErr(log, w, r, err)
			return
		}
		encode(w, http.StatusOK, it)
	})
}

func handleItemDelete(log *errorLog, store app.Store) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, ok := pathID(log, w, r)
		if !ok {
			return
		}
		if err := store.DeleteItem(r.Context(), userID(r.Context()), id); err != nil {
			respondErr(log, w, r, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
}

// bulkChunk is how many items one transaction of a bulk create holds:
// short transactions let other writers in between chunks (SQLite has one
// writer) and bound what one storage failure costs. BenchmarkCreateItems
// in app/sqlite measures the chunk sizes.
const bulkChunk = 25

// bulkRequest is the body of POST /api/v1/items/bulk. Items stays raw so
// that an invalid element fails only itself.
type bulkRequest struct {
	Items json.RawMessage `json:"items"`
}

// bulkResult is one item's outcome, at the item's position in the request:
// 201 with the item, or a 4xx/5xx problem.
type bulkResult struct {
	Index   int       `json:"index"`
	Status  int       `json:"status"`
	Item    *app.Item `json:"item,omitempty"`
	Problem *Problem  `json:"problem,omitempty"`
}

// bulkResponse is the 207 body of POST /api/v1/items/bulk.
type bulkResponse struct {
	Results []bulkResult `json:"results"`
	Created int          `json:"created"`
	Failed  int          `json:"failed"`
}

// invalidEnvelope is the 422 of a bulk request whose items are not an
// array of 1 to app.MaxBulkItems elements.
func invalidEnvelope() error {
	return &app.ValidationError{Fields: []app.FieldError{{Field: "items",
		Message: fmt.Sprintf("must be an array of 1 to %d items", app.MaxBulkItems)}}}
}

// handleItemBulkCreate creates up to app.MaxBulkItems items for the caller.
// Each item is decoded and validated on its own; the valid ones are stored
// in chunks of bulkChunk, one transaction per chunk (when the store
// implements app.BulkStore). The answer is 207 with one result per item,
// in request order. The whole request fails only when its envelope is
// invalid (422, or 400/413/415 as for any body), or when a storage error
// left nothing created (then it answers as a single create would, 503 for
// an outage, so retrying the whole request is safe). A storage error after
// some chunks were stored fails only its chunk's items (503 "unavailable"
// or 500 "internal" each); the client retries those. Idempotency-Key is
// refused (400): deduplicating every item of a partial success is not
// offered.
func handleItemBulkCreate(log *errorLog, store app.Store, m *metrics) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if len(r.Header.Values("Idempotency-Key")) > 0 {
			respondErr(log, w, r, badRequest("invalid_idempotency_key",
				"Idempotency-Key is not supported on bulk creation; create items one by one at POST /api/v1/items to use it"))
			return
		}
		req, err := decode[bulkRequest](r)
		if err != nil {
			respondErr(log, w, r, err)
			return
		}
		ins, errs, err := bulkInputs(req)
		if err != nil {
			respondErr(log, w, r, err)
			return
		}
		owner := userID(r.Context())
		resp := bulkResponse{Results: make([]bulkResult, len(ins))}
		var (
			valid []*app.Item
			index []int // index[i] is valid[i]'s position in the request
		)
		for i, in := range ins {
			resp.Results[i].Index = i
			if errs[i] != nil {
				p := itemProblem(r, errs[i])
				resp.Results[i].Status, resp.Results[i].Problem = p.Status, &p
				continue
			}
			valid = append(valid, &app.Item{OwnerID: owner, Name: in.Name, Description: in.Description})
			index = append(index, i)
		}

		var failed []chunkErr
		for start := 0; start < len(valid); start += bulkChunk {
			chunk := valid[start:min(start+bulkChunk, len(valid))]
			err := app.CreateItems(r.Context(), store, chunk)
			if err != nil {
				failed = append(failed, chunkErr{err, len(chunk)})
			}
			for j, it := range chunk {
				res := &resp.Results[index[start+j]]
				switch {
				case it.ID != 0: // created (a store without app.BulkStore can stop mid-chunk)
					res.Status, res.Item = http.StatusCreated, it
				case err == nil:
					err = fmt.Errorf("create items: the store returned no ID for item %d", index[start+j])
					failed = append(failed, chunkErr{err, 1})
					fallthrough
				default:
					p := itemProblem(r, err)
					res.Status, res.Problem = p.Status, &p
				}
			}
		}
		for _, res := range resp.Results {
			if res.Status == http.StatusCreated {
				resp.Created++
				m.itemCreated()
			} else {
				resp.Failed++
			}
		}
		if resp.Created == 0 && len(failed) > 0 {
			respondErr(log, w, r, failed[0].err) // logged there, once
			return
		}
		for _, f := range failed {
			logChunkErr(log, r, f)
		}
		encode(w, http.StatusMultiStatus, resp)
	})
}

// bulkInputs checks the envelope of a decoded bulk request (an invalid one
// is a *app.ValidationError naming "items") and decodes and validates each
// element on its own: ins[i] is element i, or errs[i] says why it is not an
// item (a *requestError) or not a valid one (a *app.ValidationError).
func bulkInputs(req bulkRequest) (ins []app.ItemInput, errs []error, err error) {
	var elems []json.RawMessage
	if raw := bytes.TrimSpace(req.Items); len(raw) == 0 || raw[0] != '[' || json.Unmarshal(raw, &elems) != nil ||
		len(elems) == 0 || len(elems) > app.MaxBulkItems {
		return nil, nil, invalidEnvelope()
	}
	ins, errs = make([]app.ItemInput, len(elems)), make([]error, len(elems))
	for i, raw := range elems {
		var in itemRequest
		err := decodeBytes(raw, &in)
		if err == nil {
			ins[i] = app.ItemInput{Name: in.Name, Description: in.Description}
			err = ins[i].Validate()
		}
		errs[i] = err
	}
	return ins, errs, nil
}

// itemProblem is the problem of one item of a bulk request: a decoding or
// validation error of its own, or the storage error of its chunk.
func itemProblem(r *http.Request, err error) Problem {
	var p Problem
	re, isReq := errors.AsType[*requestError](err)
	ve, isInvalid := errors.AsType[*app.ValidationError](err)
	switch {
	case isReq:
		p = Problem{Status: re.status, Code: re.code, Detail: "item: " + re.detail}
	case isInvalid:
		p = Problem{Status: http.StatusUnprocessableEntity, Code: "validation_failed",
			Detail: "one or more fields are invalid", Errors: ve.Fields}
	case errors.Is(err, app.ErrUnknownOwner):
		p = Problem{Status: http.StatusUnauthorized, Code: "invalid_token", Detail: "the access token is invalid or expired"}
	case errors.Is(err, context.Canceled) && r.Context().Err() != nil:
		p = Problem{Status: StatusClientClosedRequest, Code: "client_closed_request", Detail: "the client closed the request"}
	case errors.Is(err, app.ErrUnavailable), errors.Is(err, context.DeadlineExceeded):
		p = Problem{Status: http.StatusServiceUnavailable, Code: "unavailable",
			Detail: "a dependency is unavailable; retry this item shortly"}
	default:
		p = Problem{Status: http.StatusInternalServerError, Code: "internal", Detail: "internal server error"}
	}
	p.Type, p.Title = "about:blank", http.StatusText(p.Status)
	if p.Status == StatusClientClosedRequest {
		p.Title = "Client Closed Request"
	}
	p.RequestID = telemetry.RequestID(r.Context())
	return p
}

// chunkErr is a chunk of n items that failed to store with err.
type chunkErr struct {
	err error
	n   int
}

// logChunkErr logs a failed chunk of a request that otherwise succeeded,
// once, at the level respondErr would log its error, records it on the
// request's span, and reports it to the error tracker as respondErr would
// (its items are answered 503 or 500).
func logChunkErr(el *errorLog, r *http.Request, f chunkErr) {
	level := slog.LevelError
	errorType := errtrack.TypeInternal
	switch {
	case errors.Is(f.err, context.Canceled) && r.Context().Err() != nil:
		level, errorType = slog.LevelInfo, ""
	case errors.Is(f.err, context.DeadlineExceeded):
		level, errorType = slog.LevelWarn, errtrack.TypeTimeout
	case errors.Is(f.err, app.ErrUnavailable):
		level, errorType = slog.LevelWarn, errtrack.TypeUnavailable
	}
	el.log.LogAttrs(r.Context(), level, "bulk create: chunk failed", slog.Int("items", f.n), slog.String("err", f.err.Error()))
	if errorType != "" {
		el.report(r, errorType, f.err)
	}
	trace.SpanFromContext(r.Context()).RecordError(f.err)
}
