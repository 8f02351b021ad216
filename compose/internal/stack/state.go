package stack

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// State is what Up records in the run directory and Down reads back.
type State struct {
	StartedAt time.Time  `json:"started_at"`
	Processes []Process  `json:"processes"`
	URLs      []NamedURL `json:"urls"`
	Missing   []string   `json:"missing,omitempty"`
}

// NamedURL is one URL printed for the user.
type NamedURL struct {
	Name string `json:"name"`
	URL  string `json:"url"`
}

// loadState reads the state file; a missing file is (nil, nil).
func loadState(path string) (*State, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read stack state: %w", err)
	}
	var s State
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("read stack state %s: %w", path, err)
	}
	return &s, nil
}

// save writes s atomically, so an interrupted write never leaves a state
// file that hides running processes.
func (s *State) save(path string) error {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("write stack state: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write stack state: %w", err)
	}
	return nil
}

// running returns the recorded processes that are still alive.
func (s *State) running() []Process {
	if s == nil {
		return nil
	}
	var live []Process
	for _, p := range s.Processes {
		if p.Alive() {
			live = append(live, p)
		}
	}
	return live
}
