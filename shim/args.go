// Package shim is greenboost-runtime: a transparent OCI runtime wrapper that
// edits the bundle's spec on create/run and then becomes runc or crun.
package shim

import (
	"os"
	"strings"
)

// globalFlagsWithValue are the low-level runtimes' global flags that take a
// value, so the value is not mistaken for the verb (runc and crun).
var globalFlagsWithValue = map[string]bool{
	"--root":           true,
	"--log":            true,
	"--log-format":     true,
	"--log-level":      true,
	"--criu":           true,
	"--rootless":       true,
	"--cgroup-manager": true,
}

// Args is what the wrapper needs to know of a low-level runtime command line.
type Args struct {
	// Verb is the command (create, start, ...), "" when there is none.
	Verb string
	// Bundle is the --bundle/-b value of create and run ("" when absent).
	Bundle string
	// Log and LogFormat are runc's global --log and --log-format.
	Log       string
	LogFormat string
	// Debug is runc's global --debug.
	Debug bool
	// GlobalArgs are the arguments before the verb, to query the runtime
	// the way the engine configured it.
	GlobalArgs []string
	// ID is the container id of create, run and exec.
	ID string
	// Process is exec's --process file.
	Process string
}

// ModifiesSpec reports whether this command creates a container, the only
// case in which the bundle's spec is edited.
func (a Args) ModifiesSpec() bool {
	return a.Verb == "create" || a.Verb == "run"
}

// ParseArgs reads argv (without argv[0]) the way runc does: global flags,
// the verb, then the verb's flags. It never fails: anything it does not
// understand is left for the low-level runtime to judge.
func ParseArgs(argv []string) Args {
	var a Args
	i := 0
	for ; i < len(argv); i++ {
		arg := argv[i]
		if arg == "--" {
			i++
			break
		}
		if !strings.HasPrefix(arg, "-") {
			break
		}
		name, value, hasValue := strings.Cut(arg, "=")
		name = normalizeFlag(name)
		if globalFlagsWithValue[name] && !hasValue && i+1 < len(argv) {
			i++
			value = argv[i]
		}
		switch name {
		case "--log":
			a.Log = value
		case "--log-format":
			a.LogFormat = value
		case "--debug":
			a.Debug = !hasValue || value == "true"
		}
	}
	if i >= len(argv) {
		return a
	}
	a.Verb = argv[i]
	if a.Verb == "exec" {
		a.GlobalArgs = argv[:i]
		a.Process, a.ID = execTarget(argv[i+1:])
		return a
	}
	if !a.ModifiesSpec() {
		return a
	}
	// runc's flag parser also reads create's flags after the id.
	a.ID = verbArgs(argv[i+1:], createFlagsWithValue, false, func(name, value string) {
		if name == "--bundle" || name == "-b" {
			a.Bundle = value
		}
	})
	return a
}

// verbArgs reads a verb's arguments (rest) as runc does: it hands each flag
// and its value (taken from the next argument for a flag in withValue) to
// visit, and returns the first other argument, the container id ("" when
// none). With stopAtID, what follows the id is not read.
func verbArgs(rest []string, withValue map[string]bool, stopAtID bool, visit func(name, value string)) (id string) {
	for j := 0; j < len(rest); j++ {
		arg := rest[j]
		if arg == "--" {
			if id == "" && j+1 < len(rest) {
				id = rest[j+1]
			}
			break
		}
		name, value, hasValue := strings.Cut(arg, "=")
		name = normalizeFlag(name)
		if !strings.HasPrefix(name, "-") {
			if id == "" {
				id = arg
			}
			if stopAtID {
				break
			}
			continue
		}
		if withValue[name] && !hasValue && j+1 < len(rest) {
			j++
			value = rest[j]
		}
		visit(name, value)
	}
	return id
}

// createFlagsWithValue are the flags of create and run (runc and crun) that
// take a value, so the value is not mistaken for the container id.
var createFlagsWithValue = map[string]bool{
	"--bundle":         true,
	"-b":               true,
	"--console-socket": true,
	"--pid-file":       true,
	"--preserve-fds":   true,
	"--pidfd-socket":   true,
	"--config":         true,
	"-f":               true,
}

// normalizeFlag maps Go-flag style "-root" to "--root", as urfave/cli (runc)
// accepts both; single-letter flags stay short.
func normalizeFlag(name string) string {
	if len(name) > 2 && name[0] == '-' && name[1] != '-' {
		return "-" + name
	}
	return name
}

// BundleDir returns the bundle directory: the --bundle value or the current
// directory, as runc does.
func (a Args) BundleDir() (string, error) {
	if a.Bundle != "" {
		return a.Bundle, nil
	}
	return os.Getwd()
}
