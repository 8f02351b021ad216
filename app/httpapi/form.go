package httpapi

import (
	"errors"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"unicode/utf8"
)

// loginFormFields are the fields of an OAuth2 password-grant token request
// (RFC 6749 section 4.3.2, as FastAPI's OAuth2PasswordRequestForm reads
// them). scope, client_id and client_secret are accepted and ignored: the
// API issues one kind of token to every client.
var loginFormFields = map[string]bool{
	"grant_type": true, "username": true, "password": true,
	"scope": true, "client_id": true, "client_secret": true,
}

// decodeLogin reads a login request as JSON (decode's rules) or as an
// OAuth2 password-grant form (application/x-www-form-urlencoded): grant_type
// is optional but must be "password" when present; every field may appear
// once; unknown fields are 400 invalid_form, like unknown JSON keys. Any
// other media type is 415.
func decodeLogin(r *http.Request) (loginRequest, error) {
	mt, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/x-www-form-urlencoded" {
		req, err := decode[loginRequest](r)
		if re, ok := errors.AsType[*requestError](err); ok && re.status == http.StatusUnsupportedMediaType {
			re.detail = "Content-Type must be application/json or application/x-www-form-urlencoded"
		}
		return req, err
	}
	for k, v := range params {
		if k != "charset" || !strings.EqualFold(v, "utf-8") {
			return loginRequest{}, &requestError{status: http.StatusUnsupportedMediaType, code: "unsupported_media_type",
				detail: "Content-Type must be application/json or application/x-www-form-urlencoded"}
		}
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			return loginRequest{}, &requestError{status: http.StatusRequestEntityTooLarge, code: "body_too_large",
				detail: "request body is larger than the limit"}
		}
		return loginRequest{}, badRequest("unreadable_body", "request body could not be read")
	}
	return decodeLoginForm(body)
}

// decodeLoginForm is decodeLogin's form branch after the body has been read.
func decodeLoginForm(body []byte) (loginRequest, error) {
	vals, err := url.ParseQuery(string(body))
	if err != nil {
		return loginRequest{}, badRequest("invalid_form", "request body is not a valid URL-encoded form")
	}
	for k, v := range vals {
		switch {
		case !loginFormFields[k]:
			return loginRequest{}, badRequest("invalid_form", "unknown form field %q", k)
		case len(v) > 1:
			// The first and the last value would both be plausible
			// readings; a proxy and this server could disagree.
			return loginRequest{}, badRequest("invalid_form", "form field %q is given more than once", k)
		case !utf8.ValidString(v[0]):
			return loginRequest{}, badRequest("invalid_utf8", "form field %q is not valid UTF-8", k)
		}
	}
	if gt, ok := vals["grant_type"]; ok && gt[0] != "password" {
		return loginRequest{}, badRequest("unsupported_grant_type", `grant_type must be "password"`)
	}
	return loginRequest{Username: vals.Get("username"), Password: vals.Get("password")}, nil
}
