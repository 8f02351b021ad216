// Package scenarios holds the glasshouse API's load tests as Go values:
// smoke, average, stress, spike, soak and breakpoint. Every scenario signs up
// a pool of users and logs each in once during setup (login is rate-limited
// and argon2id-hashed, so tokens are reused), then runs a realistic mix of
// item reads and writes with a check on every response. Thresholds are
// derived from the SLO spec (alerts/slo.yaml), never written by hand.
//
// It imports the loadtest engine and alerts/slo; it never imports app/:
// it talks to the API over HTTP only, as a user would.
package scenarios

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/glasshouse-dev/glasshouse/alerts/slo"
	"github.com/glasshouse-dev/glasshouse/loadtest"
)

// Names lists the scenarios in the order a test campaign runs them.
func Names() []string {
	return []string{"smoke", "average", "stress", "spike", "soak", "breakpoint"}
}

// Config parameterises a scenario. Zero values take each scenario's
// default.
type Config struct {
	// Target is the API's base URL, e.g. http://127.0.0.1:8080.
	Target string
	// SLO is the spec thresholds are derived from (slo.Load("alerts/slo.yaml")).
	SLO slo.Spec
	// Users is the size of the pool signed up and logged in during setup.
	Users int
	// Rate is the steady iterations per second of the arrival-rate
	// scenarios (the peak for spike and breakpoint).
	Rate int
	// VUs is the number of VUs of the smoke scenario.
	VUs int
	// Duration is the scenario's total length; stages scale with it.
	Duration time.Duration
	// RunID makes the pool's usernames unique; default the current time.
	RunID string
}

// Build returns the named scenario as a loadtest.Test.
func Build(name string, c Config) (loadtest.Test, error) {
	var errs []error
	if u, err := url.Parse(c.Target); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		errs = append(errs, fmt.Errorf("target %q: want http(s)://host:port", c.Target))
	}
	if len(c.SLO.SLOs) == 0 {
		errs = append(errs, errors.New("SLO spec: no SLOs to derive thresholds from"))
	}
	if c.Users < 0 || c.Rate < 0 || c.VUs < 0 || c.Duration < 0 {
		errs = append(errs, errors.New("users, rate, vus and duration must not be negative"))
	}
	if !slices.Contains(Names(), name) {
		errs = append(errs, fmt.Errorf("unknown scenario %q (want one of %s)", name, strings.Join(Names(), ", ")))
	}
	if err := errors.Join(errs...); err != nil {
		return loadtest.Test{}, err
	}
	if c.RunID == "" {
		c.RunID = strconv.FormatInt(time.Now().UnixNano()%1e10, 36)
	}
	c.Target = strings.TrimRight(c.Target, "/")
	d := func(def time.Duration) time.Duration {
		if c.Duration > 0 {
			return c.Duration
		}
		return def
	}
	rate := func(def int) int {
		if c.Rate > 0 {
			return c.Rate
		}
		return def
	}
	// frac splits the total duration into stages.
	frac := func(total time.Duration, f float64) time.Duration {
		return time.Duration(float64(total) * f).Round(time.Millisecond)
	}

	var sc loadtest.Scenario
	users := 20
	var abort bool
	var think time.Duration
	switch name {
	case "smoke":
		users = 3
		think = 200 * time.Millisecond // closed loop: pace each VU like a person
		sc = loadtest.Scenario{Executor: loadtest.ConstantVUs{VUs: max(c.VUs, 2), Duration: d(30 * time.Second)}}
	case "average":
		total, r := d(3*time.Minute), rate(20)
		sc = loadtest.Scenario{Executor: loadtest.RampingArrivalRate{StartRate: 0, PreAllocatedVUs: 10, MaxVUs: 20 * r,
			Stages: []loadtest.Stage{stage(frac(total, 0.1), r), stage(frac(total, 0.8), r), stage(frac(total, 0.1), 0)}}}
	case "stress":
		total, r := d(5*time.Minute), rate(60)
		users = 40
		sc = loadtest.Scenario{Executor: loadtest.RampingArrivalRate{StartRate: 0, PreAllocatedVUs: 20, MaxVUs: 20 * r,
			Stages: []loadtest.Stage{stage(frac(total, 0.2), r), stage(frac(total, 0.6), r), stage(frac(total, 0.2), 0)}}}
	case "spike":
		total, r := d(90*time.Second), rate(150)
		users = 40
		base := max(1, r/30)
		sc = loadtest.Scenario{Executor: loadtest.RampingArrivalRate{StartRate: base, PreAllocatedVUs: 20, MaxVUs: 20 * r,
			Stages: []loadtest.Stage{stage(frac(total, 0.2), base), stage(frac(total, 0.1), r), stage(frac(total, 0.3), r), stage(frac(total, 0.1), base), stage(frac(total, 0.3), base)}}}
	case "soak":
		total, r := d(time.Hour), rate(20)
		sc = loadtest.Scenario{Executor: loadtest.ConstantArrivalRate{Rate: r, Duration: total, PreAllocatedVUs: 10, MaxVUs: 20 * r}}
	case "breakpoint":
		total, r := d(10*time.Minute), rate(1000)
		users = 50
		abort = true
		sc = loadtest.Scenario{Executor: loadtest.RampingArrivalRate{StartRate: 0, PreAllocatedVUs: 50, MaxVUs: 5 * r,
			Stages: []loadtest.Stage{stage(total, r)}}}
	}
	if c.Users > 0 {
		users = c.Users
	}
	sc.Name = name
	sc.GracefulStop = 10 * time.Second

	th, metrics, expected, observe := Thresholds(c.SLO, abort)
	if name == "smoke" {
		// Smoke is the functional gate too: every check must pass.
		th["checks"] = []loadtest.Threshold{loadtest.T("rate==1")}
	}
	api := &api{target: c.Target, runID: c.RunID, users: users, think: think, sweep: name == "smoke"}
	sc.Exec = api.iteration
	return loadtest.Test{
		Scenarios:  []loadtest.Scenario{sc},
		Thresholds: th,
		Metrics:    metrics,
		Setup:      api.setup,
		Options: loadtest.Options{
			ResponseCallback: expected,
			OnResponse:       observe,
			Tags:             map[string]string{"testid": name + "-" + c.RunID},
		},
	}, nil
}

// Thresholds derives a test's thresholds from the SLO spec:
//
//   - an availability SLO with objective o treats only 5xx responses and
//     network errors as failed (the returned response callback) and
//     requires http_req_failed rate<(1-o);
//   - a latency SLO named N with objective o and threshold T records the
//     Rate slo_N_good (1 when a non-5xx response took less than T, 0
//     otherwise, nothing for 5xx; the returned observer) and requires
//     rate>=o.
//
// With abortOnFail every threshold stops the test once it fails, after a
// 30 s warm-up (the breakpoint test).
func Thresholds(spec slo.Spec, abortOnFail bool) (th map[string][]loadtest.Threshold, metrics []loadtest.Metric, expected func(int) bool, observe func(*loadtest.VU, *loadtest.Response)) {
	th = map[string][]loadtest.Threshold{}
	mk := func(expr string) loadtest.Threshold {
		t := loadtest.T(expr)
		if abortOnFail {
			t.AbortOnFail, t.DelayAbortEval = true, 30*time.Second
		}
		return t
	}
	type latency struct {
		m         loadtest.Metric
		threshold time.Duration
	}
	var lats []latency
	for _, o := range spec.SLOs {
		switch o.SLI.Type {
		case slo.Availability:
			expected = loadtest.ExpectedStatuses(100, 499)
			th["http_req_failed"] = append(th["http_req_failed"], mk("rate<"+num(1-o.Objective)))
		case slo.Latency:
			m := loadtest.NewRate("slo_" + strings.ReplaceAll(o.Name, "-", "_") + "_good")
			metrics = append(metrics, m)
			lats = append(lats, latency{m, time.Duration(o.SLI.ThresholdSeconds * float64(time.Second))})
			th[m.Name] = append(th[m.Name], mk("rate>="+num(o.Objective)))
		}
	}
	if len(lats) > 0 {
		observe = func(vu *loadtest.VU, res *loadtest.Response) {
			if res.Err != nil || res.Status >= 500 {
				return
			}
			for _, l := range lats {
				good := 0.0
				if res.Timings.Duration < l.threshold {
					good = 1
				}
				vu.Add(l.m, good)
			}
		}
	}
	return th, metrics, expected, observe
}

func stage(d time.Duration, target int) loadtest.Stage {
	return loadtest.Stage{Duration: d, Target: target}
}

// num formats an objective-derived number without float noise
// (1-0.999 = 0.001, not 0.0010000000000000009).
func num(f float64) string {
	return strconv.FormatFloat(math.Round(f*1e12)/1e12, 'f', -1, 64)
}

// api is the client side of the glasshouse API.
type api struct {
	target string
	runID  string
	users  int
	think  time.Duration // closed-loop pause after each action: think..2.5*think
	// sweep makes each VU walk every action in turn (sweepOrder) instead of
	// drawing from the weighted mix: a smoke run is a functional gate, and a
	// few dozen weighted draws may miss a route altogether.
	sweep bool
}

// user is a pooled account; its token is shared by the VUs that use it.
type user struct {
	name, password string
	mu             sync.Mutex
	header         http.Header // Authorization, Content-Type, User-Agent
	loginMu        sync.Mutex  // one re-login at a time (login is limited to 5/min)
}

func (u *user) headers() http.Header {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.header
}

type pool struct{ users []*user }

// vuState is a VU's own data: the items it created and may change.
type vuState struct {
	items []int64
	seq   int
	turn  int // the next position in sweepOrder
}

const userAgent = "glasshouse-load/1 (k6-compatible)"

// setup signs up the pool and logs each user in once.
func (a *api) setup(ctx context.Context, vu *loadtest.VU) (any, error) {
	p := &pool{}
	for i := range a.users {
		u := &user{name: fmt.Sprintf("load_%s_%d", a.runID, i), password: "Load-Test-" + a.runID + "!9a"}
		body := fmt.Sprintf(`{"username":%q,"email":%q,"password":%q}`, u.name, u.name+"@example.com", u.password)
		res := vu.Post(ctx, a.target+"/api/v1/users", []byte(body), &loadtest.Params{Name: "/api/v1/users", Header: jsonHeader})
		if !vu.Check("signup status is 201", res.Status == http.StatusCreated) {
			return nil, fmt.Errorf("sign up %s: status %d %v: %s", u.name, res.Status, res.Err, truncate(res.Body))
		}
		if err := a.login(ctx, vu, u); err != nil {
			return nil, err
		}
		p.users = append(p.users, u)
	}
	return p, nil
}

var jsonHeader = http.Header{"Content-Type": {"application/json"}, "User-Agent": {userAgent}}

func (a *api) login(ctx context.Context, vu *loadtest.VU, u *user) error {
	body := fmt.Sprintf(`{"username":%q,"password":%q}`, u.name, u.password)
	res := vu.Post(ctx, a.target+"/api/v1/auth/login", []byte(body), &loadtest.Params{Name: "/api/v1/auth/login", Header: jsonHeader})
	var tok struct {
		AccessToken string `json:"access_token"`
		TokenType   string `json:"token_type"`
	}
	ok := res.Status == http.StatusOK && res.JSON(&tok) == nil && tok.AccessToken != ""
	if !vu.Check("login returns a token", ok) {
		return fmt.Errorf("log in %s: status %d %v: %s", u.name, res.Status, res.Err, truncate(res.Body))
	}
	u.mu.Lock()
	u.header = http.Header{"Authorization": {"Bearer " + tok.AccessToken}, "Content-Type": {"application/json"}, "User-Agent": {userAgent}}
	u.mu.Unlock()
	return nil
}

func truncate(b []byte) string {
	if len(b) > 200 {
		return string(b[:200]) + "..."
	}
	return string(b)
}

// iteration is one user action, chosen with realistic weights: browsing
// dominates, writes are rarer.
func (a *api) iteration(ctx context.Context, vu *loadtest.VU) error {
	p, ok := vu.Data().(*pool)
	if !ok || len(p.users) == 0 {
		return loadtest.Abort("setup did not produce a user pool")
	}
	u := p.users[(vu.ID-1)%len(p.users)]
	st, _ := vu.State.(*vuState)
	if st == nil {
		st = &vuState{}
		vu.State = st
	}
	if a.think > 0 {
		defer func() {
			loadtest.Sleep(ctx, a.think+time.Duration(vu.Rand().Int64N(int64(a.think)*3/2)))
		}()
	}
	act := a.next(vu, st)
	if len(st.items) == 0 && (act == actGet || act == actUpdate || act == actDelete) {
		act = actCreate // the item actions need an item of this VU
	}
	switch act {
	case actCreate:
		return a.createItem(ctx, vu, u, st)
	case actList:
		return a.listItems(ctx, vu, u)
	case actBulk:
		return a.bulkCreate(ctx, vu, u, st)
	case actGet:
		return a.getItem(ctx, vu, u, st)
	case actUpdate:
		return a.updateItem(ctx, vu, u, st)
	case actDelete:
		return a.deleteItem(ctx, vu, u, st)
	default:
		return a.me(ctx, vu, u)
	}
}

// action is one kind of user action of an iteration.
type action int

const (
	actCreate action = iota
	actGet
	actList
	actUpdate
	actBulk
	actMe
	actDelete
)

// sweepOrder is the order in which a sweeping VU takes the actions: the
// first create gives the item actions an item, and an item read comes
// second, so any VU that runs two iterations has read one.
var sweepOrder = [...]action{actCreate, actGet, actList, actUpdate, actBulk, actMe, actDelete}

// next picks the VU's next action: in turn when sweeping, otherwise from
// the mix (38% list, 25% get, 15% create, 2% bulk create, 10% update, 5%
// delete, 5% me).
func (a *api) next(vu *loadtest.VU, st *vuState) action {
	if a.sweep {
		act := sweepOrder[st.turn%len(sweepOrder)]
		st.turn++
		return act
	}
	switch roll := vu.Rand().IntN(100); {
	case roll < 15:
		return actCreate
	case roll < 53:
		return actList
	case roll < 55:
		return actBulk
	case roll < 80:
		return actGet
	case roll < 90:
		return actUpdate
	case roll < 95:
		return actDelete
	default:
		return actMe
	}
}

type item struct {
	ID          int64  `json:"id"`
	Name        string `json:"name"`
	Description string `json:"description"`
}

// do sends a request as u and, when the token has expired (401), logs in
// again and retries once. VUs sharing the user wait for one re-login rather
// than each logging in (login is rate-limited per username).
func (a *api) do(ctx context.Context, vu *loadtest.VU, u *user, method, path, name string, body []byte) *loadtest.Response {
	h := u.headers()
	res := vu.Request(ctx, method, a.target+path, body, &loadtest.Params{Name: name, Header: h})
	if res.Status == http.StatusUnauthorized && a.relogin(ctx, vu, u, h) {
		res = vu.Request(ctx, method, a.target+path, body, &loadtest.Params{Name: name, Header: u.headers()})
	}
	return res
}

// relogin refreshes u's token unless another VU already replaced the
// header the caller used; it reports whether a fresh token is available.
func (a *api) relogin(ctx context.Context, vu *loadtest.VU, u *user, used http.Header) bool {
	u.loginMu.Lock()
	defer u.loginMu.Unlock()
	if cur := u.headers(); cur.Get("Authorization") != used.Get("Authorization") {
		return true
	}
	return a.login(ctx, vu, u) == nil
}

func (a *api) createItem(ctx context.Context, vu *loadtest.VU, u *user, st *vuState) error {
	st.seq++
	want := item{Name: fmt.Sprintf("item %d-%d", vu.ID, st.seq), Description: "created by the " + vu.Scenario + " load test"}
	body := fmt.Sprintf(`{"name":%q,"description":%q}`, want.Name, want.Description)
	res := a.do(ctx, vu, u, http.MethodPost, "/api/v1/items", "/api/v1/items", []byte(body))
	var got item
	ok := res.Status == http.StatusCreated && res.JSON(&got) == nil && got.ID > 0 && got.Name == want.Name
	if vu.Check("create item: 201 with the item", ok) {
		st.items = append(st.items, got.ID)
		if len(st.items) > 50 { // keep the VU's working set bounded
			st.items = st.items[1:]
		}
	}
	return nil
}

// bulkSize is how many items a bulk create of the load test carries: a
// client syncing a batch of offline edits, well under the API's 100.
const bulkSize = 10

func (a *api) bulkCreate(ctx context.Context, vu *loadtest.VU, u *user, st *vuState) error {
	var b strings.Builder
	b.WriteString(`{"items":[`)
	for i := range bulkSize {
		st.seq++
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"name":"item %d-%d","description":"bulk-created by the %s load test"}`, vu.ID, st.seq, vu.Scenario)
	}
	b.WriteString(`]}`)
	res := a.do(ctx, vu, u, http.MethodPost, "/api/v1/items/bulk", "/api/v1/items/bulk", []byte(b.String()))
	var got struct {
		Results []struct {
			Status int   `json:"status"`
			Item   *item `json:"item"`
		} `json:"results"`
		Created int `json:"created"`
	}
	ok := res.Status == http.StatusMultiStatus && res.JSON(&got) == nil && got.Created == bulkSize && len(got.Results) == bulkSize
	if vu.Check("bulk create: 207 with every item created", ok) {
		for _, r := range got.Results {
			if r.Item != nil {
				st.items = append(st.items, r.Item.ID)
			}
		}
		if len(st.items) > 50 { // keep the VU's working set bounded
			st.items = st.items[len(st.items)-50:]
		}
	}
	return nil
}

func (a *api) listItems(ctx context.Context, vu *loadtest.VU, u *user) error {
	res := a.do(ctx, vu, u, http.MethodGet, "/api/v1/items?limit=20", "/api/v1/items", nil)
	var page struct {
		Items []item `json:"items"`
		Total int    `json:"total"`
	}
	ok := res.Status == http.StatusOK && res.JSON(&page) == nil && len(page.Items) <= 20 && page.Total >= len(page.Items)
	vu.Check("list items: 200 with a page", ok)
	return nil
}

func (a *api) pick(vu *loadtest.VU, st *vuState) (int, int64) {
	i := vu.Rand().IntN(len(st.items))
	return i, st.items[i]
}

func (a *api) getItem(ctx context.Context, vu *loadtest.VU, u *user, st *vuState) error {
	_, id := a.pick(vu, st)
	res := a.do(ctx, vu, u, http.MethodGet, "/api/v1/items/"+strconv.FormatInt(id, 10), "/api/v1/items/{id}", nil)
	var got item
	vu.Check("get item: 200 with the item", res.Status == http.StatusOK && res.JSON(&got) == nil && got.ID == id)
	return nil
}

func (a *api) updateItem(ctx context.Context, vu *loadtest.VU, u *user, st *vuState) error {
	_, id := a.pick(vu, st)
	body := fmt.Sprintf(`{"name":"item %d updated","description":"updated at iteration %d"}`, id, vu.Iteration)
	res := a.do(ctx, vu, u, http.MethodPut, "/api/v1/items/"+strconv.FormatInt(id, 10), "/api/v1/items/{id}", []byte(body))
	var got item
	vu.Check("update item: 200 with the change", res.Status == http.StatusOK && res.JSON(&got) == nil && strings.HasSuffix(got.Name, "updated"))
	return nil
}

func (a *api) deleteItem(ctx context.Context, vu *loadtest.VU, u *user, st *vuState) error {
	i, id := a.pick(vu, st)
	res := a.do(ctx, vu, u, http.MethodDelete, "/api/v1/items/"+strconv.FormatInt(id, 10), "/api/v1/items/{id}", nil)
	if vu.Check("delete item: 204", res.Status == http.StatusNoContent) {
		st.items = slices.Delete(st.items, i, i+1)
	}
	return nil
}

func (a *api) me(ctx context.Context, vu *loadtest.VU, u *user) error {
	res := a.do(ctx, vu, u, http.MethodGet, "/api/v1/users/me", "/api/v1/users/me", nil)
	var got struct {
		Username string `json:"username"`
	}
	vu.Check("me: 200 with the user", res.Status == http.StatusOK && res.JSON(&got) == nil && got.Username == u.name)
	return nil
}
