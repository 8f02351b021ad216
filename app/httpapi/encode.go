package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"reflect"
	"strings"
	"unicode"
	"unicode/utf8"
)

// jsonContentType is the Content-Type value of every JSON response, one
// slice shared by all of them (nothing modifies a header value in place).
var jsonContentType = []string{"application/json"}

// encode writes v as JSON with status.
func encode[T any](w http.ResponseWriter, status int, v T) error {
	w.Header()["Content-Type"] = jsonContentType
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
	return checkKeys(body, v)
}

// checkKeys rejects what encoding/json accepts silently: an object naming a
// key twice (the last one would win, so a validating proxy and this server
// could read different values), and a key that matches a field of v only
// when case is ignored ("NAME", or "uſername" with a long s, for
// "username"). Both are 400 invalid_json. body has already decoded into v
// without error, so it is well-formed.
func checkKeys(body []byte, v any) error {
	fields := map[string]bool{}
	if t := reflect.TypeOf(v); t != nil && t.Kind() == reflect.Pointer && t.Elem().Kind() == reflect.Struct {
		for f := range t.Elem().Fields() {
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if name == "" {
				name = f.Name
			}
			if f.IsExported() && name != "-" {
				fields[name] = true
			}
		}
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	return walkKeys(dec, fields)
}

// walkKeys reads one value from dec, checking every object in it; fields
// are the exact key names allowed in this value when it is an object (nil
// inside nested values).
func walkKeys(dec *json.Decoder, fields map[string]bool) error {
	tok, err := dec.Token()
	if err != nil {
		return badRequest("invalid_json", "malformed JSON")
	}
	switch tok {
	case json.Delim('{'):
		seen := map[string]string{}
		for dec.More() {
			kt, err := dec.Token()
			if err != nil {
				return badRequest("invalid_json", "malformed JSON")
			}
			key, _ := kt.(string)
			folded := foldKey(key)
			if first, dup := seen[folded]; dup {
				if first == key {
					return badRequest("invalid_json", "field %q appears more than once", key)
				}
				return badRequest("invalid_json", "fields %q and %q differ only in case", first, key)
			}
			seen[folded] = key
			if !fields[key] {
				for name := range fields {
					if strings.EqualFold(name, key) {
						return badRequest("invalid_json", "unknown field %q (field names are case-sensitive; did you mean %q?)", key, name)
					}
				}
			}
			if err := walkKeys(dec, nil); err != nil {
				return err
			}
		}
		_, err = dec.Token() // '}'
	case json.Delim('['):
		for dec.More() {
			if err := walkKeys(dec, nil); err != nil {
				return err
			}
		}
		_, err = dec.Token() // ']'
	}
	if err != nil {
		return badRequest("invalid_json", "malformed JSON")
	}
	return nil
}

// foldKey maps every rune of s to the smallest rune of its Unicode simple
// case-folding orbit, so two keys that strings.EqualFold (and
// encoding/json's field matching) treat as equal fold to the same string.
func foldKey(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	for _, r := range s {
		least := r
		for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
			least = min(least, f)
		}
		b.WriteRune(least)
	}
	return b.String()
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
