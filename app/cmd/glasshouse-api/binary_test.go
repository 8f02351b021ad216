package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/glasshouse-dev/glasshouse/internal/syncbuf"
)

// apiProcess is the package's real binary running in a test.
type apiProcess struct {
	cmd    *exec.Cmd
	out    *syncbuf.Buffer // its stdout and stderr
	exited chan struct{}   // closed once it has exited
	err    error           // cmd.Wait's result, set before exited is closed
}

// startBinary builds the package's binary with version linked in (as make
// build and the Dockerfile do with -X; "" links none) and starts it without
// an env file, with env added to the test's environment. The test's cleanup
// kills it.
func startBinary(t *testing.T, version string, env ...string) *apiProcess {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "glasshouse-api")
	args := []string{"build", "-o", bin}
	if version != "" {
		args = append(args, "-ldflags", "-X main.version="+version)
	}
	if out, err := exec.Command("go", append(args, ".")...).CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	p := &apiProcess{cmd: exec.Command(bin, "-env-file="), out: &syncbuf.Buffer{}, exited: make(chan struct{})}
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.err = p.cmd.Wait(); close(p.exited) }()
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		<-p.exited
	})
	return p
}
