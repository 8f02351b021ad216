package httpapi

import (
	"context"
	"flag"
	"fmt"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/glasshouse-dev/glasshouse/internal/integration"
)

var docsScreenshots = flag.Bool("docs-screenshots", false, "TestDocsInChromium also writes docs/swagger-ui.png and docs/redoc.png at the repository root")

// chromiumPath is Debian's Chromium, which .ci/run installs.
const chromiumPath = "/usr/bin/chromium"

// browser starts headless Chromium for one test and collects what the page
// reports as an error: uncaught exceptions, console.error, and browser log
// entries at error level (CSP violations and failed loads among them).
func browser(t *testing.T) (context.Context, func() []string) {
	t.Helper()
	integration.Short(t, "headless Chromium")
	if _, err := exec.LookPath(chromiumPath); err != nil {
		integration.Skip(t, "Chromium not installed (%v): apt-get install chromium", err)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath),
		chromedp.NoSandbox, // CI runs as root
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 1400),
	)
	var mu sync.Mutex
	var errs []string
	record := func(ev any) { // runs in chromedp's read loop: only append
		var msg string
		switch ev := ev.(type) {
		case *runtime.EventExceptionThrown:
			msg = "exception: " + ev.ExceptionDetails.Text
			if ex := ev.ExceptionDetails.Exception; ex != nil {
				msg += " " + ex.Description
			}
		case *runtime.EventConsoleAPICalled:
			if ev.Type != runtime.ConsoleAPICalledTypeError {
				return
			}
			var parts []string
			for _, a := range ev.Args {
				parts = append(parts, string(a.Value)+a.Description)
			}
			msg = "console.error: " + strings.Join(parts, " ")
		case *cdplog.EventEntryAdded:
			if ev.Entry.Level != cdplog.EntryLevelError || strings.HasSuffix(ev.Entry.URL, "/favicon.ico") {
				return
			}
			msg = fmt.Sprintf("log (%s): %s %s", ev.Entry.Source, ev.Entry.Text, ev.Entry.URL)
		default:
			return
		}
		mu.Lock()
		errs = append(errs, msg)
		mu.Unlock()
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(actx, chromedp.WithListener(record))
	// A hang guard, not a timing assertion: a page that never renders fails
	// here instead of at the package's test timeout.
	ctx, cancelTimeout := context.WithTimeout(ctx, 2*time.Minute)
	t.Cleanup(func() { cancelTimeout(); cancelCtx(); cancelAlloc() })
	if err := chromedp.Do(ctx); err != nil { // starts the browser
		t.Fatalf("start Chromium: %v", err)
	}
	return ctx, func() []string { mu.Lock(); defer mu.Unlock(); return append([]string(nil), errs...) }
}

// TestDocsInChromium drives the real documentation pages as a person would:
// on /docs (Swagger UI) it authorizes with a bearer token, and again
// through the OAuth2 password flow (username and password), tries GET
// /api/v1/users/me each time and sees 200 with the request's duration; on /redoc it
// sees the operations listed. Neither page may log an error (a CSP
// violation would).
func TestDocsInChromium(t *testing.T) {
	f := newFixture(t)
	_, token := f.signup(t, "docs_reader")
	srv := httptest.NewServer(f.h)
	t.Cleanup(srv.Close)

	const op = "#operations-users-me"
	// tryMe executes GET /api/v1/users/me from the page, already
	// authorized, and checks it answered 200 with the user.
	tryMe := func(t *testing.T, ctx context.Context, errs func() []string, shot string) {
		t.Helper()
		err := chromedp.Do(ctx,
			chromedp.Click(chromedp.CSS(op+" .opblock-summary-control")),
			chromedp.Click(chromedp.CSS(op+" .try-out__btn")),
			chromedp.Click(chromedp.CSS(op+" .execute")),
			chromedp.WaitVisible(chromedp.CSS(op+" .live-responses-table tbody .response-col_status")),
			chromedp.ScrollIntoView(chromedp.CSS(op+" .responses-inner")),
			screenshot(t, shot),
		)
		if err != nil {
			t.Fatalf("Swagger UI: %v", err)
		}
		status := text(t, ctx, op+" .live-responses-table tbody .response-col_status")
		body := text(t, ctx, op+" .live-responses-table tbody .response-col_description")
		page := text(t, ctx, "body")
		if strings.TrimSpace(status) != "200" || !strings.Contains(body, `"docs_reader"`) {
			t.Errorf("GET /api/v1/users/me from Swagger UI: status %q, body %q; want 200 with the user", status, body)
		}
		if !strings.Contains(page, "Request duration") {
			t.Error("Swagger UI does not show the request duration")
		}
		if e := errs(); len(e) > 0 {
			t.Errorf("the page reported errors:\n%s", strings.Join(e, "\n"))
		}
	}

	t.Run("swagger-ui", func(t *testing.T) {
		ctx, errs := browser(t)
		bearer := ".modal-ux .auth-container:has(input[aria-label='auth-bearer-value'])"
		err := chromedp.Do(ctx,
			chromedp.Navigate(srv.URL+"/docs"),
			chromedp.WaitVisible(chromedp.CSS(op)),
			chromedp.Click(chromedp.CSS(".auth-wrapper .authorize")),
			chromedp.WaitVisible(chromedp.CSS(bearer+" input")),
			chromedp.SendKeys(chromedp.CSS(bearer+" input"), token),
			chromedp.Click(chromedp.CSS(bearer+" .auth-btn-wrapper .authorize")),
			chromedp.Click(chromedp.CSS(".modal-ux .close-modal")),
			chromedp.WaitNotPresent(chromedp.CSS(".modal-ux")),
		)
		if err != nil {
			t.Fatalf("Swagger UI bearer authorization: %v", err)
		}
		tryMe(t, ctx, errs, "swagger-ui.png")
	})

	// The OAuth2 password flow: Swagger UI posts the username and password
	// as a form to the token URL, then sends the token it gets.
	t.Run("swagger-ui-password-flow", func(t *testing.T) {
		ctx, errs := browser(t)
		oauth := ".modal-ux .auth-container:has(label[for=oauth_username])"
		err := chromedp.Do(ctx,
			chromedp.Navigate(srv.URL+"/docs"),
			chromedp.WaitVisible(chromedp.CSS(op)),
			chromedp.Click(chromedp.CSS(".auth-wrapper .authorize")),
			chromedp.WaitVisible(chromedp.CSS(oauth+" #oauth_username")),
			chromedp.SendKeys(chromedp.CSS(oauth+" #oauth_username"), "docs_reader"),
			chromedp.SendKeys(chromedp.CSS(oauth+" #oauth_password"), "Passw0rd!"),
			chromedp.Click(chromedp.CSS(oauth+" .auth-btn-wrapper .authorize")),
			// Authorized: the username input is replaced by its value.
			chromedp.WaitNotPresent(chromedp.CSS(oauth+" #oauth_username")),
		)
		if err != nil {
			t.Fatalf("Swagger UI password flow: %v", err)
		}
		if got := text(t, ctx, oauth); !strings.Contains(got, "Authorized") {
			t.Fatalf("after the password flow the oauth2 section reads %q, want Authorized", got)
		}
		if err := chromedp.Do(ctx,
			chromedp.Click(chromedp.CSS(".modal-ux .close-modal")),
			chromedp.WaitNotPresent(chromedp.CSS(".modal-ux")),
		); err != nil {
			t.Fatalf("close the Authorize dialog: %v", err)
		}
		tryMe(t, ctx, errs, "swagger-ui-password.png")
	})

	t.Run("redoc", func(t *testing.T) {
		ctx, errs := browser(t)
		err := chromedp.Do(ctx,
			chromedp.Navigate(srv.URL+"/redoc"),
			chromedp.WaitVisible(chromedp.CSS(`[data-section-id="operation/createItem"]`)),
			screenshot(t, "redoc.png"),
		)
		if err != nil {
			t.Fatalf("ReDoc: %v", err)
		}
		content := text(t, ctx, ".api-content")
		for _, want := range []string{"Create an item", "The caller's account", "/api/v1/items/{id}"} {
			if !strings.Contains(content, want) {
				t.Errorf("ReDoc does not list %q", want)
			}
		}
		// ReDoc's sidebar footer always asks its vendor's CDN for a logo;
		// the page's CSP blocks it, which is the one error expected here
		// (and proof that nothing from another origin loads).
		var unexpected []string
		blockedLogo := false
		for _, e := range errs() {
			if strings.Contains(e, "https://cdn.redoc.ly/") && strings.Contains(e, "Content Security Policy") {
				blockedLogo = true
				continue
			}
			unexpected = append(unexpected, e)
		}
		if len(unexpected) > 0 {
			t.Errorf("the page reported errors:\n%s", strings.Join(unexpected, "\n"))
		}
		t.Logf("ReDoc's CDN logo blocked by CSP: %v", blockedLogo)
	})
}

// text is the visible text of the first element matching the CSS selector.
func text(t *testing.T, ctx context.Context, sel string) string {
	t.Helper()
	s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		t.Fatalf("text of %s: %v", sel, err)
	}
	return s
}

// screenshot saves the viewport as docs/NAME at the repository root with
// -docs-screenshots, and otherwise into the test's temporary directory (so
// the capture path is exercised either way).
func screenshot(t *testing.T, name string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, target *chromedp.Target) error {
		png, err := chromedp.CaptureScreenshot()(ctx, target)
		if err != nil {
			return err
		}
		dir := t.TempDir()
		if *docsScreenshots {
			dir = filepath.Join("..", "..", "docs")
		}
		return os.WriteFile(filepath.Join(dir, name), png, 0o644)
	})
}
