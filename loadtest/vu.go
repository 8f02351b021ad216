package loadtest

import (
	"context"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"time"
)

// VU is a virtual user: the state one iteration function runs with. A VU
// runs one iteration at a time; its methods must be called only from the
// iteration (or Setup/Teardown) it was passed to, never concurrently.
type VU struct {
	// ID is unique in the run, from 1 (0 is the Setup/Teardown VU).
	ID int
	// IDInScenario numbers the scenario's VUs from 1.
	IDInScenario int
	// Iteration counts this VU's iterations in its scenario, from 0.
	Iteration int64
	// Scenario is the scenario's name ("" in Setup/Teardown).
	Scenario string
	// State is free for the test's own per-VU data (what a k6 script keeps
	// in VU-global variables); the engine never touches it.
	State any

	r    *runner
	scen *scenarioRun
	data any
	rng  *rand.Rand

	userTags map[string]string // vu.SetTag
	group    string            // "::a::b"

	// per-iteration
	lag       time.Duration // schedule lag of the current iteration
	scheduled int64         // intended start of the current iteration (runner nanos)

	// tag-set caches, cleared when tags change
	baseTags   map[string]*TagSet // by group
	checkCache map[[2]string]*TagSet
	httpCache  map[httpKey]*httpSeries

	http vuHTTP
}

func newVU(r *runner, id int, s *scenarioRun, idInScenario int) *VU {
	vu := &VU{ID: id, IDInScenario: idInScenario, r: r, scen: s,
		rng:        rand.New(rand.NewPCG(uint64(id), uint64(time.Now().UnixNano()))),
		baseTags:   map[string]*TagSet{},
		checkCache: map[[2]string]*TagSet{},
		httpCache:  map[httpKey]*httpSeries{},
	}
	if s != nil {
		vu.Scenario = s.sc.Name
	}
	vu.data = r.data
	vu.http.init(vu)
	return vu
}

// ScheduledAt is the current iteration's intended start: for arrival-rate
// executors the time the schedule assigned to it (before any lag), for the
// others its actual start.
func (vu *VU) ScheduledAt() time.Time { return vu.r.wall(vu.scheduled) }

// Data returns Setup's result (nil without Setup). Treat it as read-only:
// every VU shares it.
func (vu *VU) Data() any { return vu.data }

// Rand returns the VU's own random source (not safe to share).
func (vu *VU) Rand() *rand.Rand { return vu.rng }

// SetTag adds a tag to every later sample of this VU (k6's
// exec.vu.tags[k] = v); an empty value removes it.
func (vu *VU) SetTag(k, v string) {
	if vu.userTags == nil {
		vu.userTags = map[string]string{}
	}
	if v == "" {
		delete(vu.userTags, k)
	} else {
		vu.userTags[k] = v
	}
	clear(vu.baseTags)
	clear(vu.checkCache)
	clear(vu.httpCache)
}

// Logf logs a message prefixed with the VU and scenario (rate-limited like
// every log line of a run).
func (vu *VU) Logf(format string, args ...any) {
	vu.r.logf("vu=%d scenario=%s: "+format, append([]any{vu.ID, vu.Scenario}, args...)...)
}

// Check records a check named name that passed when ok (k6's check()): a
// sample of the checks Rate tagged check=name, in the current group. It
// returns ok. Checks alone never fail a test; add a threshold such as
// "checks": rate>0.99.
func (vu *VU) Check(name string, ok bool) bool {
	v := 0.0
	if ok {
		v = 1
	}
	now := time.Now()
	ck := [2]string{vu.group, name}
	ts, ok2 := vu.checkCache[ck]
	if !ok2 {
		if len(vu.checkCache) > 1000 {
			clear(vu.checkCache)
		}
		ts = vu.tagsWith(map[string]string{"check": name})
		vu.checkCache[ck] = ts
	}
	vu.r.reg.record(vu.r.checks, ts, v, now)
	return ok
}

// Group runs fn as a named group (k6's group()): samples inside are tagged
// group="::name" (nested groups append "::inner") and the group's duration
// is recorded in group_duration. It returns fn's error.
func (vu *VU) Group(name string, fn func() error) error {
	parent := vu.group
	vu.group = parent + "::" + name
	start := time.Now()
	err := fn()
	end := time.Now()
	vu.r.reg.record(vu.r.groupDuration, vu.tags(), ms(end.Sub(start)), end)
	vu.group = parent
	return err
}

// Add records value v of custom metric m with the VU's current tags.
func (vu *VU) Add(m Metric, v float64) { vu.AddTagged(m, v, nil) }

// AddTagged records value v of custom metric m with the VU's current tags
// plus tags.
func (vu *VU) AddTagged(m Metric, v float64, tags map[string]string) {
	st, err := vu.r.reg.register(m)
	if err != nil {
		vu.r.logf("%v", err)
		return
	}
	ts := vu.tags()
	if len(tags) > 0 {
		ts = vu.tagsWith(tags)
	}
	vu.r.reg.record(st, ts, v, time.Now())
}

// Sleep pauses for d or until ctx is done (k6's sleep()); it returns
// ctx.Err() when interrupted.
func Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// tags returns the interned tag set of the VU's ordinary samples: global,
// scenario and VU tags plus scenario and group.
func (vu *VU) tags() *TagSet {
	if ts, ok := vu.baseTags[vu.group]; ok {
		return ts
	}
	ts := vu.r.reg.tagSet(vu.tagMap(nil))
	vu.baseTags[vu.group] = ts
	return ts
}

func (vu *VU) tagsWith(extra map[string]string) *TagSet {
	return vu.r.reg.tagSet(vu.tagMap(extra))
}

func (vu *VU) tagMap(extra map[string]string) map[string]string {
	m := make(map[string]string, 8)
	maps.Copy(m, vu.r.test.Options.Tags)
	if vu.scen != nil {
		maps.Copy(m, vu.scen.sc.Tags)
		m["scenario"] = vu.scen.sc.Name
	}
	maps.Copy(m, vu.userTags)
	m["group"] = vu.group
	maps.Copy(m, extra)
	return m
}

// ms converts a duration to k6's float milliseconds.
func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// groupID renders a group path for summaries: "::a::b" -> "a › b".
func groupLabel(path string) string {
	return strings.Join(slices.DeleteFunc(strings.Split(path, "::"), func(s string) bool { return s == "" }), " › ")
}
