package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"unicode/utf8"
)

// encode writes v as JSON with status.
func encode[T any](w http.ResponseWriter, status int, v T) error {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	if err := json.NewEncoder(w).Encode(v); err != nil {
		return fmt.Errorf("encode %T: %w", v, err)
	}
	return nil
}

// requestError is a client error found while reading a request: status is
// 400, 413 or 415, code the problem's stable code, detail a message that is
// safe to show.
type requestError struct {
	status int
	code   string
	detail string
}

func (e *requestError) Error() string { return e.detail }

func badRequest(code, format string, args ...any) error {
	return &requestError{status: http.StatusBadRequest, code: code, detail: fmt.Sprintf(format, args...)}
}

// decode reads one JSON object of type T from r's body: the media type must
// be application/json (415 otherwise), the body must fit the body limit
// (413), be valid UTF-8, well-formed JSON with the right types and no
// unknown fields, and hold nothing after the value (400). Semantic checks
// (422) are the caller's.
func decode[T any](r *http.Request) (T, error) {
	var v T
	if err := checkJSONContentType(r.Header.Get("Content-Type")); err != nil {
		return v, err
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			return v, &requestError{status: http.StatusRequestEntityTooLarge, code: "body_too_large",
				detail: "request body is larger than the limit"}
		}
		return v, badRequest("unreadable_body", "request body could not be read")
	}
	return v, decodeBytes(body, &v)
}

// decodeBytes is decode after the body has been read: the part the fuzz
// targets exercise.
func decodeBytes(body []byte, v any) error {
	if len(bytes.TrimSpace(body)) == 0 {
		return badRequest("invalid_json", "request body is empty; send a JSON object")
	}
	if !utf8.Valid(body) {
		return badRequest("invalid_utf8", "request body is not valid UTF-8")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonError(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return badRequest("invalid_json", "request body must hold exactly one JSON value")
	}
	return nil
}

func jsonError(err error) error {
	if e, ok := errors.AsType[*json.SyntaxError](err); ok {
		return badRequest("invalid_json", "malformed JSON at byte %d", e.Offset)
	}
	if e, ok := errors.AsType[*json.UnmarshalTypeError](err); ok {
		if e.Field == "" {
			return badRequest("invalid_json", "request body must be a JSON object, not %s", e.Value)
		}
		return badRequest("invalid_json", "field %q must be %s, not %s", e.Field, jsonTypeName(e.Type.Kind().String()), e.Value)
	}
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return badRequest("invalid_json", "malformed JSON: unexpected end of input")
	}
	// The remaining decoder errors are "json: unknown field \"x\"" and
	// nesting-depth errors; their text names no internal detail.
	if msg, ok := strings.CutPrefix(err.Error(), "json: "); ok {
		return badRequest("invalid_json", "%s", msg)
	}
	return badRequest("invalid_json", "malformed JSON")
}

func jsonTypeName(kind string) string {
	switch kind {
	case "string":
		return "a string"
	case "int", "int64", "float64":
		return "a number"
	case "bool":
		return "a boolean"
	case "struct", "map":
		return "an object"
	case "slice":
		return "an array"
	}
	return "of another type"
}

func checkJSONContentType(ct string) error {
	unsupported := &requestError{status: http.StatusUnsupportedMediaType, code: "unsupported_media_type",
		detail: "Content-Type must be application/json"}
	if ct == "" {
		return unsupported
	}
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil || mt != "application/json" {
		return unsupported
	}
	for k, v := range params {
		if k != "charset" || !strings.EqualFold(v, "utf-8") {
			return unsupported
		}
	}
	return nil
}
