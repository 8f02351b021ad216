package app

import (
	"net/mail"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Input bounds enforced by the validators below. They are part of the API
// contract (the OpenAPI document repeats them).
const (
	UsernameMinLen = 3
	UsernameMaxLen = 50
	EmailMaxLen    = 254 // RFC 5321 path limit
	PasswordMinLen = 8
	PasswordMaxLen = 128 // bounds the cost of hashing hostile input
	ItemNameMaxLen = 200
	ItemDescMaxLen = 2000
)

// FieldError is one invalid input field: the JSON field name and a message
// safe to show to the caller.
type FieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

// ValidationError lists every invalid field of one input, so the caller can
// fix them all at once. httpapi answers it with 422.
type ValidationError struct {
	Fields []FieldError
}

// Error implements error.
func (e *ValidationError) Error() string {
	var b strings.Builder
	b.WriteString("invalid input: ")
	for i, f := range e.Fields {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(f.Field)
		b.WriteString(": ")
		b.WriteString(f.Message)
	}
	return b.String()
}

type validator struct{ fields []FieldError }

func (v *validator) add(field, msg string) { v.fields = append(v.fields, FieldError{field, msg}) }

func (v *validator) err() error {
	if len(v.fields) == 0 {
		return nil
	}
	return &ValidationError{Fields: v.fields}
}

// Signup is the input of account creation.
type Signup struct {
	Username string
	Email    string
	Password string
}

// Validate reports every invalid field of s as a *ValidationError, or nil.
func (s Signup) Validate() error {
	var v validator
	if msg := checkUsername(s.Username); msg != "" {
		v.add("username", msg)
	}
	if msg := checkEmail(s.Email); msg != "" {
		v.add("email", msg)
	}
	if msg := checkPassword(s.Password); msg != "" {
		v.add("password", msg)
	} else if msg := checkPasswordContext(s.Password, s.Username, s.Email); msg != "" {
		v.add("password", msg)
	}
	return v.err()
}

// Login is the input of authentication. Validate only rejects inputs that
// cannot possibly match an account, without saying which rule they break
// (the answer to a wrong password and an unknown user is the same).
type Login struct {
	Username string
	Password string
}

// Validate reports missing or oversized fields as a *ValidationError.
func (l Login) Validate() error {
	var v validator
	if l.Username == "" {
		v.add("username", "is required")
	} else if utf8.RuneCountInString(l.Username) > UsernameMaxLen {
		v.add("username", "is too long")
	}
	if l.Password == "" {
		v.add("password", "is required")
	} else if utf8.RuneCountInString(l.Password) > PasswordMaxLen {
		v.add("password", "is too long")
	}
	return v.err()
}

// ItemInput is the writable part of an item (create and replace).
type ItemInput struct {
	Name        string
	Description string
}

// Validate reports every invalid field of in as a *ValidationError, or nil.
func (in ItemInput) Validate() error {
	var v validator
	switch n := utf8.RuneCountInString(in.Name); {
	case strings.TrimSpace(in.Name) == "":
		v.add("name", "is required")
	case n > ItemNameMaxLen:
		v.add("name", "must be at most 200 characters")
	case hasControl(in.Name, false):
		v.add("name", "must not contain control characters")
	}
	switch {
	case utf8.RuneCountInString(in.Description) > ItemDescMaxLen:
		v.add("description", "must be at most 2000 characters")
	case hasControl(in.Description, true):
		v.add("description", "must not contain control characters other than newline and tab")
	}
	return v.err()
}

func checkUsername(s string) string {
	if s == "" {
		return "is required"
	}
	if n := len(s); n < UsernameMinLen || n > UsernameMaxLen {
		return "must be between 3 and 50 characters"
	}
	for _, r := range s {
		if !(r == '_' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
			return "may contain only ASCII letters, digits and underscore"
		}
	}
	return ""
}

func checkEmail(s string) string {
	if s == "" {
		return "is required"
	}
	if len(s) > EmailMaxLen {
		return "must be at most 254 characters"
	}
	a, err := mail.ParseAddress(s)
	// ParseAddress accepts "Name <addr>" and comments; an API field wants
	// the bare address only.
	if err != nil || a.Address != s || a.Name != "" {
		return "must be a valid email address"
	}
	at := strings.LastIndexByte(s, '@')
	domain := s[at+1:]
	if !strings.Contains(domain, ".") || strings.HasPrefix(domain, ".") || strings.HasSuffix(domain, ".") ||
		strings.Contains(domain, "..") || strings.ContainsAny(s, "\"[] ") {
		return "must be a valid email address"
	}
	return ""
}

func checkPassword(s string) string {
	n := utf8.RuneCountInString(s)
	if n < PasswordMinLen {
		return "must be at least 8 characters"
	}
	if n > PasswordMaxLen {
		return "must be at most 128 characters"
	}
	var upper, lower, digit, special bool
	for _, r := range s {
		switch {
		case unicode.IsUpper(r):
			upper = true
		case unicode.IsLower(r):
			lower = true
		case unicode.IsDigit(r):
			digit = true
		case unicode.IsControl(r):
			return "must not contain control characters"
		default:
			special = true
		}
	}
	var missing []string
	if !upper {
		missing = append(missing, "an uppercase letter")
	}
	if !lower {
		missing = append(missing, "a lowercase letter")
	}
	if !digit {
		missing = append(missing, "a digit")
	}
	if !special {
		missing = append(missing, "a special character")
	}
	if len(missing) > 0 {
		return "must contain " + strings.Join(missing, ", ")
	}
	return ""
}

// checkPasswordContext rejects a password that equals or contains, ignoring
// case, the account's username, its email address or the part of the email
// before the @ (at least UsernameMinLen characters): the first guesses of
// anyone who knows the account.
func checkPasswordContext(password, username, email string) string {
	pw := strings.ToLower(password)
	contains := func(s string) bool {
		return utf8.RuneCountInString(s) >= UsernameMinLen && strings.Contains(pw, strings.ToLower(s))
	}
	switch {
	case contains(username):
		return "must not contain the username"
	case contains(email):
		return "must not contain the email address"
	}
	if at := strings.LastIndexByte(email, '@'); at > 0 && contains(email[:at]) {
		return "must not contain the email address"
	}
	return ""
}

func hasControl(s string, allowNewline bool) bool {
	for _, r := range s {
		if allowNewline && (r == '\n' || r == '\t' || r == '\r') {
			continue
		}
		if unicode.IsControl(r) {
			return true
		}
	}
	return false
}
