// Package suite holds the cases the VM guest runs against the greenboost
// module, and the console protocol they report with (see test/vm).
package suite

import (
	"fmt"
	"os"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/greenboost/greenboost-container-toolkit/test/vm/guest/guesttest"
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

// T is the state of one running case.
type T = guesttest.T

// alwaysRun: cases every selection keeps.
var alwaysRun = map[string]bool{}

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
	if mode == ModeV1 {
		cgLayout = v1Layout
	}
	cases, err := selectCases(mode, filter)
	if err != nil {
		guesttest.Out("FAIL setup: " + err.Error())
		return 1
	}
	names := make([]string, len(cases))
	for i, c := range cases {
		names[i] = c.Name
	}
	guesttest.Out("GB-CASES " + strings.Join(names, " "))
	for _, c := range cases {
		guesttest.Run(c.Name, c.Timeout, c.Fn)
	}
	return 0
}
