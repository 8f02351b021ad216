package cooldown

import (
	"errors"
	"slices"
	"testing"
	"time"
)

func TestBreaker(t *testing.T) {
	now := time.Unix(1000, 0)
	var events []error
	b := &Breaker{Cooldown: time.Second, OnError: func(err error) { events = append(events, err) },
		Now: func() time.Time { return now }}
	boom := errors.New("boom")

	steps := []struct {
		name    string
		do      func()
		advance time.Duration
		want    bool // Skipping after the step
	}{
		{name: "healthy", do: func() {}, want: false},
		{name: "a success while healthy", do: b.Succeeded, want: false},
		{name: "a failure starts the cooldown", do: func() { b.Failed(boom) }, want: true},
		{name: "still cooling down", do: func() {}, advance: 999 * time.Millisecond, want: true},
		{name: "cooldown over", do: func() {}, advance: time.Millisecond, want: false},
		{name: "recovered", do: b.Succeeded, want: false},
	}
	for _, s := range steps {
		now = now.Add(s.advance)
		s.do()
		if got := b.Skipping(); got != s.want {
			t.Errorf("%s: Skipping() = %v, want %v", s.name, got, s.want)
		}
	}
	if want := []error{boom, nil}; !slices.Equal(events, want) {
		t.Errorf("OnError calls = %v, want %v (each failure, then nil once on recovery)", events, want)
	}
}

func TestBreakerWithoutCooldownNeverSkips(t *testing.T) {
	b := &Breaker{Cooldown: -1}
	b.Failed(errors.New("boom"))
	if b.Skipping() {
		t.Error("Skipping() = true after a failure with a negative Cooldown, want false")
	}
}
