// Package slo holds the Go types and loader for alerts/slo.yaml, the single
// SLO spec that the rule generator, the dashboards and the load tests read.
//
// It imports only the standard library and a YAML decoder; it must stay small.
package slo

import (
	"bytes"
	"errors"
	"fmt"
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
	Service  string   `yaml:"service"`
	Selector string   `yaml:"selector"`
	Period   Duration `yaml:"period"`
	SLOs     []SLO    `yaml:"slos"`
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
		return err
	}
	*d = Duration(v)
	return nil
}

var durRE = regexp.MustCompile(`^([0-9]+)(ms|s|m|h|d|w)$`)

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
	if err := dec.Decode(&s); err != nil {
		return Spec{}, fmt.Errorf("parse slo spec: %w", err)
	}
	return s, s.Validate()
}

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
	}
	if time.Duration(s.Period) < 24*time.Hour {
		errs = append(errs, errors.New("period: required, at least 1d (e.g. 30d)"))
	}
	if len(s.SLOs) == 0 {
		errs = append(errs, errors.New("slos: at least one SLO is required"))
	}
	seen := map[string]bool{}
	nameRE := regexp.MustCompile(`^[a-z][a-z0-9_-]*$`)
	for i, o := range s.SLOs {
		f := fmt.Sprintf("slos[%d]", i)
		if !nameRE.MatchString(o.Name) {
			errs = append(errs, fmt.Errorf("%s.name: %q must match %s", f, o.Name, nameRE))
		}
		if seen[o.Name] {
			errs = append(errs, fmt.Errorf("%s.name: duplicate %q", f, o.Name))
		}
		seen[o.Name] = true
		if !(o.Objective > 0 && o.Objective < 1) {
			errs = append(errs, fmt.Errorf("%s.objective: %v must be between 0 and 1 exclusive (e.g. 0.999)", f, o.Objective))
		}
		switch o.SLI.Type {
		case Availability:
			if o.SLI.ThresholdSeconds != 0 {
				errs = append(errs, fmt.Errorf("%s.sli.threshold_seconds: only for latency SLIs", f))
			}
		case Latency:
			if o.SLI.ThresholdSeconds <= 0 {
				errs = append(errs, fmt.Errorf("%s.sli.threshold_seconds: required and > 0 for a latency SLI", f))
			}
		default:
			errs = append(errs, fmt.Errorf("%s.sli.type: %q must be %q or %q", f, o.SLI.Type, Availability, Latency))
		}
	}
	return errors.Join(errs...)
}
