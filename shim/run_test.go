package shim

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
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

// newFakeRuntime puts a "runc" on a fresh PATH that appends its argv (one
// line, NUL-separated) to a file and prints "fake runc" for --version.
func newFakeRuntime(t *testing.T) fakeRuntime {
	t.Helper()
	dir := t.TempDir()
	calls := filepath.Join(dir, "calls")
	script := "#!/bin/sh\nprintf '%s\\0' \"$@\" >> " + calls + "\necho >> " + calls + "\n" +
		"case \"$1\" in --version) echo 'fake runc version 9';; esac\n" +
		"for a in \"$@\"; do [ \"$a\" = state ] && [ -n \"$FAKE_BUNDLE\" ] && echo \"{\\\"id\\\":\\\"c1\\\",\\\"pid\\\":1,\\\"bundle\\\":\\\"$FAKE_BUNDLE\\\"}\"; done\nexit 0\n"
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

func TestVersionShowsBoth(t *testing.T) {
	f := newFakeRuntime(t)
	stdout, _, err := f.run(t, "/nonexistent.toml", "--version")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(stdout, "greenboost-runtime version") || !strings.Contains(stdout, "commit:") || !strings.Contains(stdout, "fake runc version 9") {
		t.Fatalf("--version printed %q", stdout)
	}
	// Without a low-level runtime it still prints ours, then fails naming
	// the missing runtime.
	cfg := filepath.Join(t.TempDir(), "config.toml")
	if err := os.WriteFile(cfg, []byte("[runtime]\nruntimes = [\"gb-no-such-runtime\"]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	stdout, stderr, err := f.run(t, cfg, "--version")
	if err == nil || !strings.HasPrefix(stdout, "greenboost-runtime version") || !strings.Contains(stderr, "gb-no-such-runtime") {
		t.Fatalf("--version without a runtime: err=%v stdout=%q stderr=%q", err, stdout, stderr)
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
			spec, err := LoadSpec(bundle)
			if err != nil {
				t.Fatal(err)
			}
			hooks := spec.Raw().Hooks
			if hooks == nil || len(hooks.Prestart) != 1 || hooks.Prestart[0].Args[2] != cfg {
				t.Fatalf("the hook does not carry the effective config path %s: %+v", cfg, hooks)
			}
		})
	}
}

// runc's --debug turns our log to debug whatever [runtime] log-level says.
func TestDebugFlagRaisesLogLevel(t *testing.T) {
	f := newFakeRuntime(t)
	for _, tt := range []struct {
		global    []string
		wantDebug bool
	}{{nil, false}, {[]string{"--debug"}, true}} {
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
	cmd := exec.Command(wrapperBin, "state", "c1")
	cmd.Env = []string{"PATH=" + t.TempDir(), "GREENBOOST_CONFIG=/nonexistent.toml"}
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "no low-level runtime found") || !strings.Contains(string(out), "runc") {
		t.Fatalf("err=%v out=%q", err, out)
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
	_, stderr, err := f.runEnv(t, []string{"GREENBOOST_CONFIG=" + cfg, "FAKE_BUNDLE=" + bundle},
		"--root", "/r", "exec", "--process", process, "--detach", "c1")
	if err != nil {
		t.Fatalf("exec: %v %s", err, stderr)
	}
	data, _ := os.ReadFile(process)
	var p struct{ Env []string }
	json.Unmarshal(data, &p)
	want := []string{"PATH=/bin", "LD_PRELOAD=/usr/lib/greenboost/libgreenboost_cuda.so:/usr/lib/libexec.so", "GREENBOOST_ACTIVE=1"}
	if strings.Join(p.Env, " ") != strings.Join(want, " ") {
		t.Fatalf("exec process env = %q, want %q", p.Env, want)
	}
	if got := f.lastCall(t); got[0] != "--root" || got[2] != "exec" {
		t.Fatalf("runc got %q", got)
	}

	// A container without GreenBoost keeps its exec process as it is.
	plain := bundleWith(t, "testdata/opt-out-env/in.json")
	write(`"PATH=/bin"`)
	before, _ := os.ReadFile(process)
	if _, stderr, err := f.runEnv(t, []string{"GREENBOOST_CONFIG=" + cfg, "FAKE_BUNDLE=" + plain}, "exec", "-p", process, "c2"); err != nil {
		t.Fatalf("exec: %v %s", err, stderr)
	}
	if after, _ := os.ReadFile(process); string(after) != string(before) {
		t.Fatalf("exec process of a plain container changed: %s", after)
	}
	// Nor does one whose image sets GREENBOOST_ACTIVE=1: only our hook in
	// the spec marks GreenBoost.
	optOut, _ := os.ReadFile("testdata/opt-out-env/in.json")
	imageActive := filepath.Join(t.TempDir(), "in.json")
	os.WriteFile(imageActive, bytes.Replace(optOut, []byte(`"GREENBOOST_DISABLE=1"`), []byte(`"GREENBOOST_DISABLE=1", "GREENBOOST_ACTIVE=1"`), 1), 0o644)
	if _, stderr, err := f.runEnv(t, []string{"GREENBOOST_CONFIG=" + cfg, "FAKE_BUNDLE=" + bundleWith(t, imageActive)}, "exec", "-p", process, "c3"); err != nil {
		t.Fatalf("exec: %v %s", err, stderr)
	}
	if after, _ := os.ReadFile(process); string(after) != string(before) {
		t.Fatalf("exec process of a container whose image sets GREENBOOST_ACTIVE changed: %s", after)
	}
}
