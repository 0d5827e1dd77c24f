// Package integration is the guest side of the VM integration tests and the
// demo (test/vm/integration_test.go, test/vm/demo_test.go): run as
// /usr/bin/gbinteg after the VM's root has moved to a tmpfs, it drives the
// product the way a user does — greenboost-runtime (runc underneath), the
// hook, greenboost-ctk — against the real module, from a boot where the
// module is not loaded, and reports each case on the serial console with the
// protocol of test/vm/console.go (GB-CASES, RUN, PASS, FAIL).
package integration

import (
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"time"
)

// Modes (kernel command line gb.mode=).
const (
	ModeIntegration = "integration"
	ModeDemo        = "demo"
)

// Paths inside the VM; the host test builds the initramfs with these.
const (
	ConfigPath  = "/etc/greenboost/config.toml"
	ModulePath  = "/lib/modules/greenboost.ko"
	LibraryPath = "/usr/lib/greenboost-fixture/libgreenboost_cuda.so"
	RuntimeBin  = "/usr/bin/greenboost-runtime"
	HookBin     = "/usr/bin/greenboost-hook"
	CtkBin      = "/usr/bin/greenboost-ctk"
	RuncBin     = "/usr/sbin/runc"
	GuestBin    = "/usr/bin/gbinteg"
	// RootfsDir is the containers' root file system (read-only, shared):
	// busybox, gballoc, the dynamic launcher gbdyn with libc and ld.so.
	RootfsDir = "/var/lib/gbtest/rootfs"
	// BundleDir holds one bundle (config.json) and output log per container.
	BundleDir = "/run/gbtest"
	StateDir  = "/run/greenboost"
	RuncRoot  = "/run/runc"
)

// Config is the toolkit config of the guest: the product defaults except
// the module (a path), the library (the fixture) and runc's absolute path.
const Config = `[runtime]
runtimes = ["` + RuncBin + `"]

[library]
host-paths = ["` + LibraryPath + `"]

[kmod]
load = "auto"
module = "` + ModulePath + `"

[hook]
path = "` + HookBin + `"
`

// Case is one named check.
type Case struct {
	Name    string
	Timeout time.Duration
	Fn      func(t *T)
}

func cases(mode string) []Case {
	switch mode {
	case ModeIntegration:
		return integrationCases
	case ModeDemo:
		return demoCases
	case ModeIntegrationV1:
		return integrationV1Cases
	}
	return nil
}

// Names returns the case names of a mode in the order the guest runs them.
func Names(mode string) []string {
	var out []string
	for _, c := range cases(mode) {
		out = append(out, c.Name)
	}
	return out
}

// T is one running case.
type T struct {
	mu      sync.Mutex
	failed  bool
	reasons []string
	cleanup []func()
}

var outMu sync.Mutex

// out writes one console line.
func out(line string) {
	outMu.Lock()
	defer outMu.Unlock()
	os.Stdout.WriteString(line + "\n")
}

// Logf prints a line of the case's log.
func (t *T) Logf(format string, args ...any) {
	out("    | " + strings.ReplaceAll(strings.TrimRight(fmt.Sprintf(format, args...), "\n"), "\n", "\n    | "))
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

// Fatalf marks the case failed and ends it.
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

// Cleanup registers fn to run after the case, last first.
func (t *T) Cleanup(fn func()) {
	t.mu.Lock()
	t.cleanup = append(t.cleanup, fn)
	t.mu.Unlock()
}

func (t *T) Failed() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.failed
}

func runCase(c Case) {
	out("RUN " + c.Name)
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
		c.Fn(t)
	}()
	timeout := c.Timeout
	if timeout == 0 {
		timeout = time.Minute
	}
	select {
	case <-done:
	case <-time.After(timeout):
		t.Errorf("timed out after %v", timeout)
	}
	el := time.Since(start).Round(time.Millisecond)
	if t.Failed() {
		t.mu.Lock()
		reason := strings.ReplaceAll(strings.Join(t.reasons, "; "), "\n", " ")
		t.mu.Unlock()
		if len(reason) > 800 {
			reason = reason[:800] + "..."
		}
		out(fmt.Sprintf("FAIL %s: %s (%v)", c.Name, reason, el))
		return
	}
	out(fmt.Sprintf("PASS %s (%v)", c.Name, el))
}

func cmdlineMode() string {
	b, _ := os.ReadFile("/proc/cmdline")
	for _, f := range strings.Fields(string(b)) {
		if v, ok := strings.CutPrefix(f, "gb.mode="); ok {
			return v
		}
	}
	return ModeIntegration
}

// Main runs the cases of the mode given as argument or on the kernel
// command line (gb.mode=).
func Main(args []string) int {
	mode := cmdlineMode()
	if len(args) > 0 {
		mode = args[0]
	}
	cs := cases(mode)
	if len(cs) == 0 {
		out("FAIL setup: unknown mode " + mode)
		return 2
	}
	out("GB-CASES " + strings.Join(Names(mode), " "))
	for _, c := range cs {
		runCase(c)
	}
	return 0
}
