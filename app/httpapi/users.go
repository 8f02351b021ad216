package httpapi

import (
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/glasshouse-dev/glasshouse/app"
	"github.com/glasshouse-dev/glasshouse/app/auth"
	"github.com/glasshouse-dev/glasshouse/telemetry"
)

// signupRequest is the body of POST /api/v1/users.
type signupRequest struct {
	Username string `json:"username"`
	Email    string `json:"email"`
	Password string `json:"password"`
}

// loginRequest is the body of POST /api/v1/auth/login, as JSON or as an
// OAuth2 password-grant form (decodeLogin).
type loginRequest struct {
	Username string `json:"username"`
	Password string `json:"password"`
}

// userResponse is a user as the API shows it: never the password hash.
type userResponse struct {
	ID        int64     `json:"id"`
	Username  string    `json:"username"`
	Email     string    `json:"email"`
	CreatedAt time.Time `json:"created_at"`
}

func toUserResponse(u app.User) userResponse {
	return userResponse{ID: u.ID, Username: u.Username, Email: u.Email, CreatedAt: u.CreatedAt}
}

// tokenResponse is the body of a successful login.
type tokenResponse struct {
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"`
	ExpiresIn   int64  `json:"expires_in"` // seconds
}

func handleSignup(log *errorLog, store app.Store, hasher *auth.Hasher, tel *telemetry.Telemetry, m *metrics, gate *hashGate) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		req, err := decode[signupRequest](r)
		if err != nil {
			respondErr(log, w, r, err)
			return
		}
		in := app.Signup{Username: req.Username, Email: req.Email, Password: req.Password}
		if err := in.Validate(); err != nil {
			respondErr(log, w, r, err)
			return
		}
		ip := clientIP(r)
		if !gate.enter(ip) {
			hashBusy(w, r)
			return
		}
		ctx, span := tel.Span(r.Context(), "password.hash")
		hash, err := hasher.Hash(ctx, req.Password)
		gate.leave(ip)
		span.End()
		if err != nil {
			respondErr(log, w, r, err)
			return
		}
		u := app.User{Username: req.Username, Email: req.Email, PasswordHash: hash}
		if err := store.CreateUser(r.Context(), &u); err != nil {
			respondErr(log, w, r, err)
			return
		}
		m.signedUp()
		encode(w, http.StatusCreated, toUserResponse(u))
	})
}

// handleLogin answers unknown users and wrong passwords with the same 401,
// after the same amount of hashing work, so neither the body nor the timing
// tells which usernames exist. Before any hashing, the client's attempts
// over all usernames are limited (LoginIP), then its attempts at this
// username (Login); past the hash gate, attempts get a fast 503.
func handleLogin(s *server, store app.Store) http.Handler {
	log, hasher, tokens, tel := s.errs, s.opts.Hasher, s.opts.Tokens, s.tel
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !s.allow(w, r, "login_ip", "login_ip:"+clientIP(r), s.opts.Limits.LoginIP) {
			return
		}
		req, err := decodeLogin(r)
		if err != nil {
			respondErr(log, w, r, err)
			return
		}
		if err := (app.Login{Username: req.Username, Password: req.Password}).Validate(); err != nil {
			respondErr(log, w, r, err)
			return
		}
		if !s.allow(w, r, "login", "login:"+clientIP(r)+":"+strings.ToLower(req.Username), s.opts.Limits.Login) {
			return
		}
		u, err := store.UserByUsername(r.Context(), req.Username)
		if err != nil && !errors.Is(err, app.ErrNotFound) {
			respondErr(log, w, r, err)
			return
		}
		ip := clientIP(r)
		if !s.hashGate.enter(ip) {
			hashBusy(w, r)
			return
		}
		ctx, span := tel.Span(r.Context(), "password.verify")
		ok, err := hasher.Verify(ctx, req.Password, u.PasswordHash) // "" for unknown users: dummy work, false
		span.End()
		s.hashGate.leave(ip)
		if err != nil {
			respondErr(log, w, r, err)
			return
		}
		if !ok {
			s.metrics.loginAttempt("failure")
			writeProblem(w, r, Problem{Status: http.StatusUnauthorized, Code: "invalid_credentials",
				Detail: "username or password is incorrect"})
			return
		}
		token, err := tokens.Issue(u.ID)
		if err != nil {
			respondErr(log, w, r, err)
			return
		}
		s.metrics.loginAttempt("success")
		encode(w, http.StatusOK, tokenResponse{AccessToken: token, TokenType: "bearer", ExpiresIn: int64(tokens.TTL().Seconds())})
	})
}

func handleMe(log *errorLog, store app.Store) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, err := store.UserByID(r.Context(), userID(r.Context()))
		if errors.Is(err, app.ErrNotFound) {
			// A valid token for a user that no longer exists.
			writeInvalidToken(w, r)
			return
		}
		if err != nil {
			respondErr(log, w, r, err)
			return
		}
		encode(w, http.StatusOK, toUserResponse(u))
	})
}
