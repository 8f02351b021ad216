// Package slo holds the Go types and loader for alerts/slo.yaml, the single
// SLO spec that the rule generator, the dashboards and the load tests read.
//
// It imports only the standard library and a YAML decoder (TestImports);
// it must stay small.
package slo

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// SLI types.
const (
	Availability = "availability" // bad events: 5xx responses
	Latency      = "latency"      // bad events: non-5xx responses slower than Threshold
)

// Metric is the histogram every SLI is computed from (telemetry/README.md).
const Metric = "http_server_request_duration_seconds"

// Spec is the whole file.
type Spec struct {
	// Service is the value of the service label on every generated series.
	Service string `yaml:"service"`
	// Selector holds PromQL label matchers without braces (job="glasshouse-api").
	Selector string `yaml:"selector"`
	// Period is the SLO's compliance window (30d); burn-rate factors derive from it.
	Period Duration `yaml:"period"`
	// Links says where alert annotations point. Optional here; the rule
	// generator requires it.
	Links Links `yaml:"links"`
	// DashboardPrefix starts the uid, title and tag of the service's
	// dashboards ("<prefix>-slo"); empty means Service.
	DashboardPrefix string `yaml:"dashboard_prefix"`
	SLOs            []SLO  `yaml:"slos"`
}

// Prefix is the dashboard uid, title and tag prefix: DashboardPrefix, or
// Service when that is empty.
func (s Spec) Prefix() string {
	if s.DashboardPrefix != "" {
		return s.DashboardPrefix
	}
	return s.Service
}

// DashboardUID is the uid of the service's dashboard of the given kind
// ("red", "slo", "runtime"): Prefix() + "-" + kind.
func (s Spec) DashboardUID(kind string) string { return s.Prefix() + "-" + kind }

var jobRE = regexp.MustCompile(`(?:^|,)\s*job\s*=\s*"([^"\\]*)"`)

// Job is the Prometheus job the selector picks (job="x"), the default of
// the dashboards' job variable; Service when the selector names no single
// job.
func (s Spec) Job() string {
	if m := jobRE.FindStringSubmatch(s.Selector); m != nil {
		return m[1]
	}
	return s.Service
}

// Links are the URL prefixes alert annotations are built from, so a fork
// changes them in one place.
type Links struct {
	// Runbooks is the URL of the alerts/runbooks/ folder, ending in "/";
	// runbook_url is Runbooks + "<file>.md".
	Runbooks string `yaml:"runbooks"`
	// Grafana is the Grafana base URL without a trailing "/"; dashboard
	// links are Grafana + "/d/<uid>".
	Grafana string `yaml:"grafana"`
}

// SLO is one objective.
type SLO struct {
	Name        string  `yaml:"name"`
	Description string  `yaml:"description"`
	Objective   float64 `yaml:"objective"` // e.g. 0.999
	SLI         SLI     `yaml:"sli"`
}

// SLI says which events are bad.
type SLI struct {
	Type             string  `yaml:"type"`
	ThresholdSeconds float64 `yaml:"threshold_seconds"` // latency only
}

// ErrorBudget is 1 - Objective: the allowed share of bad events.
func (s SLO) ErrorBudget() float64 { return 1 - s.Objective }

// Duration is a Prometheus-style duration (30d, 6h, 5m, 90s) in YAML.
type Duration time.Duration

// String formats d the way Prometheus does (largest whole unit).
func (d Duration) String() string { return FormatDuration(time.Duration(d)) }

// UnmarshalYAML parses a Prometheus-style duration.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := ParseDuration(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %w", n.Line, err)
	}
	*d = Duration(v)
	return nil
}

var (
	durRE  = regexp.MustCompile(`^([0-9]+)(ms|s|m|h|d|w)$`)
	nameRE = regexp.MustCompile(`^[a-z][a-z0-9_-]*$`)
	// prefixRE leaves room for "-runtime" in Grafana's 40-character uids.
	prefixRE = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,30}$`)
)

// ParseDuration parses one Prometheus duration unit ("30d", "5m").
func ParseDuration(s string) (time.Duration, error) {
	m := durRE.FindStringSubmatch(strings.TrimSpace(s))
	if m == nil {
		return 0, fmt.Errorf("invalid duration %q (want e.g. 30d, 6h, 5m)", s)
	}
	n, err := strconv.ParseInt(m[1], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("invalid duration %q: %w", s, err)
	}
	unit := map[string]time.Duration{"ms": time.Millisecond, "s": time.Second, "m": time.Minute, "h": time.Hour, "d": 24 * time.Hour, "w": 7 * 24 * time.Hour}[m[2]]
	if n > int64(math.MaxInt64/unit) {
		return 0, fmt.Errorf("invalid duration %q: too long", s)
	}
	return time.Duration(n) * unit, nil
}

// FormatDuration formats d in the largest unit that divides it exactly.
func FormatDuration(d time.Duration) string {
	for _, u := range []struct {
		s string
		d time.Duration
	}{{"w", 7 * 24 * time.Hour}, {"d", 24 * time.Hour}, {"h", time.Hour}, {"m", time.Minute}, {"s", time.Second}} {
		if d > 0 && d%u.d == 0 {
			return strconv.FormatInt(int64(d/u.d), 10) + u.s
		}
	}
	return strconv.FormatInt(d.Milliseconds(), 10) + "ms"
}

// Load reads and validates the spec at path.
func Load(path string) (Spec, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Spec{}, fmt.Errorf("load slo spec: %w", err)
	}
	s, err := Parse(b)
	if err != nil {
		return Spec{}, fmt.Errorf("%s: %w", path, err)
	}
	return s, nil
}

// Parse decodes and validates a spec; unknown fields are errors. Every
// problem is reported at once, each naming its field.
func Parse(b []byte) (Spec, error) {
	var s Spec
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&s); err != nil && !errors.Is(err, io.EOF) {
		return Spec{}, fmt.Errorf("parse slo spec: %w", nameFields(b, err))
	}
	return s, s.Validate()
}

var lineRE = regexp.MustCompile(`line (\d+): `)

// nameFields rewrites each "line N: " of a YAML decoding error (a wrong
// type, a bad duration) as "line N: slos[0].objective: ", so those errors
// name their field as Validate's do. Where several fields share the line
// (flow style), the one whose value the message quotes is named; if that is
// still ambiguous the line alone stays. The result wraps err.
func nameFields(b []byte, err error) error {
	var root yaml.Node
	if yaml.Unmarshal(b, &root) != nil {
		return err
	}
	type field struct{ path, value string }
	byLine := map[int][]field{}
	var walk func(n *yaml.Node, path string)
	walk = func(n *yaml.Node, path string) {
		switch n.Kind {
		case yaml.DocumentNode:
			for _, c := range n.Content {
				walk(c, path)
			}
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				p := n.Content[i].Value
				if path != "" {
					p = path + "." + p
				}
				v := n.Content[i+1]
				byLine[v.Line] = append(byLine[v.Line], field{p, v.Value})
				walk(v, p)
			}
		case yaml.SequenceNode:
			for i, c := range n.Content {
				walk(c, fmt.Sprintf("%s[%d]", path, i))
			}
		}
	}
	walk(&root, "")
	msg := err.Error()
	out := lineRE.ReplaceAllStringFunc(msg, func(m string) string {
		line, _ := strconv.Atoi(lineRE.FindStringSubmatch(m)[1])
		fs := byLine[line]
		if len(fs) > 1 {
			var quoted []field
			for _, f := range fs {
				if f.value != "" && (strings.Contains(msg, "`"+f.value+"`") || strings.Contains(msg, strconv.Quote(f.value))) {
					quoted = append(quoted, f)
				}
			}
			fs = quoted
		}
		if len(fs) != 1 {
			return m
		}
		return m + fs[0].path + ": "
	})
	if out == msg {
		return err
	}
	return &fieldError{out, err}
}

// fieldError is a YAML error whose message names the field; Unwrap gives
// the decoder's error.
type fieldError struct {
	msg string
	err error
}

func (e *fieldError) Error() string { return e.msg }
func (e *fieldError) Unwrap() error { return e.err }

// selectorRE matches PromQL label matchers without braces and without a
// trailing comma (the generator appends its own matchers after a comma).
var selectorRE = func() *regexp.Regexp {
	const m = `\s*[a-zA-Z_][a-zA-Z0-9_]*\s*(?:=~|!~|!=|=)\s*(?:"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|` + "`[^`]*`" + `)\s*`
	return regexp.MustCompile(`^` + m + `(?:,` + m + `)*$`)
}()

// Validate reports every problem with s, each naming its field.
func (s Spec) Validate() error {
	var errs []error
	if s.Service == "" {
		errs = append(errs, errors.New("service: required"))
	}
	if strings.TrimSpace(s.Selector) == "" {
		errs = append(errs, errors.New("selector: required (PromQL label matchers, e.g. job=\"glasshouse-api\")"))
	} else if strings.ContainsAny(s.Selector, "{}") {
		errs = append(errs, errors.New("selector: write the matchers without braces"))
	} else if !selectorRE.MatchString(s.Selector) {
		errs = append(errs, fmt.Errorf("selector: %q is not a comma-separated list of PromQL label matchers (name=\"value\", !=, =~ or !~)", s.Selector))
	}
	if time.Duration(s.Period) < 24*time.Hour {
		errs = append(errs, errors.New("period: required, at least 1d (e.g. 30d)"))
	}
	if s.DashboardPrefix != "" && !prefixRE.MatchString(s.DashboardPrefix) {
		errs = append(errs, fmt.Errorf("dashboard_prefix: %q must match %s (it starts Grafana uids)", s.DashboardPrefix, prefixRE))
	} else if s.DashboardPrefix == "" && s.Service != "" && !prefixRE.MatchString(s.Service) {
		errs = append(errs, fmt.Errorf("dashboard_prefix: required when service %q cannot start a Grafana uid (%s)", s.Service, prefixRE))
	}
	if s.Links.Runbooks != "" && !validURL(s.Links.Runbooks, true) {
		errs = append(errs, fmt.Errorf("links.runbooks: %q must be an http(s) URL ending in /", s.Links.Runbooks))
	}
	if s.Links.Grafana != "" && !validURL(s.Links.Grafana, false) {
		errs = append(errs, fmt.Errorf("links.grafana: %q must be an http(s) URL without a trailing /", s.Links.Grafana))
	}
	if len(s.SLOs) == 0 {
		errs = append(errs, errors.New("slos: at least one SLO is required"))
	}
	seen := map[string]bool{}
	for i, o := range s.SLOs {
		f := fmt.Sprintf("slos[%d]", i)
		if !nameRE.MatchString(o.Name) {
			errs = append(errs, fmt.Errorf("%s.name: %q must match %s", f, o.Name, nameRE))
		}
		if seen[o.Name] {
			errs = append(errs, fmt.Errorf("%s.name: duplicate %q", f, o.Name))
		}
		seen[o.Name] = true
		if strings.TrimSpace(o.Description) == "" {
			errs = append(errs, fmt.Errorf("%s.description: required (alert descriptions quote it)", f))
		}
		if !(o.Objective > 0 && o.Objective < 1) {
			errs = append(errs, fmt.Errorf("%s.objective: %v must be between 0 and 1 exclusive (e.g. 0.999)", f, o.Objective))
		}
		switch o.SLI.Type {
		case Availability:
			if o.SLI.ThresholdSeconds != 0 {
				errs = append(errs, fmt.Errorf("%s.sli.threshold_seconds: only for latency SLIs", f))
			}
		case Latency:
			if !(o.SLI.ThresholdSeconds > 0 && o.SLI.ThresholdSeconds <= 3600) {
				errs = append(errs, fmt.Errorf("%s.sli.threshold_seconds: required, > 0 and <= 3600 for a latency SLI (a histogram bucket boundary such as 0.25)", f))
			}
		default:
			errs = append(errs, fmt.Errorf("%s.sli.type: %q must be %q or %q", f, o.SLI.Type, Availability, Latency))
		}
	}
	return errors.Join(errs...)
}

func validURL(s string, slash bool) bool {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return false
	}
	return strings.HasSuffix(s, "/") == slash
}
