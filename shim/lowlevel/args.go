// Package lowlevel is greenboost-runtime's side of the low-level runtime
// (runc, crun): its command line, finding it, and becoming it. It imports
// nothing heavier than the config, so that shim/passthrough can use it
// before the wrapper's other packages initialise.
package lowlevel

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/greenboost/greenboost-container-toolkit/internal/ocispec"
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
	// Config is crun's create/run --config/-f file ("" when absent).
	Config string
	// NoContainer says the command creates no container whatever its verb:
	// it asks for help, or has a boolean flag value runc rejects.
	NoContainer bool
	// Root, Log and LogFormat are the global --root, --log and --log-format.
	Root      string
	Log       string
	LogFormat string
	// Debug is runc's global --debug.
	Debug bool
	// Version says a global flag asks for the version (--version, -v;
	// crun's -V).
	Version bool
	// ID is the container id of create, run and exec.
	ID string
	// Process is exec's --process file; processAt is the index in the
	// command line of the argument that holds it, after processPrefix.
	Process       string
	processAt     int
	processPrefix string
}

// ModifiesSpec reports whether this command creates a container, the only
// case in which the bundle's spec is edited. Without an id, asked for help,
// or given a flag value they reject, runc and crun create nothing: they
// answer themselves.
func (a Args) ModifiesSpec() bool {
	return (a.Verb == "create" || a.Verb == "run") && a.ID != "" && !a.NoContainer
}

// AsksVersion reports whether the command line asks for the version and
// nothing else: the wrapper answers with its own first.
func (a Args) AsksVersion() bool {
	return a.Verb == "" && a.Version
}

// ExecsProcessFile reports whether this is exec of a container's process
// from a file, which may need its container's GreenBoost environment.
func (a Args) ExecsProcessFile() bool {
	return a.Process != "" && a.ID != ""
}

// PassesThrough reports whether the low-level runtime gets the command line
// as it is and the wrapper adds nothing: not create or run (the edits), not
// AsksVersion, not ExecsProcessFile.
func (a Args) PassesThrough() bool {
	return !a.ModifiesSpec() && !a.AsksVersion() && !a.ExecsProcessFile()
}

// ParseArgs reads argv (without argv[0]) the way runc and crun do: global
// flags, the verb, then the verb's flags. It never fails: anything it does
// not understand is left for the low-level runtime to judge.
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
		name = goStyleLong(name)
		if globalFlagsWithValue[name] && !hasValue && i+1 < len(argv) {
			i++
			value = argv[i]
		}
		switch name {
		case "--root":
			a.Root = value
		case "--log":
			a.Log = value
		case "--log-format":
			a.LogFormat = value
		case "--debug":
			a.Debug = a.boolFlag(value, hasValue)
		case "--version", "-v", "-V":
			a.Version = true
		}
	}
	if i >= len(argv) {
		return a
	}
	a.Verb = argv[i]
	rest, restAt := argv[i+1:], i+1
	switch a.Verb {
	case "exec":
		a.ID = verbArgs(rest, execFlags, true, func(f flagArg) {
			if f.name == "--process" {
				a.Process, a.processAt, a.processPrefix = f.value, restAt+f.at, f.prefix
			}
		})
	case "create", "run":
		help := false // the last --help's, as runc reads it
		// runc's flag parser also reads create's flags after the id.
		a.ID = verbArgs(rest, createFlags, false, func(f flagArg) {
			switch f.name {
			case "--bundle":
				a.Bundle = f.value
			case "--config":
				a.Config = f.value
			case "--help": // a prefix only where a value came with it
				help = a.boolFlag(f.value, f.prefix != "")
			case "--usage": // crun's: it prints and creates nothing (runc rejects it)
				a.NoContainer = true
			}
		})
		a.NoContainer = a.NoContainer || help
	}
	return a
}

// boolFlag reads a boolean flag as runc does (urfave/cli, Go's flag
// package): true without a value, else strconv.ParseBool's reading of it.
// runc rejects any other value and creates nothing, so the command is left
// for it to report (NoContainer). crun takes no value on its boolean flags
// and rejects them all: editing the spec of what it will not create is
// harmless.
func (a *Args) boolFlag(value string, hasValue bool) bool {
	if !hasValue {
		return true
	}
	on, err := strconv.ParseBool(value)
	if err != nil {
		a.NoContainer = true
	}
	return on
}

// flagSet is one verb's flags as runc (Go flags: -name and --name alike)
// and crun (argp: -xVALUE, and any unambiguous prefix of a long name)
// accept them.
type flagSet struct {
	long  map[string]bool   // long name, e.g. "--bundle": whether it takes a value
	short map[string]string // short name, e.g. "-b": its long name
}

// createFlags are the flags of create and run (runc and crun).
var createFlags = flagSet{
	long: map[string]bool{
		"--bundle": true, "--config": true, "--console-socket": true, "--pid-file": true,
		"--preserve-fds": true, "--pidfd-socket": true, "--detach": false, "--keep": false,
		"--no-pivot": false, "--no-new-keyring": false, "--no-subreaper": false,
		"--help": false, "--usage": false,
	},
	short: map[string]string{"-b": "--bundle", "-f": "--config", "-d": "--detach", "-h": "--help", "-?": "--help"},
}

// execFlags are the flags of exec (runc and crun).
var execFlags = flagSet{
	long: map[string]bool{
		"--console-socket": true, "--cwd": true, "--env": true, "--user": true,
		"--additional-gids": true, "--process": true, "--apparmor": true, "--process-label": true,
		"--cap": true, "--pid-file": true, "--preserve-fds": true, "--cgroup": true,
		"--pidfd-socket": true, "--detach": false, "--tty": false, "--no-new-privs": false,
		"--ignore-paused": false, "--no-subreaper": false, "--help": false, "--usage": false,
	},
	short: map[string]string{
		"-e": "--env", "-u": "--user", "-g": "--additional-gids", "-p": "--process", "-c": "--cap",
		"-d": "--detach", "-t": "--tty", "-h": "--help", "-?": "--help",
	},
}

// flagArg is one flag of a verb's command line: its long name (the
// argument itself when unknown), its value, and where the value is: in the
// argument at index at of the verb's arguments, after prefix.
type flagArg struct {
	name, value, prefix string
	at                  int
}

// parse reads the flag arg (which starts with "-"); value says whether it
// takes a value, attached says the value came with it ("--bundle=DIR",
// "-bDIR").
func (fs flagSet) parse(arg string) (f flagArg, value, attached bool) {
	name, val, attached := strings.Cut(arg, "=")
	switch {
	case strings.HasPrefix(name, "--"):
		f.name = fs.unambiguous(name)
	case len(name) == 2:
		f.name = fs.short[name]
	default: // runc's "-bundle", or crun's "-bDIR" and "-dpFILE"
		if _, ok := fs.long["-"+name]; ok {
			f.name = "-" + name
		} else {
			return fs.parseGroup(arg)
		}
	}
	if f.name == "" {
		return flagArg{name: name}, false, false
	}
	if attached {
		f.value, f.prefix = val, name+"="
	}
	return f, fs.long[f.name], attached
}

// parseGroup reads crun's (argp's) short flags written together: flags
// without a value ("-d"), then at most one with a value, which is the rest
// of the argument ("-dpFILE") or else the next one ("-dp FILE"). The last
// flag is the one returned.
func (fs flagSet) parseGroup(arg string) (f flagArg, value, attached bool) {
	for i := 1; i < len(arg); i++ {
		long := fs.short["-"+arg[i:i+1]]
		if long == "" {
			return flagArg{name: arg}, false, false
		}
		if fs.long[long] {
			if i+1 < len(arg) {
				return flagArg{name: long, value: arg[i+1:], prefix: arg[:i+1]}, true, true
			}
			return flagArg{name: long}, true, false
		}
		f.name = long
	}
	return f, false, false
}

// unambiguous returns the long flag that name is, or is the only one to
// begin with (argp accepts "--bund"); "" when none or several.
func (fs flagSet) unambiguous(name string) string {
	if _, ok := fs.long[name]; ok {
		return name
	}
	found := ""
	for long := range fs.long {
		if strings.HasPrefix(long, name) {
			if found != "" {
				return ""
			}
			found = long
		}
	}
	return found
}

// verbArgs reads a verb's arguments (rest) as runc does: it hands each flag
// to visit, its value taken from the next argument where it takes one, and
// returns the first other argument, the container id ("" when none). With
// stopAtID, what follows the id is not read.
func verbArgs(rest []string, fs flagSet, stopAtID bool, visit func(flagArg)) (id string) {
	for j := 0; j < len(rest); j++ {
		arg := rest[j]
		if arg == "--" {
			if id == "" && j+1 < len(rest) {
				id = rest[j+1]
			}
			break
		}
		if !strings.HasPrefix(arg, "-") || arg == "-" {
			if id == "" {
				id = arg
			}
			if stopAtID {
				break
			}
			continue
		}
		f, takesValue, attached := fs.parse(arg)
		f.at = j
		if takesValue && !attached && j+1 < len(rest) {
			j++
			f.value, f.at = rest[j], j
		}
		visit(f)
	}
	return id
}

// goStyleLong maps Go-flag style "-root" to "--root", as urfave/cli (runc)
// accepts both; single-letter flags stay short.
func goStyleLong(name string) string {
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

// SpecPath is the spec file the runtime will run: crun's --config (which
// crun reads relative to the working directory, except "config.json", the
// bundle's) or BUNDLE/config.json.
func (a Args) SpecPath(bundle string) string {
	if a.Config != "" && a.Config != "config.json" {
		// As crun's realpath(): "link/../x" is x beside the link's target,
		// not the lexical "x".
		if real, err := filepath.EvalSymlinks(a.Config); err == nil {
			return real
		}
		return a.Config // missing: the runtime reports it
	}
	return ocispec.Path(bundle)
}

// WithProcess returns argv (with argv[0]) whose exec --process file is path.
func (a Args) WithProcess(argv []string, path string) []string {
	out := append([]string(nil), argv...)
	out[1+a.processAt] = a.processPrefix + path
	return out
}
