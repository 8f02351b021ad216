package httpapi

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"

	"github.com/glasshouse-dev/glasshouse/app"
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

func decodeItem(r *http.Request) (app.ItemInput, error) {
	req, err := decode[itemRequest](r)
	if err != nil {
		return app.ItemInput{}, err
	}
	in := app.ItemInput{Name: req.Name, Description: req.Description}
	return in, in.Validate()
}

func handleItemList(log *slog.Logger, store app.Store) http.Handler {
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
func handleItemCreate(log *slog.Logger, store app.Store, m *metrics) http.Handler {
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

func handleItemGet(log *slog.Logger, store app.Store) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, err := parseID(r.PathValue("id"))
		if err != nil {
			respondErr(log, w, r, err)
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

func handleItemUpdate(log *slog.Logger, store app.Store) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, err := parseID(r.PathValue("id"))
		if err != nil {
			respondErr(log, w, r, err)
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

func handleItemDelete(log *slog.Logger, store app.Store) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, err := parseID(r.PathValue("id"))
		if err != nil {
			respondErr(log, w, r, err)
			return
		}
		if err := store.DeleteItem(r.Context(), userID(r.Context()), id); err != nil {
			respondErr(log, w, r, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
}
