package shim

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/opencontainers/runtime-spec/specs-go"

	"github.com/greenboost/greenboost-container-toolkit/internal/ocispec"
)

// The wrapper ends in syscall.Exec, so these tests run the real binary with a
// fake low-level runtime on PATH that records how it was called.
var wrapperBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "greenboost-runtime-test")
	if err != nil {
		panic(err)
	}
	wrapperBin = filepath.Join(dir, "greenboost-runtime")
	out, err := exec.Command("go", "build", "-o", wrapperBin, "../cmd/greenboost-runtime").CombinedOutput()
	if err != nil {
		panic("building greenboost-runtime: " + err.Error() + "\n" + string(out))
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

type fakeRuntime struct {
	dir, calls string
}

// processSeen is the last exec process file the wrapper handed the fake
// runtime as a /proc/self/fd path.
func (f fakeRuntime) processSeen(t *testing.T) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(f.dir, "process-seen"))
	if err != nil {
		t.Fatalf("the runtime got no process file of the wrapper's: %v", err)
	}
	return data
}

// calledWith reports whether any call of the runtime had exactly args.
func (f fakeRuntime) calledWith(t *testing.T, args ...string) bool {
	t.Helper()
	data, _ := os.ReadFile(f.calls)
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		if line == strings.Join(args, "\x00")+"\x00" {
			return true
		}
	}
	return false
}

// newFakeRuntime puts a "runc" on a fresh PATH that appends its argv (one
// line, NUL-separated) to a file and prints "fake runc" for --version.
func newFakeRuntime(t *testing.T) fakeRuntime {
	t.Helper()
	dir := t.TempDir()
	calls := filepath.Join(dir, "calls")
	script := "#!/bin/sh\nprintf '%s\\0' \"$@\" >> " + calls + "\necho >> " + calls + "\n" +
		"case \"$1\" in --version) echo 'fake runc version 9';; esac\n" +
		"for a in \"$@\"; do [ \"$a\" = state ] && [ -n \"$FAKE_BUNDLE\" ] && echo \"{\\\"id\\\":\\\"c1\\\",\\\"pid\\\":1,\\\"bundle\\\":\\\"$FAKE_BUNDLE\\\"}\"; done\n" +
		// an exec process file the wrapper made, readable only here
		"for a in \"$@\"; do case \"$a\" in *=/proc/self/fd/*|/proc/self/fd/*) cat \"${a#*=}\" > " + filepath.Join(dir, "process-seen") + ";; esac; done\nexit 0\n"
	if err := os.WriteFile(filepath.Join(dir, "runc"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return fakeRuntime{dir: dir, calls: calls}
}

func (f fakeRuntime) lastCall(t *testing.T) []string {
	t.Helper()
	data, err := os.ReadFile(f.calls)
	if err != nil {
		t.Fatalf("the low-level runtime was not called: %v", err)
	}
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	return strings.Split(strings.TrimSuffix(lines[len(lines)-1], "\x00"), "\x00")
}

func (f fakeRuntime) run(t *testing.T, cfgPath string, args ...string) (string, string, error) {
	t.Helper()
	return f.runEnv(t, []string{"GREENBOOST_CONFIG=" + cfgPath}, args...)
}

func (f fakeRuntime) runEnv(t *testing.T, env []string, args ...string) (string, string, error) {
	t.Helper()
	cmd := exec.Command(wrapperBin, args...)
	cmd.Env = append([]string{"PATH=" + f.dir + ":/usr/bin:/bin"}, env...)
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	return stdout.String(), stderr.String(), err
}

// writeTestConfig writes a config for the fake runtime; limits are more
// lines for its [limits] table.
func writeTestConfig(t *testing.T, limits string) string {
	t.Helper()
	lib, _ := filepath.Abs("testdata/libgreenboost_cuda.so")
	dir := t.TempDir()
	path := filepath.Join(dir, "config.toml")
	content := `[runtime]
runtimes = ["runc"]
log-file = "` + filepath.Join(dir, "runtime.log") + `"
[device]
host-path = "/dev/null"
[library]
host-paths = ["` + lib + `"]
[kmod]
load = "never"
[limits]
enforce = false
` + limits
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestPassThroughVerbs(t *testing.T) {
	f := newFakeRuntime(t)
	// A broken config must not break verbs that never read it.
	cfg := filepath.Join(t.TempDir(), "config.toml")
	os.WriteFile(cfg, []byte("[limits]\nram = \"bogus\"\n"), 0o644)
	for _, args := range [][]string{
		{"--root", "/run/x", "--log", "/l.json", "--log-format", "json", "start", "c1"},
		{"delete", "--force", "c1"},
		{"state", "c1"},
		{"--help"},
		{"features"},
		{"--root", "/run/x", "frobnicate", "--bundle", "/b", "c1"}, // a verb we do not know
	} {
		stdout, stderr, err := f.run(t, cfg, args...)
		if err != nil || stderr != "" || stdout != "" {
			t.Fatalf("%v: err=%v stdout=%q stderr=%q", args, err, stdout, stderr)
		}
		if got := f.lastCall(t); strings.Join(got, " ") != strings.Join(args, " ") {
			t.Fatalf("runc got %q, want %q", got, args)
		}
	}
}

// A verb that passes through becomes runc before the CDI library and its
// dependencies initialise (shim/passthrough); create, which needs them, does
// not. Go's inittrace names each package it initialises.
func TestPassThroughSkipsTheCDILibrary(t *testing.T) {
	f := newFakeRuntime(t)
	cfg := writeTestConfig(t, "")
	const cdiInit = "init tags.cncf.io/container-device-interface/"
	trace := []string{"GREENBOOST_CONFIG=" + cfg, "GODEBUG=inittrace=1"}
	_, stderr, err := f.runEnv(t, trace, "--root", "/run/x", "state", "c1")
	if err != nil || !strings.Contains(stderr, "init runtime @") {
		t.Fatalf("state: err=%v, no init trace in stderr %q", err, stderr)
	}
	if strings.Contains(stderr, cdiInit) || strings.Contains(stderr, "init gopkg.in/yaml") {
		t.Errorf("the pass-through initialised the CDI library before it exec'd runc:\n%s", stderr)
	}
	if got := f.lastCall(t); strings.Join(got, " ") != "--root /run/x state c1" {
		t.Errorf("runc got %q", got)
	}
	_, stderr, err = f.runEnv(t, trace, "create", "--bundle", bundleWith(t, "testdata/plain/in.json"), "c1")
	if err != nil || !strings.Contains(stderr, cdiInit) {
		t.Errorf("create: err=%v; the CDI library's init not in its trace, so the check above proves nothing:\n%s", err, stderr)
	}
}

func TestVersionShowsBoth(t *testing.T) {
	f := newFakeRuntime(t)
	stdout, _, err := f.run(t, "/nonexistent.toml", "--version")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(stdout, "greenboost-runtime version") || !strings.Contains(stdout, "commit:") || !strings.Contains(stdout, "fake runc version 9") {
		t.Fatalf("--version printed %q", stdout)
	}
	// runc's -v and crun's -V
	for _, flag := range []string{"-v", "-V"} {
		if stdout, _, _ := f.run(t, "/nonexistent.toml", flag); !strings.HasPrefix(stdout, "greenboost-runtime version") {
			t.Errorf("%s printed %q, want our version first", flag, stdout)
		}
	}
}

// Without a low-level runtime --version still answers: ours on stdout, the
// missing runtime named on stderr (the line a failure gives), exit 0.
func TestVersionWithoutRuntime(t *testing.T) {
	f := newFakeRuntime(t)
	cfg := filepath.Join(t.TempDir(), "config.toml")
	if err := os.WriteFile(cfg, []byte("[runtime]\nruntimes = [\"gb-no-such-runtime\"]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	stdout, stderr, err := f.run(t, cfg, "--version")
	if err != nil || !strings.HasPrefix(stdout, "greenboost-runtime version") || strings.Count(stdout, "\n") != 2 ||
		!strings.HasPrefix(stderr, "greenboost-runtime: no low-level runtime found") || !strings.Contains(stderr, "gb-no-such-runtime") || strings.Count(stderr, "\n") != 1 {
		t.Fatalf("--version without a runtime: err=%v (want exit 0) stdout=%q stderr=%q", err, stdout, stderr)
	}
}

func TestCreateEditsThenExecs(t *testing.T) {
	f := newFakeRuntime(t)
	for _, verb := range []string{"create", "run"} {
		t.Run(verb, func(t *testing.T) {
			cfg := writeTestConfig(t, "")
			bundle := bundleWith(t, "testdata/plain/in.json")
			args := []string{"--root", "/run/runc", verb, "--bundle", bundle, "--pid-file", "/p", "c1"}
			stdout, stderr, err := f.run(t, cfg, args...)
			if err != nil || stdout != "" || stderr != "" {
				t.Fatalf("err=%v stdout=%q stderr=%q", err, stdout, stderr)
			}
			if got := f.lastCall(t); strings.Join(got, " ") != strings.Join(args, " ") {
				t.Fatalf("runc got %q, want %q", got, args)
			}
			spec, err := LoadSpec(ocispec.Path(bundle))
			if err != nil {
				t.Fatal(err)
			}
			spec.Close()
			hooks := spec.Raw().Hooks
			if hooks == nil || len(hooks.Prestart) != 1 || hooks.Prestart[0].Args[2] != cfg {
				t.Fatalf("the hook does not carry the effective config path %s: %+v", cfg, hooks)
			}
		})
	}
}

// The wrapper edits the spec file the runtime will run, however its
// command line names it (runc's Go flags, crun's argp forms and --config),
// and nothing when create or run makes no container.
func TestCreateEditsTheSpecTheRuntimeRuns(t *testing.T) {
	f := newFakeRuntime(t)
	cfg := writeTestConfig(t, "")
	plain, _ := os.ReadFile("testdata/plain/in.json")
	edited := func(path string) bool {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		return strings.Contains(string(data), "greenboost-hook")
	}
	for _, tt := range []struct {
		name string
		args func(bundle string) []string
		spec string // the file that must be edited, in the bundle
	}{
		{"runc's --b", func(b string) []string { return []string{"run", "-d", "--b", b, "c1"} }, "config.json"},
		{"crun's -bDIR", func(b string) []string { return []string{"create", "-b" + b, "c1"} }, "config.json"},
		{"crun's --bund=", func(b string) []string { return []string{"create", "--bund=" + b, "c1"} }, "config.json"},
		{"runc's --help=false", func(b string) []string { return []string{"create", "--help=false", "--bundle", b, "c1"} }, "config.json"},
		{"crun's --config", func(b string) []string {
			return []string{"create", "--bundle", b, "--config", filepath.Join(b, "other.json"), "c1"}
		}, "other.json"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			bundle := t.TempDir()
			for _, name := range []string{"config.json", "other.json"} {
				os.WriteFile(filepath.Join(bundle, name), plain, 0o644)
			}
			// run from elsewhere, so the working directory is no bundle
			if _, stderr, err := f.run(t, cfg, tt.args(bundle)...); err != nil {
				t.Fatalf("%v: %s", err, stderr)
			}
			for _, name := range []string{"config.json", "other.json"} {
				if got := edited(filepath.Join(bundle, name)); got != (name == tt.spec) {
					t.Errorf("%s edited: %v, want only %s edited", name, got, tt.spec)
				}
			}
			// The hook reads the container's requests from the spec the
			// runtime runs; it is told where that is when not config.json.
			var spec specs.Spec
			if err := ocispec.Decode(filepath.Join(bundle, tt.spec), &spec); err != nil || spec.Hooks == nil || len(spec.Hooks.Prestart) != 1 {
				t.Fatalf("the edited spec's prestart hooks: %v (%v)", spec.Hooks, err)
			}
			args := spec.Hooks.Prestart[0].Args
			want := []string{"greenboost-hook", "--config", cfg, "prestart"}
			if tt.spec != "config.json" {
				want = []string{"greenboost-hook", "--config", cfg, "--spec", filepath.Join(bundle, tt.spec), "prestart"}
			}
			if !slices.Equal(args, want) {
				t.Errorf("prestart hook args %q, want %q", args, want)
			}
		})
	}

	// help, no container id, or a boolean flag value runc rejects: the
	// runtime answers, the spec is untouched, even where the config would
	// refuse to create (enforce = true).
	strict := writeTestConfig(t, "")
	data, _ := os.ReadFile(strict)
	os.WriteFile(strict, []byte(strings.Replace(string(data), "enforce = false", "enforce = true", 1)), 0o644)
	for _, args := range [][]string{{"create", "--help"}, {"run", "-h"}, {"create", "-?"}, {"create"}, {"run", "--bundle", "."},
		{"create", "--help=yes", "c1"}, {"--debug=on", "create", "c1"}} {
		bundle := bundleWith(t, "testdata/plain/in.json")
		cmd := exec.Command(wrapperBin, args...)
		cmd.Dir = bundle
		cmd.Env = []string{"PATH=" + f.dir + ":/usr/bin:/bin", "GREENBOOST_CONFIG=" + strict}
		if out, err := cmd.CombinedOutput(); err != nil || len(out) != 0 {
			t.Errorf("%v: err=%v output=%q", args, err, out)
		}
		if got := f.lastCall(t); strings.Join(got, " ") != strings.Join(args, " ") {
			t.Errorf("runc got %q, want %q", got, args)
		}
		if after, _ := os.ReadFile(filepath.Join(bundle, "config.json")); string(after) != string(plain) {
			t.Errorf("%v changed the spec", args)
		}
	}
}

// crun reads a relative --config from its working directory; the hook runs
// elsewhere, so it is given the absolute path.
func TestCreateGivesTheHookARelativeConfigAsAbsolute(t *testing.T) {
	f := newFakeRuntime(t)
	cfg := writeTestConfig(t, "")
	bundle := bundleWith(t, "testdata/plain/in.json")
	work := t.TempDir()
	plain, _ := os.ReadFile("testdata/plain/in.json")
	if err := os.WriteFile(filepath.Join(work, "other.json"), plain, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(wrapperBin, "create", "--bundle", bundle, "--config", "other.json", "c1")
	cmd.Dir = work
	cmd.Env = []string{"PATH=" + f.dir + ":/usr/bin:/bin", "GREENBOOST_CONFIG=" + cfg}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	var spec specs.Spec
	if err := ocispec.Decode(filepath.Join(work, "other.json"), &spec); err != nil || spec.Hooks == nil || len(spec.Hooks.Prestart) != 1 {
		t.Fatalf("the edited spec's prestart hooks: %v (%v)", spec.Hooks, err)
	}
	want := []string{"greenboost-hook", "--config", cfg, "--spec", filepath.Join(work, "other.json"), "prestart"}
	if args := spec.Hooks.Prestart[0].Args; !slices.Equal(args, want) {
		t.Errorf("prestart hook args %q, want %q", args, want)
	}
}

// runc's --debug turns our log to debug whatever [runtime] log-level says.
func TestDebugFlagRaisesLogLevel(t *testing.T) {
	f := newFakeRuntime(t)
	for _, tt := range []struct {
		global    []string
		wantDebug bool
	}{{nil, false}, {[]string{"--debug"}, true}, {[]string{"--debug=1"}, true}, {[]string{"--debug=false"}, false}} {
		cfg := writeTestConfig(t, "")
		args := append(slices.Clone(tt.global), "create", "--bundle", bundleWith(t, "testdata/plain/in.json"), "c1")
		if _, stderr, err := f.run(t, cfg, args...); err != nil {
			t.Fatalf("%v: %v %s", args, err, stderr)
		}
		data, err := os.ReadFile(filepath.Join(filepath.Dir(cfg), "runtime.log"))
		if err != nil || !strings.Contains(string(data), "level=INFO msg=\"applied GreenBoost edits\"") {
			t.Fatalf("%v: runtime.log = %q (%v)", args, data, err)
		}
		if got := strings.Contains(string(data), "level=DEBUG msg=\"exec low-level runtime\""); got != tt.wantDebug {
			t.Fatalf("%v: debug line logged = %v, want %v: %q", args, got, tt.wantDebug, data)
		}
	}
}

func TestCreateFromCwd(t *testing.T) {
	f := newFakeRuntime(t)
	bundle := bundleWith(t, "testdata/plain/in.json")
	cmd := exec.Command(wrapperBin, "create", "c1")
	cmd.Dir = bundle
	cmd.Env = []string{"PATH=" + f.dir + ":/usr/bin:/bin", "GREENBOOST_CONFIG=" + writeTestConfig(t, "")}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	data, _ := os.ReadFile(filepath.Join(bundle, "config.json"))
	if !strings.Contains(string(data), "GREENBOOST_ACTIVE=1") {
		t.Fatal("the bundle in the working directory was not edited")
	}
}

func TestCreateFailureIsReported(t *testing.T) {
	f := newFakeRuntime(t)
	cfg := writeTestConfig(t, "ram = \"lots\"\n")
	bundle := bundleWith(t, "testdata/plain/in.json")
	logFile := filepath.Join(t.TempDir(), "log.json")
	stdout, stderr, err := f.run(t, cfg, "--log", logFile, "--log-format", "json", "create", "-b", bundle, "c1")
	if err == nil {
		t.Fatal("create succeeded with a bad config")
	}
	if stdout != "" || strings.Count(stderr, "\n") != 1 || !strings.Contains(stderr, "limits.ram") || !strings.Contains(stderr, cfg) {
		t.Fatalf("stderr must be one line naming the key and file: %q", stderr)
	}
	if _, err := os.Stat(f.calls); err == nil {
		t.Fatal("runc ran despite the failure")
	}
	var entry map[string]string
	data, _ := os.ReadFile(logFile)
	if err := json.Unmarshal(data, &entry); err != nil || entry["level"] != "error" || !strings.Contains(entry["msg"], "limits.ram") {
		t.Fatalf("runc --log entry = %q (%v)", data, err)
	}
}

// crun's --log also takes "file:PATH", and "journald:ID" or "syslog:ID",
// which name no file.
func TestCreateFailureInCrunLogForms(t *testing.T) {
	f := newFakeRuntime(t)
	cfg := writeTestConfig(t, "ram = \"lots\"\n")
	bundle := bundleWith(t, "testdata/plain/in.json")
	logFile := filepath.Join(t.TempDir(), "log")
	if _, _, err := f.run(t, cfg, "--log", "file:"+logFile, "create", "-b", bundle, "c1"); err == nil {
		t.Fatal("create succeeded with a bad config")
	}
	if data, _ := os.ReadFile(logFile); !strings.Contains(string(data), "level=error") || !strings.Contains(string(data), "limits.ram") {
		t.Fatalf("--log file:%s has %q", logFile, data)
	}
	for _, log := range []string{"journald:gb", "syslog:gb"} {
		cmd := exec.Command(wrapperBin, "--log", log, "create", "c1")
		cmd.Dir = bundle
		cmd.Env = []string{"PATH=" + f.dir + ":/usr/bin:/bin", "GREENBOOST_CONFIG=" + cfg}
		if out, err := cmd.CombinedOutput(); err == nil {
			t.Fatalf("create succeeded with a bad config: %s", out)
		}
		if _, err := os.Stat(filepath.Join(bundle, log)); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("--log %s made a file of that name (stat: %v)", log, err)
		}
	}
}

// A create that fails after the config loaded is also in [runtime]
// log-file: engines may drop the wrapper's stderr.
func TestCreateFailureIsLogged(t *testing.T) {
	f := newFakeRuntime(t)
	for _, tt := range []struct {
		name, runtime, bundle, want string
	}{
		{"no config.json", "runc", t.TempDir(), "config.json"},
		{"no runtime", "gb-no-such-runtime", bundleWith(t, "testdata/plain/in.json"), "no low-level runtime found"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := writeTestConfig(t, "")
			editConfigLine(t, cfg, `runtimes = ["runc"]`, fmt.Sprintf("runtimes = [%q]", tt.runtime))
			if _, _, err := f.run(t, cfg, "create", "-b", tt.bundle, "c1"); err == nil {
				t.Fatal("create succeeded")
			}
			data, err := os.ReadFile(filepath.Join(filepath.Dir(cfg), "runtime.log"))
			if err != nil || !strings.Contains(string(data), "level=ERROR") || !strings.Contains(string(data), tt.want) {
				t.Fatalf("runtime.log = %q (%v), want the error naming %q", data, err, tt.want)
			}
		})
	}
}

// editConfigLine replaces the line old of the config file at path.
func editConfigLine(t *testing.T, path, old, new string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil || !strings.Contains(string(data), old+"\n") {
		t.Fatalf("config %s lacks the line %q (%v)", path, old, err)
	}
	if err := os.WriteFile(path, []byte(strings.Replace(string(data), old+"\n", new+"\n", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestNoRuntimeFound(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "config.toml")
	if err := os.WriteFile(cfg, []byte("[runtime]\nruntimes = [\"gb-no-such-runtime\"]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	pathDir := t.TempDir()
	cmd := exec.Command(wrapperBin, "state", "c1")
	cmd.Env = []string{"PATH=" + pathDir, "GREENBOOST_CONFIG=" + cfg}
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "no low-level runtime found") || !strings.Contains(string(out), "gb-no-such-runtime") ||
		!strings.Contains(string(out), pathDir+":/usr/local/sbin:") || !strings.Contains(string(out), "[runtime] runtimes in "+cfg) {
		t.Fatalf("err=%v out=%q", err, out)
	}
}

// Engines do not always give the runtime a PATH (podman's delete runs with
// an empty environment): a name is then found in the standard directories.
func TestRuntimeFoundWithoutPath(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "config.toml")
	// true is in /usr/bin or /bin everywhere and takes any arguments.
	if err := os.WriteFile(cfg, []byte("[runtime]\nruntimes = [\"true\"]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, env := range [][]string{{}, {"PATH="}, {"PATH=relative/dir"}} {
		cmd := exec.Command(wrapperBin, "state", "c1")
		cmd.Env = append(env, "GREENBOOST_CONFIG="+cfg)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("env %q: %v %s", env, err, out)
		}
	}
}

// Installed as "runc" ahead of the real one on PATH (a symlink, a hard link
// or a copy), the wrapper passes over itself to the next runc on PATH, for
// every verb and on create.
func TestRuntimeFoundPastTheWrapperOnPath(t *testing.T) {
	f := newFakeRuntime(t)
	cfg := writeTestConfig(t, "")
	data, err := os.ReadFile(wrapperBin)
	if err != nil {
		t.Fatal(err)
	}
	for _, install := range []string{"symlink", "copy"} {
		ahead := t.TempDir()
		runc := filepath.Join(ahead, "runc")
		if install == "symlink" {
			err = os.Symlink(wrapperBin, runc)
		} else {
			err = os.WriteFile(runc, data, 0o755)
		}
		if err != nil {
			t.Fatal(err)
		}
		for _, args := range [][]string{{"state", "c1"}, {"create", "--bundle", bundleWith(t, "testdata/plain/in.json"), "c1"}} {
			cmd := exec.Command(runc, args...)
			cmd.Env = []string{"PATH=" + ahead + ":" + f.dir + ":/usr/bin:/bin", "GREENBOOST_CONFIG=" + cfg}
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("%s: runc %q: %v %s", install, args, err, out)
			}
			if got := f.lastCall(t); strings.Join(got, " ") != strings.Join(args, " ") {
				t.Fatalf("%s: the runc past the wrapper got %q, want %q", install, got, args)
			}
		}
	}
}

func TestExecGetsTheContainersGreenBoostEnv(t *testing.T) {
	f := newFakeRuntime(t)
	cfg := writeTestConfig(t, "")
	bundle := bundleWith(t, "testdata/image-ld-preload/in.json")
	if _, stderr, err := f.run(t, cfg, "create", "--bundle", bundle, "c1"); err != nil {
		t.Fatalf("create: %v %s", err, stderr)
	}
	process := filepath.Join(t.TempDir(), "process.json")
	write := func(env string) {
		os.WriteFile(process, []byte(`{"args":["sh"],"cwd":"/","env":[`+env+`]}`), 0o600)
	}
	// As docker builds it from its own copy of the config: no LD_PRELOAD of ours.
	write(`"PATH=/bin","LD_PRELOAD=/usr/lib/libexec.so"`)
	engines, _ := os.ReadFile(process)
	_, stderr, err := f.runEnv(t, []string{"GREENBOOST_CONFIG=" + cfg, "FAKE_BUNDLE=" + bundle},
		"--root", "/r", "--log", "/l.json", "exec", "--process", process, "--detach", "c1")
	if err != nil {
		t.Fatalf("exec: %v %s", err, stderr)
	}
	want := []string{"PATH=/bin", "LD_PRELOAD=/usr/lib/greenboost/libgreenboost_cuda.so:/usr/lib/libexec.so", "GREENBOOST_ACTIVE=1"}
	envOf := func(data []byte) []string {
		var p struct{ Env []string }
		if err := json.Unmarshal(data, &p); err != nil {
			t.Fatalf("exec process %q: %v", data, err)
		}
		return p.Env
	}
	if env := envOf(f.processSeen(t)); strings.Join(env, " ") != strings.Join(want, " ") {
		t.Fatalf("exec process env = %q, want %q", env, want)
	}
	got := f.lastCall(t)
	if len(got) != 9 || got[3] != "/l.json" || got[4] != "exec" || got[5] != "--process" || !strings.HasPrefix(got[6], "/proc/self/fd/") {
		t.Fatalf("runc got %q, want the engine's argv with our copy as --process", got)
	}
	if after, _ := os.ReadFile(process); string(after) != string(engines) {
		t.Fatalf("the engine's process file changed: %s", after)
	}
	// The state query takes the engine's --root, not its --log (runc would
	// write our query's errors there).
	if !f.calledWith(t, "--root", "/r", "state", "c1") {
		t.Fatalf("no `runc --root /r state c1` call: %s", func() []byte { d, _ := os.ReadFile(f.calls); return d }())
	}

	// A process file that can be read once (a pipe), given attached.
	cmd := exec.Command(wrapperBin, "exec", "-p=/dev/stdin", "c1")
	cmd.Env = []string{"PATH=" + f.dir + ":/usr/bin:/bin", "GREENBOOST_CONFIG=" + cfg, "FAKE_BUNDLE=" + bundle}
	cmd.Stdin = strings.NewReader(`{"args":["sh"],"cwd":"/","env":["PATH=/bin"]}`)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("exec -p=/dev/stdin: %v %s", err, out)
	}
	if got := f.lastCall(t); len(got) != 3 || !strings.HasPrefix(got[1], "-p=/proc/self/fd/") {
		t.Fatalf("runc got %q", got)
	}
	if env := envOf(f.processSeen(t)); strings.Join(env, " ") != "PATH=/bin LD_PRELOAD=/usr/lib/greenboost/libgreenboost_cuda.so GREENBOOST_ACTIVE=1" {
		t.Fatalf("exec process from a pipe: env = %q", env)
	}

	// A pipe that does not parse reaches the runtime as it was read.
	cmd = exec.Command(wrapperBin, "exec", "-p", "/dev/stdin", "c1")
	cmd.Env = []string{"PATH=" + f.dir + ":/usr/bin:/bin", "GREENBOOST_CONFIG=" + cfg, "FAKE_BUNDLE=" + bundle}
	cmd.Stdin = strings.NewReader("{not json")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("exec -p /dev/stdin (bad JSON): %v %s", err, out)
	}
	if seen := f.processSeen(t); string(seen) != "{not json" {
		t.Fatalf("the runtime got %q, want the bytes read from the pipe", seen)
	}

	// Only env changes: members the engine left out (user, cwd) stay out,
	// for the runtime's defaults, and a file without env (crun then gives
	// the container's, ours included) or one the runtime must refuse goes to
	// it byte for byte.
	os.WriteFile(process, []byte(`{"args":["true"],"env":["PATH=/bin"],"x-extra":{"n":18446744073709551615}}`), 0o600)
	if _, stderr, err := f.runEnv(t, []string{"GREENBOOST_CONFIG=" + cfg, "FAKE_BUNDLE=" + bundle}, "exec", "-p", process, "c1"); err != nil {
		t.Fatalf("exec: %v %s", err, stderr)
	}
	if seen := string(f.processSeen(t)); seen != `{"args":["true"],"env":["PATH=/bin","LD_PRELOAD=/usr/lib/greenboost/libgreenboost_cuda.so","GREENBOOST_ACTIVE=1"],"x-extra":{"n":18446744073709551615}}` {
		t.Fatalf("exec process with members left out: the runtime got %s", seen)
	}
	for _, doc := range []string{`{"args":["/bin/env"],"cwd":"/"}`, `{}`, `{"args":["sh"],"env":null}`, `null`, `{"env":"PATH=/bin"}`} {
		os.WriteFile(process, []byte(doc), 0o600)
		if _, stderr, err := f.runEnv(t, []string{"GREENBOOST_CONFIG=" + cfg, "FAKE_BUNDLE=" + bundle}, "exec", "-p", process, "c1"); err != nil {
			t.Fatalf("exec: %v %s", err, stderr)
		}
		if seen := string(f.processSeen(t)); seen != doc {
			t.Errorf("exec process %s: the runtime got %s, want it as written", doc, seen)
		}
	}

	// A file the wrapper cannot read is the runtime's to report.
	if _, stderr, err := f.runEnv(t, []string{"GREENBOOST_CONFIG=" + cfg, "FAKE_BUNDLE=" + bundle}, "exec", "--process", "/nonexistent.json", "c1"); err != nil || stderr != "" {
		t.Fatalf("exec --process /nonexistent.json: err=%v stderr=%q", err, stderr)
	}
	if got := f.lastCall(t); strings.Join(got, " ") != "exec --process /nonexistent.json c1" {
		t.Fatalf("runc got %q", got)
	}

	// A container without GreenBoost keeps its exec process as it is: the
	// runtime gets the engine's argv, the engine's file.
	plain := bundleWith(t, "testdata/opt-out-env/in.json")
	write(`"PATH=/bin"`)
	if _, stderr, err := f.runEnv(t, []string{"GREENBOOST_CONFIG=" + cfg, "FAKE_BUNDLE=" + plain}, "exec", "-p", process, "c2"); err != nil {
		t.Fatalf("exec: %v %s", err, stderr)
	}
	if got := f.lastCall(t); strings.Join(got, " ") != "exec -p "+process+" c2" {
		t.Fatalf("exec of a plain container: runc got %q, want the engine's argv", got)
	}
	// Nor does one whose image sets GREENBOOST_ACTIVE=1: only our hook in
	// the spec marks GreenBoost.
	optOut, _ := os.ReadFile("testdata/opt-out-env/in.json")
	imageActive := filepath.Join(t.TempDir(), "in.json")
	os.WriteFile(imageActive, bytes.Replace(optOut, []byte(`"GREENBOOST_DISABLE=1"`), []byte(`"GREENBOOST_DISABLE=1", "GREENBOOST_ACTIVE=1"`), 1), 0o644)
	if _, stderr, err := f.runEnv(t, []string{"GREENBOOST_CONFIG=" + cfg, "FAKE_BUNDLE=" + bundleWith(t, imageActive)}, "exec", "-p", process, "c3"); err != nil {
		t.Fatalf("exec: %v %s", err, stderr)
	}
	if got := f.lastCall(t); strings.Join(got, " ") != "exec -p "+process+" c3" {
		t.Fatalf("exec of a container whose image sets GREENBOOST_ACTIVE: runc got %q, want the engine's argv", got)
	}
}
