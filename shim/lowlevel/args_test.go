package lowlevel

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestParseArgs(t *testing.T) {
	tests := []struct {
		name string
		argv []string
		want Args
	}{
		{"create with --bundle", []string{"create", "--bundle", "/b", "--pid-file", "/p", "id"}, Args{Verb: "create", Bundle: "/b", ID: "id"}},
		{"create with -b", []string{"create", "-b", "/b", "id"}, Args{Verb: "create", Bundle: "/b", ID: "id"}},
		{"create with --bundle=", []string{"create", "--bundle=/b", "id"}, Args{Verb: "create", Bundle: "/b", ID: "id"}},
		{"create with -bundle (go style)", []string{"create", "-bundle", "/b", "id"}, Args{Verb: "create", Bundle: "/b", ID: "id"}},
		{"create without bundle", []string{"create", "id"}, Args{Verb: "create", ID: "id"}},
		{"create with the id before its flags", []string{"create", "id", "--bundle", "/b", "--console-socket", "/s"}, Args{Verb: "create", Bundle: "/b", ID: "id"}},
		{"crun's create flags", []string{"create", "-f", "cfg.json", "--preserve-fds", "2", "--no-pivot", "id"}, Args{Verb: "create", Config: "cfg.json", ID: "id"}},
		{"run", []string{"run", "-b", "/b", "-d", "id"}, Args{Verb: "run", Bundle: "/b", ID: "id"}},
		{"docker's global flags", []string{"--root", "/run/runc", "--log", "/l.json", "--log-format", "json", "--systemd-cgroup", "create", "--bundle", "/b", "id"},
			Args{Verb: "create", Bundle: "/b", Root: "/run/runc", Log: "/l.json", LogFormat: "json", ID: "id"}},
		{"global flags with =", []string{"--root=/r", "--log=/l", "--debug", "create", "-b=/b", "id"}, Args{Verb: "create", Bundle: "/b", Root: "/r", Log: "/l", Debug: true, ID: "id"}},
		{"start is pass-through", []string{"--root", "/r", "start", "id"}, Args{Verb: "start", Root: "/r"}},
		{"delete does not look for a bundle", []string{"delete", "--force", "-b", "/x", "id"}, Args{Verb: "delete"}},
		{"unknown verb", []string{"frobnicate", "x"}, Args{Verb: "frobnicate"}},
		{"version", []string{"--version"}, Args{Version: true}},
		{"version, go style", []string{"-version"}, Args{Version: true}},
		{"runc's -v", []string{"-v"}, Args{Version: true}},
		{"crun's -V", []string{"-V"}, Args{Version: true}},
		{"--version as a flag's value", []string{"--root", "--version", "state", "id"}, Args{Verb: "state", Root: "--version"}},
		{"--version after the verb is the verb's", []string{"state", "--version"}, Args{Verb: "state"}},
		{"nothing", nil, Args{}},
		{"value that looks like a verb", []string{"--root", "create", "state", "id"}, Args{Verb: "state", Root: "create"}},
		{"bundle after --", []string{"create", "--", "-b", "/b"}, Args{Verb: "create", ID: "-b"}},
		{"exec with --process", []string{"--root", "/r", "exec", "--process", "/p.json", "--detach", "--pid-file", "/pid", "c1"},
			Args{Verb: "exec", Root: "/r", Process: "/p.json", processAt: 4, ID: "c1"}},
		{"exec with -p=", []string{"exec", "-p=/p.json", "c1"}, Args{Verb: "exec", Process: "/p.json", processAt: 1, processPrefix: "-p=", ID: "c1"}},
		{"exec with -process= (go style)", []string{"exec", "-process=/p.json", "c1"}, Args{Verb: "exec", Process: "/p.json", processAt: 1, processPrefix: "-process=", ID: "c1"}},
		{"exec with crun's -pFILE", []string{"exec", "-p/p.json", "c1"}, Args{Verb: "exec", Process: "/p.json", processAt: 1, processPrefix: "-p", ID: "c1"}},
		{"exec of a command", []string{"exec", "-e", "A=1", "c1", "sh"}, Args{Verb: "exec", ID: "c1"}},
		{"exec with runc 1.2's --pidfd-socket", []string{"exec", "--pidfd-socket", "/s", "-p", "/p.json", "c1", "-c"}, Args{Verb: "exec", Process: "/p.json", processAt: 4, ID: "c1"}},
		{"exec's --process after an ambiguous prefix", []string{"exec", "--c", "--process", "/p.json", "c1"}, Args{Verb: "exec", Process: "/p.json", processAt: 3, ID: "c1"}},
		{"create with --b (runc's short flag, long form)", []string{"run", "-d", "--b", "/b", "id"}, Args{Verb: "run", Bundle: "/b", ID: "id"}},
		{"create with crun's -bDIR", []string{"create", "-b/b", "id"}, Args{Verb: "create", Bundle: "/b", ID: "id"}},
		{"create with crun's --bund= prefix", []string{"create", "--bund=/b", "id"}, Args{Verb: "create", Bundle: "/b", ID: "id"}},
		{"create with crun's --config", []string{"create", "-b", "/b", "--config", "o.json", "id"}, Args{Verb: "create", Bundle: "/b", Config: "o.json", ID: "id"}},
		{"create with crun's -fFILE", []string{"create", "-fo.json", "id"}, Args{Verb: "create", Config: "o.json", ID: "id"}},
		{"create --help", []string{"create", "--help"}, Args{Verb: "create", NoContainer: true}},
		{"run -h with an id", []string{"run", "-h", "id"}, Args{Verb: "run", NoContainer: true, ID: "id"}},
		{"crun's create -?", []string{"create", "-?"}, Args{Verb: "create", NoContainer: true}},
		{"create with runc 1.2's --pidfd-socket", []string{"create", "--pidfd-socket", "/s", "-b", "/b", "c1"}, Args{Verb: "create", Bundle: "/b", ID: "c1"}},
		{"crun's create --usage", []string{"create", "--usage", "id"}, Args{Verb: "create", NoContainer: true, ID: "id"}},
		{"exec with crun's grouped -dp FILE", []string{"exec", "-dp", "/p.json", "c1"}, Args{Verb: "exec", Process: "/p.json", processAt: 2, ID: "c1"}},
		{"exec with crun's grouped -tdpFILE", []string{"exec", "-tdp/p.json", "c1"}, Args{Verb: "exec", Process: "/p.json", processAt: 1, processPrefix: "-tdp", ID: "c1"}},
		{"create with crun's grouped -db DIR", []string{"create", "-db", "/b", "id"}, Args{Verb: "create", Bundle: "/b", ID: "id"}},
		{"an unknown grouped flag", []string{"exec", "-dx", "c1"}, Args{Verb: "exec", ID: "c1"}},
		// Boolean flags with a value read as runc (urfave/cli) reads them:
		// strconv.ParseBool; a value it rejects makes runc fail, creating nothing.
		{"create --help=false", []string{"create", "--help=false", "id"}, Args{Verb: "create", ID: "id"}},
		{"run -h=false", []string{"run", "-h=false", "-b", "/b", "id"}, Args{Verb: "run", Bundle: "/b", ID: "id"}},
		{"create -help=0 (go style)", []string{"create", "-help=0", "id"}, Args{Verb: "create", ID: "id"}},
		{"create --help=true", []string{"create", "--help=true", "id"}, Args{Verb: "create", NoContainer: true, ID: "id"}},
		{"create -h=T", []string{"create", "-h=T", "id"}, Args{Verb: "create", NoContainer: true, ID: "id"}},
		{"create --help=yes (runc rejects it)", []string{"create", "--help=yes", "id"}, Args{Verb: "create", NoContainer: true, ID: "id"}},
		{"create --help --help=false (the last counts)", []string{"create", "--help", "--help=false", "id"}, Args{Verb: "create", ID: "id"}},
		{"create --help= (runc rejects it)", []string{"create", "--help=", "id"}, Args{Verb: "create", NoContainer: true, ID: "id"}},
		{"--debug=1", []string{"--debug=1", "create", "id"}, Args{Verb: "create", Debug: true, ID: "id"}},
		{"--debug=t", []string{"--debug=t", "create", "id"}, Args{Verb: "create", Debug: true, ID: "id"}},
		{"--debug=TRUE", []string{"--debug=TRUE", "create", "id"}, Args{Verb: "create", Debug: true, ID: "id"}},
		{"-debug=0 (go style)", []string{"-debug=0", "create", "id"}, Args{Verb: "create", ID: "id"}},
		{"--debug=false", []string{"--debug=false", "create", "id"}, Args{Verb: "create", ID: "id"}},
		{"--debug=on (runc rejects it)", []string{"--debug=on", "create", "id"}, Args{Verb: "create", NoContainer: true, ID: "id"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ParseArgs(tt.argv); !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("ParseArgs(%q) = %+v, want %+v", tt.argv, got, tt.want)
			}
		})
	}
}

func TestModifiesSpec(t *testing.T) {
	for _, tt := range []struct {
		args Args
		want bool
	}{
		{Args{Verb: "create", ID: "c"}, true},
		{Args{Verb: "run", ID: "c"}, true},
		{Args{Verb: "create"}, false},                          // runc's "requires exactly 1 argument"
		{Args{Verb: "run", ID: "c", NoContainer: true}, false}, // its help, no container
		{Args{Verb: "start", ID: "c"}, false},
		{Args{Verb: "delete", ID: "c"}, false},
		{Args{Verb: "exec", ID: "c"}, false},
		{Args{}, false},
	} {
		if got := tt.args.ModifiesSpec(); got != tt.want {
			t.Errorf("%+v.ModifiesSpec() = %v", tt.args, got)
		}
	}
}

func TestPassesThrough(t *testing.T) {
	for _, tt := range []struct {
		argv []string
		want bool
	}{
		{[]string{"--root", "/r", "start", "c"}, true},
		{[]string{"delete", "--force", "c"}, true},
		{[]string{"state", "c"}, true},
		{[]string{"--help"}, true},
		{[]string{"exec", "c", "sh"}, true},                    // no process file: the container's env as created
		{[]string{"create", "c"}, false},                       // the edits
		{[]string{"run", "-b", "/b", "c"}, false},              // the edits
		{[]string{"--version"}, false},                         // ours first
		{[]string{"-V"}, false},                                // ours first
		{[]string{"exec", "--process", "/p.json", "c"}, false}, // the container's GreenBoost env
	} {
		if got := ParseArgs(tt.argv).PassesThrough(); got != tt.want {
			t.Errorf("ParseArgs(%q).PassesThrough() = %v, want %v", tt.argv, got, tt.want)
		}
	}
}

func TestWithProcess(t *testing.T) {
	for _, argv := range [][]string{
		{"gr", "--root", "/r", "exec", "--process", "/p.json", "c1"},
		{"gr", "exec", "-p=/p.json", "-d", "c1"},
		{"gr", "exec", "-p/p.json", "c1"},
	} {
		got := ParseArgs(argv[1:]).WithProcess(argv, "/proc/self/fd/7")
		want := strings.Replace(strings.Join(argv, " "), "/p.json", "/proc/self/fd/7", 1)
		if strings.Join(got, " ") != want || strings.Join(argv, " ") == want {
			t.Errorf("WithProcess(%q) = %q, want %q", argv, got, want)
		}
	}
}

func TestSpecPath(t *testing.T) {
	if got := (Args{}).SpecPath("/b"); got != "/b/config.json" {
		t.Errorf("without --config: %s", got)
	}
	// crun reads --config relative to the working directory, not the bundle
	if got := (Args{Config: "o.json"}).SpecPath("/b"); got != "o.json" {
		t.Errorf("--config o.json: %s", got)
	}
	if got := (Args{Config: "config.json"}).SpecPath("/b"); got != "/b/config.json" {
		t.Errorf("--config config.json (crun reads the bundle's): %s", got)
	}
	// crun resolves the path with realpath(): "link/../o.json" is o.json
	// beside the link's target, not the one that lexical cleaning names
	dir := t.TempDir()
	target := filepath.Join(dir, "other", "dir")
	if err := os.MkdirAll(target, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{filepath.Join(dir, "other", "o.json"), filepath.Join(dir, "o.json")} {
		if err := os.WriteFile(f, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(target, filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	t.Chdir(dir)
	if got, want := (Args{Config: "link/../o.json"}).SpecPath("/b"), filepath.Join(dir, "other", "o.json"); got != want {
		t.Errorf("--config link/../o.json: %s, want %s", got, want)
	}
}

// FuzzParseArgs: any argv parses without a panic; a spec is edited only for
// a create or run with an id; and swapping in an exec process file changes
// that one argument, to the new path, and nothing else.
func FuzzParseArgs(f *testing.F) {
	f.Add("--root\x00/r\x00create\x00--bundle\x00/b\x00--pid-file\x00/p\x00id")
	f.Add("exec\x00-p/p.json\x00c1")
	f.Add("exec\x00--pidfd-socket\x00/s\x00--process=/p.json\x00c1\x00-c")
	f.Add("create\x00--\x00-b\x00/b")
	f.Add("run\x00-bDIR\x00--bund=/x\x00-f\x00cfg.json\x00id")
	f.Fuzz(func(t *testing.T, joined string) {
		argv := strings.Split(joined, "\x00")
		a := ParseArgs(argv)
		if a.ModifiesSpec() && (a.ID == "" || (a.Verb != "create" && a.Verb != "run")) {
			t.Fatalf("%q: edits the spec of %+v", argv, a)
		}
		if a.Process == "" {
			return
		}
		full := append([]string{"greenboost-runtime"}, argv...)
		out := a.WithProcess(full, "/proc/self/fd/9")
		changed := 0
		for i := range full {
			if out[i] != full[i] {
				changed++
				if !strings.HasSuffix(out[i], "/proc/self/fd/9") || !strings.HasSuffix(full[i], a.Process) {
					t.Fatalf("%q: argument %d %q became %q (process %q)", argv, i, full[i], out[i], a.Process)
				}
			}
		}
		if changed > 1 || len(out) != len(full) {
			t.Fatalf("%q: WithProcess changed %d arguments: %q", argv, changed, out)
		}
	})
}
