package main

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/glasshouse-dev/glasshouse/app/ratelimit"
	"github.com/glasshouse-dev/glasshouse/telemetry"
)

// setting is one configuration value, declared once: its flag, its
// environment variable, its default written as a user would write it, its
// usage, and how a value becomes its field of config. The constructors
// below build settings from a typed default, so a default that another
// package declares (httpapi.DefaultLimits, say) is read, not copied.
type setting struct {
	flag, env, def, usage string
	// set parses a value into the field; it is called exactly once per
	// parse, with the default when nothing else gives a value. Its error
	// names neither the setting (parseConfig adds it) nor a secret's
	// value. An error with Unwrap() []error is one problem per element.
	set func(string) error
	// after, when not nil, runs once every setting has been set, in table
	// order: rules between settings and values derived from others.
	after func() error
}

// then returns s with check run after every setting has been set.
func (s setting) then(check func() error) setting {
	s.after = check
	return s
}

// text is a string setting that takes any value.
func text(dst *string, flag, env, def, usage string) setting {
	return setting{flag: flag, env: env, def: def, usage: usage, set: func(v string) error {
		*dst = v
		return nil
	}}
}

// secret is a string setting that is never printed: its default is empty
// and its value appears in no error.
func secret(dst *telemetry.Secret, flag, env, usage string) setting {
	return setting{flag: flag, env: env, usage: usage, set: func(v string) error {
		*dst = telemetry.Secret(v)
		return nil
	}}
}

// file is a path setting; a path given must exist.
func file(dst *string, flag, env, usage string) setting {
	return setting{flag: flag, env: env, usage: usage, set: func(v string) error {
		*dst = v
		if v == "" {
			return nil
		}
		_, err := os.Stat(v)
		return err
	}}
}

// choice is a setting that takes one of choices.
func choice[T ~string](dst *T, flag, env string, def T, choices []T, usage string) setting {
	return setting{flag: flag, env: env, def: string(def), usage: usage, set: func(v string) error {
		for _, c := range choices {
			if T(v) == c {
				*dst = c
				return nil
			}
		}
		return fmt.Errorf("%q is not %s", v, orList(choices))
	}}
}

// level is a log level setting: debug, info, warn or error.
func level(dst *slog.Level, flag, env string, def slog.Level, usage string) setting {
	return setting{flag: flag, env: env, def: strings.ToLower(def.String()), usage: usage, set: func(v string) error {
		if err := dst.UnmarshalText([]byte(v)); err != nil {
			return fmt.Errorf("%q is not debug, info, warn or error", v)
		}
		return nil
	}}
}

// boolean is a true/false setting (anything strconv.ParseBool takes).
func boolean(dst *bool, flag, env string, def bool, usage string) setting {
	return setting{flag: flag, env: env, def: strconv.FormatBool(def), usage: usage, set: func(v string) error {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return fmt.Errorf("%q is not true or false", v)
		}
		*dst = b
		return nil
	}}
}

// integer is a whole-number setting of at least min.
func integer[T ~int | ~int32 | ~int64](dst *T, flag, env string, def, min T, usage string) setting {
	return setting{flag: flag, env: env, def: strconv.FormatInt(int64(def), 10), usage: usage, set: func(v string) error {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || int64(T(n)) != n || T(n) < min {
			return fmt.Errorf("%q is not an integer >= %d", v, min)
		}
		*dst = T(n)
		return nil
	}}
}

// duration is a time.Duration setting of at least min.
func duration(dst *time.Duration, flag, env string, def, min time.Duration, usage string) setting {
	return setting{flag: flag, env: env, def: formatDuration(def), usage: usage, set: func(v string) error {
		d, err := time.ParseDuration(v)
		if err != nil || d < min {
			return fmt.Errorf("%q is not a duration >= %v (like 30s or 5m)", v, formatDuration(min))
		}
		*dst = d
		return nil
	}}
}

// limit is a rate-limit setting: RATE/PERIOD[:BURST] or off.
func limit(dst *ratelimit.Limit, flag, env string, def ratelimit.Limit, usage string) setting {
	return setting{flag: flag, env: env, def: formatLimit(def), usage: usage + ": RATE/PERIOD[:BURST], or off",
		set: func(v string) error {
			l, err := parseLimit(v)
			if err != nil {
				return err
			}
			*dst = l
			return nil
		}}
}

// list is a comma-separated setting: each non-empty item, trimmed, goes
// through item (which may rewrite it) and is appended to dst. Every bad
// item is reported.
func list(dst *[]string, flag, env, usage string, item func(string) (string, error)) setting {
	return setting{flag: flag, env: env, usage: usage, set: func(v string) error {
		var errs lines
		for _, s := range strings.Split(v, ",") {
			if s = strings.TrimSpace(s); s == "" {
				continue
			}
			s, err := item(s)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			*dst = append(*dst, s)
		}
		if len(errs) > 0 {
			return errs
		}
		return nil
	}}
}

// optional makes an empty value of s mean "not set": s's field keeps its
// zero value, or takes what derive computes from the other settings, and
// fallback tells the user what happens then.
func optional(s setting, fallback string, derive func()) setting {
	set, empty := s.set, false
	s.def = ""
	s.usage += " (empty: " + fallback + ")"
	s.set = func(v string) error {
		if empty = v == ""; empty {
			return nil
		}
		return set(v)
	}
	if derive != nil {
		after := s.after
		s.after = func() error {
			if empty {
				derive()
			}
			if after != nil {
				return after()
			}
			return nil
		}
	}
	return s
}

// formatDuration is d as a user writes it: 1m rather than 1m0s.
func formatDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// formatLimit is the text parseLimit reads back as l.
func formatLimit(l ratelimit.Limit) string {
	if l == (ratelimit.Limit{}) {
		return "off"
	}
	return fmt.Sprintf("%d/%s:%d", l.Rate, formatDuration(l.Period), l.Burst)
}

// parseLimit reads "RATE/PERIOD[:BURST]" (e.g. "100/1s:200", "5/1m") or
// "off". BURST defaults to RATE.
func parseLimit(s string) (ratelimit.Limit, error) {
	if s == "off" {
		return ratelimit.Limit{}, nil
	}
	rate, rest, ok := strings.Cut(s, "/")
	if !ok {
		return ratelimit.Limit{}, fmt.Errorf("%q is not RATE/PERIOD[:BURST] (like 100/1s:200) or off", s)
	}
	period, burst, hasBurst := strings.Cut(rest, ":")
	var l ratelimit.Limit
	var err1, err2, err3 error
	l.Rate, err1 = strconv.Atoi(rate)
	l.Period, err2 = time.ParseDuration(period)
	l.Burst = l.Rate
	if hasBurst {
		l.Burst, err3 = strconv.Atoi(burst)
	}
	if err := errors.Join(err1, err2, err3); err != nil || l.Rate < 1 || l.Period <= 0 || l.Burst < 1 {
		return ratelimit.Limit{}, fmt.Errorf("%q is not RATE/PERIOD[:BURST] with positive numbers (like 100/1s:200) or off", s)
	}
	return l, nil
}

// orList is "a, b or c".
func orList[T ~string](choices []T) string {
	s := make([]string, len(choices))
	for i, c := range choices {
		s[i] = string(c)
	}
	if len(s) < 2 {
		return strings.Join(s, "")
	}
	return strings.Join(s[:len(s)-1], ", ") + " or " + s[len(s)-1]
}

// lines is a list of problems, printed one per indented line.
type lines []error

func (l lines) Error() string {
	s := make([]string, len(l))
	for i, e := range l {
		s[i] = e.Error()
	}
	return strings.Join(s, "\n  ")
}

func (l lines) Unwrap() []error { return l }
