// Package setting declares a command's settings once each, in one typed
// table: a Setting carries its flag, its environment variable (if any), its
// default, its usage, and how a value becomes its field. Defaults are
// typed (a constructor formats them), so a default that another package
// owns is read from it, never copied.
//
// Register puts the table on a flag.FlagSet; after the FlagSet has parsed
// the command line, Resolve gives every setting its value with precedence
// flag > sources (the environment, then e.g. a .env file) > default, and
// returns every problem at once, each naming its setting. glasshouse-api
// and glasshouse-load parse their flags this way.
//
// It imports only the standard library (TestImports).
package setting

import (
	"cmp"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// Setting is one configuration value. Build it with a constructor (Text,
// Int, Duration, ...) or as a literal for a type of its own.
type Setting struct {
	// Flag is the flag name without the dash; Env, when not empty, is the
	// environment variable read when the flag is not given.
	Flag, Env string
	// Default is the value used when no flag or source gives one, written
	// as a user would write it; -h shows it.
	Default string
	Usage   string
	// Bool makes the flag a boolean flag: -name alone means -name=true.
	Bool bool
	// Arg names the value in -h ("-name Arg"), such as int or duration;
	// empty means "value". A Bool setting shows none.
	Arg string
	// Set parses a value into the field. Resolve calls it once with the
	// default or the source's value, or once for each time the flag was
	// given. Its error names neither the setting (Resolve adds the name)
	// nor a secret's value; one with Unwrap() []error is one problem per
	// element.
	Set func(string) error
	// After, when not nil, runs once every setting has been set, in table
	// order: rules between settings and values derived from others.
	After func() error
}

// Name is how problems name s: its environment variable, else its flag.
func (s Setting) Name() string {
	if s.Env != "" {
		return s.Env
	}
	return "-" + s.Flag
}

// Then returns s with check run once every setting has been set.
func (s Setting) Then(check func() error) Setting {
	s.After = check
	return s
}

// Given holds the values given on the command line, by flag name, in the
// order given. Register returns it; flag.FlagSet.Parse fills it.
type Given map[string][]string

// Register defines a flag on fs for every setting of table, and makes
// fs's usage (-h) show each with its Arg; a setting's usage ends with its
// environment variable and default (a default that means "none", such as
// 0 or false, is shown only for a setting with an environment variable).
func Register(fs *flag.FlagSet, table []Setting) Given {
	given := Given{}
	args := map[string]string{}
	for _, s := range table {
		var where []string
		if s.Env != "" {
			where = append(where, "env "+s.Env)
		}
		if s.Env != "" || !none(s.Default) {
			where = append(where, "default "+strconv.Quote(s.Default))
		}
		usage := s.Usage
		if len(where) > 0 {
			usage += " (" + strings.Join(where, ", ") + ")"
		}
		record := func(v string) error {
			given[s.Flag] = append(given[s.Flag], v)
			return nil
		}
		if s.Bool {
			fs.BoolFunc(s.Flag, usage, record)
			args[s.Flag] = ""
		} else {
			fs.Func(s.Flag, usage, record)
			args[s.Flag] = cmp.Or(s.Arg, "value")
		}
	}
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage of %s:\n", fs.Name())
		printDefaults(fs, args)
	}
	return given
}

// printDefaults is flag.PrintDefaults with each setting's Arg as the name
// of its value (flag names a Func flag's value "value" whatever it is).
func printDefaults(fs *flag.FlagSet, args map[string]string) {
	fs.VisitAll(func(f *flag.Flag) {
		var b strings.Builder
		fmt.Fprintf(&b, "  -%s", f.Name)
		arg, usage := flag.UnquoteUsage(f)
		a, inTable := args[f.Name]
		if inTable {
			arg = a
		}
		if arg != "" {
			b.WriteString(" " + arg)
		}
		if b.Len() <= 4 { // a one-letter bool flag: usage on the same line
			b.WriteString("\t")
		} else {
			b.WriteString("\n    \t")
		}
		b.WriteString(strings.ReplaceAll(usage, "\n", "\n    \t"))
		if !inTable && !none(f.DefValue) {
			fmt.Fprintf(&b, " (default %q)", f.DefValue)
		}
		fmt.Fprintln(fs.Output(), b.String())
	})
}

func none(def string) bool {
	switch def {
	case "", "0", "false", "0s":
		return true
	}
	return false
}

// A Source looks up an environment variable; ok is false when it has no
// value for it. The empty string from the environment counts as no value.
type Source func(env string) (v string, ok bool)

// Getenv is the environment read through getenv as a Source.
func Getenv(getenv func(string) string) Source {
	return func(k string) (string, bool) {
		v := getenv(k)
		return v, v != ""
	}
}

// Map is a Source of fixed values, such as a parsed .env file.
func Map(m map[string]string) Source {
	return func(k string) (string, bool) {
		v, ok := m[k]
		return v, ok
	}
}

// Resolve sets every setting of table from the flags given, else from the
// first source with a value for its environment variable, else from its
// default; then it runs the After checks. It returns every problem, each
// starting with the setting's Name, or nil.
func Resolve(table []Setting, given Given, sources ...Source) Problems {
	var problems Problems
	report := func(name string, err error) {
		if err == nil {
			return
		}
		if multi, ok := err.(interface{ Unwrap() []error }); ok {
			for _, e := range multi.Unwrap() {
				problems = append(problems, fmt.Errorf("%s: %w", name, e))
			}
			return
		}
		problems = append(problems, fmt.Errorf("%s: %w", name, err))
	}
	for _, s := range table {
		vals, ok := given[s.Flag]
		if !ok {
			vals = []string{lookup(s, sources)}
		}
		for _, v := range vals {
			report(s.Name(), s.Set(v))
		}
	}
	for _, s := range table {
		if s.After != nil {
			report(s.Name(), s.After())
		}
	}
	return problems
}

func lookup(s Setting, sources []Source) string {
	if s.Env == "" {
		return s.Default
	}
	for _, src := range sources {
		if v, ok := src(s.Env); ok {
			return v
		}
	}
	return s.Default
}

// Problems are configuration problems, printed one per indented line.
type Problems []error

func (p Problems) Error() string {
	s := make([]string, len(p))
	for i, e := range p {
		s[i] = e.Error()
	}
	return strings.Join(s, "\n  ")
}

// Unwrap returns the problems.
func (p Problems) Unwrap() []error { return p }

// Text is a string setting that takes any value. For a secret type (a
// string type that never prints itself) leave def empty: -h shows it.
func Text[T ~string](dst *T, flag, env string, def T, usage string) Setting {
	return Setting{Flag: flag, Env: env, Default: string(def), Usage: usage, Arg: "string", Set: func(v string) error {
		*dst = T(v)
		return nil
	}}
}

// File is a path setting; a path given must exist.
func File(dst *string, flag, env, usage string) Setting {
	return Setting{Flag: flag, Env: env, Usage: usage, Arg: "string", Set: func(v string) error {
		*dst = v
		if v == "" {
			return nil
		}
		_, err := os.Stat(v)
		return err
	}}
}

// Choice is a setting that takes one of choices.
func Choice[T ~string](dst *T, flag, env string, def T, choices []T, usage string) Setting {
	return Setting{Flag: flag, Env: env, Default: string(def), Usage: usage, Arg: "string", Set: func(v string) error {
		for _, c := range choices {
			if T(v) == c {
				*dst = c
				return nil
			}
		}
		return fmt.Errorf("%q is not %s", v, OrList(choices))
	}}
}

// Bool is a true/false setting (anything strconv.ParseBool takes); its
// flag alone means true.
func Bool(dst *bool, flag, env string, def bool, usage string) Setting {
	return Setting{Flag: flag, Env: env, Default: strconv.FormatBool(def), Usage: usage, Bool: true, Set: func(v string) error {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return fmt.Errorf("%q is not true or false", v)
		}
		*dst = b
		return nil
	}}
}

// Int is a whole-number setting of at least min.
func Int[T ~int | ~int32 | ~int64](dst *T, flag, env string, def, min T, usage string) Setting {
	return Setting{Flag: flag, Env: env, Default: strconv.FormatInt(int64(def), 10), Usage: usage, Arg: "int", Set: func(v string) error {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || int64(T(n)) != n || T(n) < min {
			return fmt.Errorf("%q is not an integer >= %d", v, min)
		}
		*dst = T(n)
		return nil
	}}
}

// Duration is a time.Duration setting of at least min.
func Duration(dst *time.Duration, flag, env string, def, min time.Duration, usage string) Setting {
	return Setting{Flag: flag, Env: env, Default: FormatDuration(def), Usage: usage, Arg: "duration", Set: func(v string) error {
		d, err := time.ParseDuration(v)
		if err != nil || d < min {
			return fmt.Errorf("%q is not a duration >= %v (like 30s or 5m)", v, FormatDuration(min))
		}
		*dst = d
		return nil
	}}
}

// List is a comma-separated setting: each non-empty item, trimmed, goes
// through item (which may rewrite it) and is appended to dst. Every bad
// item is a problem of its own.
func List(dst *[]string, flag, env, usage string, item func(string) (string, error)) Setting {
	return Setting{Flag: flag, Env: env, Usage: usage, Arg: "string", Set: func(v string) error {
		var errs Problems
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

// Optional makes an empty value of s mean "not set": s's field keeps its
// zero value, or takes what derive (when not nil) computes from the other
// settings, and fallback tells the user which.
func Optional(s Setting, fallback string, derive func()) Setting {
	set, empty := s.Set, false
	s.Default = ""
	s.Usage += " (empty: " + fallback + ")"
	s.Set = func(v string) error {
		if empty = v == ""; empty {
			return nil
		}
		return set(v)
	}
	if derive != nil {
		after := s.After
		s.After = func() error {
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

// FormatDuration is d as a user writes it: 1m rather than 1m0s.
func FormatDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// OrList is "a, b or c".
func OrList[T ~string](choices []T) string {
	s := make([]string, len(choices))
	for i, c := range choices {
		s[i] = string(c)
	}
	if len(s) < 2 {
		return strings.Join(s, "")
	}
	return strings.Join(s[:len(s)-1], ", ") + " or " + s[len(s)-1]
}
