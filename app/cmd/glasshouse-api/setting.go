package main

import (
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/glasshouse-dev/glasshouse/app/ratelimit"
	"github.com/glasshouse-dev/glasshouse/internal/setting"
)

// This file holds the kinds of setting only the API has; the others come
// from package setting.

// level is a log level setting: debug, info, warn or error.
func level(dst *slog.Level, flag, env string, def slog.Level, usage string) setting.Setting {
	return setting.Setting{Flag: flag, Env: env, Default: strings.ToLower(def.String()), Usage: usage, Arg: "string", Set: func(v string) error {
		if err := dst.UnmarshalText([]byte(v)); err != nil {
			return fmt.Errorf("%q is not debug, info, warn or error", v)
		}
		return nil
	}}
}

// limit is a rate-limit setting: RATE/PERIOD[:BURST] or off.
func limit(dst *ratelimit.Limit, flag, env string, def ratelimit.Limit, usage string) setting.Setting {
	return setting.Setting{Flag: flag, Env: env, Default: formatLimit(def), Usage: usage + ": RATE/PERIOD[:BURST], or off", Arg: "string",
		Set: func(v string) error {
			l, err := parseLimit(v)
			if err != nil {
				return err
			}
			*dst = l
			return nil
		}}
}

// formatLimit is the text parseLimit reads back as l.
func formatLimit(l ratelimit.Limit) string {
	if l == (ratelimit.Limit{}) {
		return "off"
	}
	return fmt.Sprintf("%d/%s:%d", l.Rate, setting.FormatDuration(l.Period), l.Burst)
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
