package httpapi

import (
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"

	"github.com/glasshouse-dev/glasshouse/app"
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

func handleItemCreate(log *slog.Logger, store app.Store, tel *telemetry.Telemetry) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		in, err := decodeItem(r)
		if err != nil {
			respondErr(log, w, r, err)
			return
		}
		it := app.Item{OwnerID: userID(r.Context()), Name: in.Name, Description: in.Description}
		if err := store.CreateItem(r.Context(), &it); err != nil {
			respondErr(log, w, r, err)
			return
		}
		tel.ItemCreated()
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
