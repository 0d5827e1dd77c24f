package vm

import (
	"bufio"
	"fmt"
	"io"
	"regexp"
	"strings"
)

// Lines the guest prints on the serial console (see guest/suite):
//
//	GB-CASES name...          the cases the guest is about to run
//	RUN name                  a case starts; lines until its verdict are its log
//	PASS name                 a case passed
//	FAIL name: reason         a case failed
//	BENCH name key=value...   a benchmark result
//	GB-GUEST-EXIT status      the guest program's exit status
//	GB-DMESG-BEGIN / GB-DMESG-END   the guest's dmesg, printed after the cases
//	GB-DONE                   /init finished and is about to power off
const (
	markCases      = "GB-CASES"
	markGuestExit  = "GB-GUEST-EXIT"
	markDmesgBegin = "GB-DMESG-BEGIN"
	markDmesgEnd   = "GB-DMESG-END"
	markDone       = "GB-DONE"
)

// CaseResult is the verdict of one guest case.
type CaseResult struct {
	Name   string
	Pass   bool
	Reason string   // FAIL reason
	Log    []string // lines printed between RUN and the verdict
}

// Console is what a guest run reported.
type Console struct {
	Listed        []string // from GB-CASES
	Cases         map[string]*CaseResult
	Order         []string // verdict order
	Running       string   // a case that started and never reported
	Bench         []string // BENCH lines, without the prefix
	Dmesg         []string
	DmesgComplete bool
	// GuestExit is the guest program's exit status ("" until reported):
	// anything but "0" is a crash outside the cases' verdicts.
	GuestExit string
	Done      bool
	Kernel    []string // kernel lines (timestamped) seen on the console
	Lines     int
}

// terminal control sequences (SeaBIOS clears the screen)
var ansiEscape = regexp.MustCompile(`\x1b(\[[0-9;?]*[A-Za-z]|c)`)

// timestamped kernel console line, e.g. "[    1.234567] foo".
var kernelLine = regexp.MustCompile(`^\[\s*\d+\.\d+\]`)

// Line feeds one console line to the parser. It returns the case result
// completed by this line, if any.
func (c *Console) Line(raw string) *CaseResult {
	if c.Cases == nil {
		c.Cases = map[string]*CaseResult{}
	}
	c.Lines++
	line := strings.TrimRight(raw, "\r\n")
	// firmware escape sequences sometimes precede the first line
	line = ansiEscape.ReplaceAllString(line, "")
	if c.inDmesg() {
		if strings.TrimSpace(line) == markDmesgEnd {
			c.DmesgComplete = true
			return nil
		}
		c.Dmesg = append(c.Dmesg, line)
		return nil
	}
	if kernelLine.MatchString(line) {
		c.Kernel = append(c.Kernel, line)
		return nil
	}
	fields := strings.Fields(line)
	if len(fields) == 0 {
		return nil
	}
	switch fields[0] {
	case markCases:
		c.Listed = append([]string(nil), fields[1:]...)
	case "RUN":
		if len(fields) >= 2 {
			c.Running = fields[1]
			c.Cases[c.Running] = &CaseResult{Name: c.Running}
		}
	case "PASS", "FAIL":
		if len(fields) < 2 {
			break
		}
		name := strings.TrimSuffix(fields[1], ":")
		r := c.Cases[name]
		if r == nil {
			r = &CaseResult{Name: name}
			c.Cases[name] = r
		}
		r.Pass = fields[0] == "PASS"
		if !r.Pass {
			if i := strings.Index(line, ":"); i >= 0 {
				r.Reason = strings.TrimSpace(line[i+1:])
			}
		}
		c.Order = append(c.Order, name)
		if c.Running == name {
			c.Running = ""
		}
		return r
	case "BENCH":
		c.Bench = append(c.Bench, strings.TrimSpace(strings.TrimPrefix(line, "BENCH")))
	case markDmesgBegin:
		c.Dmesg = []string{}
		c.DmesgComplete = false
	case markGuestExit:
		if len(fields) == 2 {
			c.GuestExit = fields[1]
		}
	case markDone:
		c.Done = true
	default:
		if c.Running != "" {
			if r := c.Cases[c.Running]; r != nil {
				r.Log = append(r.Log, line)
			}
		}
	}
	return nil
}

func (c *Console) inDmesg() bool {
	return c.Dmesg != nil && !c.DmesgComplete
}

// Parse reads a whole console log.
func Parse(r io.Reader) (*Console, error) {
	c := &Console{Cases: map[string]*CaseResult{}}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		c.Line(sc.Text())
	}
	return c, sc.Err()
}

// badKernel matches kernel log lines that mean the module (or the kernel)
// misbehaved.
var badKernel = regexp.MustCompile(`\bBUG\b|WARNING|Oops|Call Trace|general protection fault|Kernel panic|UBSAN|KASAN|refcount_t:|list_(add|del) corruption|self-detected stall|blocked for more than`)

// KernelProblems returns the kernel log lines (the dmesg block and
// timestamped console lines) that match badKernel, each with a few lines of
// context after it.
func (c *Console) KernelProblems() []string {
	var out []string
	scan := func(lines []string, where string) {
		for i, l := range lines {
			if !badKernel.MatchString(l) {
				continue
			}
			end := min(i+4, len(lines))
			out = append(out, fmt.Sprintf("%s: %s", where, strings.Join(lines[i:end], "\n\t")))
		}
	}
	scan(c.Dmesg, "dmesg")
	if !c.DmesgComplete {
		// dmesg never came: the console is all there is
		scan(c.Kernel, "console")
	}
	return out
}

// Missing returns the expected cases that never reported a verdict.
func (c *Console) Missing(expected []string) []string {
	var out []string
	for _, n := range expected {
		if !c.reported(n) {
			out = append(out, n)
		}
	}
	return out
}

func (c *Console) reported(name string) bool {
	for _, n := range c.Order {
		if n == name {
			return true
		}
	}
	return false
}
