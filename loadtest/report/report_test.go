package report

import (
	"bytes"
	"context"
	"flag"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"golang.org/x/net/html"

	"github.com/glasshouse-dev/glasshouse/internal/integration"
	"github.com/glasshouse-dev/glasshouse/loadtest"
)

var update = flag.Bool("update", false, "rewrite the screenshot loadtest/report.png")

// runReport runs a short real load test against a loopback server (some
// 5xx, some slow responses, a failing threshold, a failing check) and
// returns its HTML report.
func runReport(t *testing.T) []byte {
	t.Helper()
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		i := n.Add(1)
		switch {
		case i%50 == 0:
			w.WriteHeader(http.StatusServiceUnavailable)
		case i%97 == 0:
			w.WriteHeader(http.StatusInternalServerError)
		case i%20 == 0:
			time.Sleep(20 * time.Millisecond)
		}
	}))
	t.Cleanup(srv.Close)
	test := loadtest.Test{
		Scenarios: []loadtest.Scenario{{
			Name: "browse",
			Executor: loadtest.RampingArrivalRate{StartRate: 50, PreAllocatedVUs: 5, MaxVUs: 50,
				Stages: []loadtest.Stage{{Duration: 2 * time.Second, Target: 200}, {Duration: 2 * time.Second, Target: 200}}},
			Exec: func(ctx context.Context, vu *loadtest.VU) error {
				res := vu.Get(ctx, srv.URL+"/items", &loadtest.Params{Name: "/items"})
				vu.Check("status is 200", res.Status == http.StatusOK)
				return nil
			},
		}},
		Thresholds: map[string][]loadtest.Threshold{
			"http_req_failed":   {loadtest.T("rate<0.5")},
			"http_req_duration": {loadtest.T("p(99)<0.001")},
		},
	}
	res, err := loadtest.Run(t.Context(), test, loadtest.RunOptions{Timeline: true})
	if loadtest.ExitCode(err) != loadtest.ExitThresholdsFailed {
		t.Fatalf("err = %v, want the p(99)<0.001 threshold to fail", err)
	}
	if len(res.Timeline) < 2 {
		t.Fatalf("%d timeline points for a 4 s run, want one a second", len(res.Timeline))
	}
	var buf bytes.Buffer
	info := Info{Title: "report test", Started: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
		Options: [][2]string{{"scenario", "browse"}, {"rate (it/s)", "50 -> 200"}}}
	if err := Write(&buf, res, info); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestReportIsSelfContainedHTML parses the report as HTML and walks every
// node: no element loads anything (no src, href, srcset, action, poster,
// link or iframe), no style or script text holds a URL, and the tables
// show the thresholds, checks and options.
func TestReportIsSelfContainedHTML(t *testing.T) {
	page := runReport(t)
	doc, err := html.Parse(bytes.NewReader(page))
	if err != nil {
		t.Fatalf("not HTML: %v", err)
	}
	var scripts, charts int
	var text strings.Builder
	for n := range doc.Descendants() {
		if n.Type == html.TextNode {
			text.WriteString(n.Data)
			continue
		}
		if n.Type != html.ElementNode {
			continue
		}
		switch n.Data {
		case "link", "iframe", "img", "object", "embed", "base":
			t.Errorf("element <%s> in a self-contained report", n.Data)
		case "script", "style":
			if n.Data == "script" {
				scripts++
			}
			for c := range n.Descendants() {
				if c.Type == html.TextNode && (strings.Contains(c.Data, "http://") || strings.Contains(c.Data, "https://") || strings.Contains(c.Data, "url(")) {
					t.Errorf("<%s> text refers to a URL", n.Data)
				}
			}
		}
		for _, a := range n.Attr {
			switch a.Key {
			case "src", "href", "srcset", "action", "poster", "data", "formaction", "xlink:href":
				t.Errorf("<%s %s=%q>: the report must not load anything", n.Data, a.Key, a.Val)
			}
			if strings.Contains(a.Val, "://") {
				t.Errorf("<%s %s=%q> holds a URL", n.Data, a.Key, a.Val)
			}
			if a.Key == "class" && a.Val == "chart" {
				charts++
			}
		}
	}
	if scripts != 3 || charts != 5 {
		t.Errorf("%d scripts and %d chart containers, want 3 (library, data, charts) and 5", scripts, charts)
	}
	for _, want := range []string{"report test", "thresholds failed", "p(99)<0.001", "rate<0.5", "status is 200",
		"ramping-arrival-rate (open)", "50 -> 200", "█ TOTAL RESULTS", "The MIT License", "2026-01-02 03:04:05 UTC"} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("the report's text lacks %q", want)
		}
	}
}

func chromiumPath() string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// TestReportRendersInChromium opens the report from a file in headless
// Chromium, with networking features off, and requires every chart to
// render (five uPlot canvases, the page's own count set after the last
// chart) without a console error or an uncaught exception.
func TestReportRendersInChromium(t *testing.T) {
	bin := chromiumPath()
	if bin == "" {
		integration.Skip(t, "chromium not found (apt-get install chromium)")
	}
	page := runReport(t)
	file := filepath.Join(t.TempDir(), "report.html")
	if err := os.WriteFile(file, page, 0o644); err != nil {
		t.Fatal(err)
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(bin), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck, chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1200, 1900),
		chromedp.Flag("disable-quic", true), chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true),
		chromedp.Flag("hide-scrollbars", true),
	}
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second) // a hang guard, not a timing assertion
	defer cancel()
	actx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	defer cancelAlloc()
	bctx, cancelBrowser := chromedp.NewContext(actx)
	defer cancelBrowser()

	var problems atomic.Pointer[[]string]
	problems.Store(&[]string{})
	add := func(s string) {
		for {
			old := problems.Load()
			next := append(append([]string{}, *old...), s)
			if problems.CompareAndSwap(old, &next) {
				return
			}
		}
	}
	err := chromedp.Listen(bctx, func(ev any) {
		switch ev := ev.(type) {
		case *runtime.EventConsoleAPICalled:
			if ev.Type == runtime.ConsoleAPICalledTypeError || ev.Type == runtime.ConsoleAPICalledTypeAssert {
				var args []string
				for _, a := range ev.Args {
					args = append(args, string(a.Value))
				}
				add("console." + string(ev.Type) + ": " + strings.Join(args, " "))
			}
		case *runtime.EventExceptionThrown:
			add("exception: " + (&chromedp.ExceptionError{ExceptionDetails: ev.ExceptionDetails}).Error())
		}
	})
	if err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	if err := chromedp.Do(bctx, chromedp.Navigate("file://"+file), chromedp.WaitVisible(chromedp.CSS(`body[data-charts="5"]`))); err != nil {
		t.Fatalf("render: %v (problems: %v)", err, *problems.Load())
	}
	canvases, err := chromedp.Run(bctx, chromedp.Evaluate[int](`document.querySelectorAll(".uplot canvas").length`))
	if err != nil {
		t.Fatal(err)
	}
	shot, err := chromedp.Run(bctx, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatal(err)
	}
	if p := *problems.Load(); len(p) > 0 {
		t.Errorf("console errors while rendering: %v", p)
	}
	if canvases != 5 {
		t.Errorf("%d chart canvases rendered, want 5", canvases)
	}
	if *update {
		if err := os.WriteFile(filepath.Join("..", "report.png"), shot, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
