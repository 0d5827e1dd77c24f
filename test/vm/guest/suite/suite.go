// Package suite holds the cases the VM guest runs against the greenboost
// module, and the console protocol they report with (see test/vm).
package suite

import (
	"fmt"
	"os"
	"regexp"
	"runtime"
	"runtime/debug"
	"sort"
	"strings"
	"sync"
	"time"
)

// Modes of a guest run (kernel command line gb.mode=).
const (
	ModeTest  = "test"
	ModeBench = "bench"
)

// Case is one named check; it reports PASS or FAIL on the console.
type Case struct {
	Order   int // cases run in this order
	Name    string
	Mode    string
	Timeout time.Duration
	Fn      func(t *T)
}

var registry []Case

func register(order int, mode, name string, timeout time.Duration, fn func(t *T)) {
	registry = append(registry, Case{Order: order, Name: name, Mode: mode, Timeout: timeout, Fn: fn})
	sort.SliceStable(registry, func(i, j int) bool { return registry[i].Order < registry[j].Order })
}

// Names returns the cases of a mode, in the order the guest runs them,
// filtered by the regular expression run ("" = all).
func Names(mode, run string) ([]string, error) {
	cases, err := selectCases(mode, run)
	if err != nil {
		return nil, err
	}
	names := make([]string, len(cases))
	for i, c := range cases {
		names[i] = c.Name
	}
	return names, nil
}

func selectCases(mode, run string) ([]Case, error) {
	var re *regexp.Regexp
	if run != "" {
		var err error
		if re, err = regexp.Compile(run); err != nil {
			return nil, fmt.Errorf("case filter %q: %w", run, err)
		}
	}
	var out []Case
	for _, c := range registry {
		if c.Mode != mode {
			continue
		}
		// setup cases (load) always run: the others need them
		if re != nil && !re.MatchString(c.Name) && !alwaysRun[c.Name] {
			continue
		}
		out = append(out, c)
	}
	return out, nil
}

// alwaysRun: cases every selection keeps.
var alwaysRun = map[string]bool{}

// T is the state of one running case.
type T struct {
	name    string
	mu      sync.Mutex
	failed  bool
	reasons []string
	cleanup []func()
}

// Logf prints a line of the case's log.
func (t *T) Logf(format string, args ...any) {
	out("    | " + strings.ReplaceAll(fmt.Sprintf(format, args...), "\n", "\n    | "))
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

// out writes a line on the console (stdout is /dev/console).
func out(line string) {
	outMu.Lock()
	defer outMu.Unlock()
	os.Stdout.WriteString(line + "\n")
}

// runCase runs one case with its timeout and prints its verdict.
func runCase(c Case) {
	out("RUN " + c.Name)
	t := &T{name: c.Name}
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
		reason := strings.Join(t.reasons, "; ")
		t.mu.Unlock()
		reason = strings.ReplaceAll(reason, "\n", " ")
		if len(reason) > 600 {
			reason = reason[:600] + "..."
		}
		out(fmt.Sprintf("FAIL %s: %s (%v)", c.Name, reason, el))
		return
	}
	out(fmt.Sprintf("PASS %s (%v)", c.Name, el))
}

// cmdline returns the gb.* parameters of the kernel command line.
func cmdline() map[string]string {
	params := map[string]string{}
	b, err := os.ReadFile("/proc/cmdline")
	if err != nil {
		return params
	}
	for _, f := range strings.Fields(string(b)) {
		if k, v, ok := strings.Cut(f, "="); ok && strings.HasPrefix(k, "gb.") {
			params[strings.TrimPrefix(k, "gb.")] = v
		}
	}
	return params
}

// Main is the guest program: "run" (mode and filter from the kernel command
// line, or -mode/-run style args "run MODE [FILTER]"), "list MODE", or
// "child ..." (a helper process, see child.go).
func Main(args []string) int {
	if len(args) == 0 {
		fmt.Fprintln(os.Stderr, "usage: gbguest run [MODE [FILTER]] | list MODE | child OP...")
		return 2
	}
	switch args[0] {
	case "child":
		return childMain(args[1:])
	case "list":
		mode := ModeTest
		if len(args) > 1 {
			mode = args[1]
		}
		names, _ := Names(mode, "")
		fmt.Println(strings.Join(names, "\n"))
		return 0
	case "run":
	default:
		fmt.Fprintf(os.Stderr, "gbguest: unknown command %q\n", args[0])
		return 2
	}
	p := cmdline()
	mode, filter := p["mode"], p["run"]
	if len(args) > 1 {
		mode = args[1]
	}
	if len(args) > 2 {
		filter = args[2]
	}
	if mode == "" {
		mode = ModeTest
	}
	cases, err := selectCases(mode, filter)
	if err != nil {
		out("FAIL setup: " + err.Error())
		return 1
	}
	names := make([]string, len(cases))
	for i, c := range cases {
		names[i] = c.Name
	}
	out("GB-CASES " + strings.Join(names, " "))
	for _, c := range cases {
		runCase(c)
	}
	return 0
}
