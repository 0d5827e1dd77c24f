// Package guesttest runs the VM guest's cases and reports them on the
// console in the protocol test/vm reads: "RUN name", log lines "    | ...",
// then "PASS name (duration)" or "FAIL name: reasons (duration)".
package guesttest

import (
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"time"
)

// T is the state of one running case.
type T struct {
	mu      sync.Mutex
	failed  bool
	reasons []string
	cleanup []func()
}

// Logf prints a line of the case's log.
func (t *T) Logf(format string, args ...any) {
	Out("    | " + strings.ReplaceAll(strings.TrimRight(fmt.Sprintf(format, args...), "\n"), "\n", "\n    | "))
}

// Errorf marks the case failed and goes on.
func (t *T) Errorf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	t.mu.Lock()
	t.failed = true
	t.reasons = append(t.reasons, msg)
	t.mu.Unlock()
	t.Logf("error: %s", msg)
}

// Fatalf marks the case failed and ends it (call only from the case's
// goroutine).
func (t *T) Fatalf(format string, args ...any) {
	t.Errorf(format, args...)
	runtime.Goexit()
}

// Check is Fatalf on a non-nil error.
func (t *T) Check(err error, what string) {
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// Cleanup registers fn to run after the case (last registered first).
func (t *T) Cleanup(fn func()) {
	t.mu.Lock()
	t.cleanup = append(t.cleanup, fn)
	t.mu.Unlock()
}

// Failed tells whether the case failed so far.
func (t *T) Failed() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.failed
}

var outMu sync.Mutex

// Out writes a line on the console (the guest's stdout is /dev/console).
func Out(line string) {
	outMu.Lock()
	defer outMu.Unlock()
	os.Stdout.WriteString(line + "\n")
}

// Run runs one case with its timeout (a minute if 0) and prints its verdict.
func Run(name string, timeout time.Duration, fn func(*T)) {
	Out("RUN " + name)
	t := &T{}
	start := time.Now()
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer func() {
			if r := recover(); r != nil {
				t.Errorf("panic: %v\n%s", r, debug.Stack())
			}
		}()
		defer func() {
			t.mu.Lock()
			fns := t.cleanup
			t.cleanup = nil
			t.mu.Unlock()
			for i := len(fns) - 1; i >= 0; i-- {
				fns[i]()
			}
		}()
		fn(t)
	}()
	if timeout == 0 {
		timeout = time.Minute
	}
	select {
	case <-done:
	case <-time.After(timeout):
		t.Errorf("timed out after %v", timeout)
	}
	el := time.Since(start).Round(time.Millisecond)
	if !t.Failed() {
		Out(fmt.Sprintf("PASS %s (%v)", name, el))
		return
	}
	t.mu.Lock()
	reason := strings.ReplaceAll(strings.Join(t.reasons, "; "), "\n", " ")
	t.mu.Unlock()
	if len(reason) > 800 {
		reason = reason[:800] + "..."
	}
	Out(fmt.Sprintf("FAIL %s: %s (%v)", name, reason, el))
}
