package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

var hookBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "gb-hook-test-")
	if err != nil {
		panic(err)
	}
	hookBin = filepath.Join(dir, "greenboost-hook")
	if out, err := exec.Command("go", "build", "-o", hookBin, ".").CombinedOutput(); err != nil {
		panic(string(out))
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// runHook runs the hook and returns its stdout, its stderr and exit status.
func runHook(t *testing.T, stdin string, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(hookBin, args...)
	cmd.Env = []string{"PATH=/usr/bin:/bin"}
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		t.Fatal(err)
	}
	return stdout.String(), stderr.String(), cmd.ProcessState.ExitCode()
}

// A usage error is one line on stderr naming the problem and --help, exit
// 1: engines show a hook's stderr, where the whole usage would bury it.
func TestUsageErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no stage", nil, "expected one stage, prestart or poststop, got none"},
		{"extra word", []string{"prestart", "extra"}, `expected one stage, prestart or poststop, got "prestart extra"`},
		{"unknown stage", []string{"poststart"}, `unknown stage "poststart": expected prestart or poststop`},
		{"unknown flag", []string{"--bogus", "prestart"}, "unknown flag --bogus"},
		{"missing value", []string{"--config"}, "--config needs a value"},
		{"bad boolean", []string{"--version=x", "prestart"}, `--version "x": expected true or false`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stdout, stderr, code := runHook(t, "", tt.args...)
			if code != 1 || stdout != "" || strings.Count(stderr, "\n") != 1 ||
				!strings.HasPrefix(stderr, "greenboost-hook: "+tt.want) || !strings.HasSuffix(stderr, "; see greenboost-hook --help\n") {
				t.Errorf("%q: exit %d, stdout %q, stderr %q: want exit 1 and one line on stderr naming %q and --help", tt.args, code, stdout, stderr, tt.want)
			}
		})
	}
}

// --help (and -h) print the whole help on stdout and exit 0.
func TestHelp(t *testing.T) {
	for _, arg := range []string{"--help", "-h"} {
		stdout, stderr, code := runHook(t, "", arg)
		if code != 0 || stderr != "" || !strings.HasPrefix(stdout, "Usage: greenboost-hook") || !strings.Contains(stdout, "-profile") {
			t.Errorf("%s: exit %d, stdout %q, stderr %q", arg, code, stdout, stderr)
		}
	}
}

// The help says what prestart does for a container that opted out: the
// hook runs for one only on the CDI path, where it sets the budget anyway.
func TestHelpOnOptOut(t *testing.T) {
	stdout, _, _ := runHook(t, "", "--help")
	if strings.Contains(stdout, "nothing for a container that opted out") ||
		!strings.Contains(stdout, "also for a container that opted out") || !strings.Contains(stdout, "log file") {
		t.Errorf("help %q, want it to say prestart sets an opted-out container's budget too, noting it in the log file", stdout)
	}
}

// hookFixture writes a config without a module (limits is more lines for
// [limits]) and a bundle whose container has env, and returns the config,
// the log file and the state dir.
func hookFixture(t *testing.T, limits string, env ...string) (cfg, logFile, stateDir, bundle string) {
	t.Helper()
	dir := t.TempDir()
	logFile = filepath.Join(dir, "runtime.log")
	stateDir = filepath.Join(dir, "state")
	cfg = filepath.Join(dir, "config.toml")
	content := fmt.Sprintf("[runtime]\nlog-file = %q\n[device]\nhost-path = \"/nonexistent/greenboost\"\n[kmod]\nload = \"never\"\n[limits]\n%s[hook]\nstate-dir = %q\n",
		logFile, limits, stateDir)
	if err := os.WriteFile(cfg, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	bundle = filepath.Join(dir, "bundle")
	if err := os.Mkdir(bundle, 0o755); err != nil {
		t.Fatal(err)
	}
	spec, _ := json.Marshal(map[string]any{"process": map[string]any{"env": env}})
	if err := os.WriteFile(filepath.Join(bundle, "config.json"), spec, 0o644); err != nil {
		t.Fatal(err)
	}
	return cfg, logFile, stateDir, bundle
}

// The hook runs for an opted-out container only on the CDI path, where the
// engine gave it the device anyway: the budget applies (here it cannot be
// enforced, so the container fails as any other), and the log file says why
// the opt-out changed nothing.
func TestIgnoredOptOutIsLogged(t *testing.T) {
	cfg, logFile, stateDir, bundle := hookFixture(t, "", "GREENBOOST_DISABLE=1")
	state := fmt.Sprintf(`{"ociVersion":"1.0.2","id":"c1","status":"created","pid":1,"bundle":%q}`, bundle)
	stdout, stderr, code := runHook(t, state, "--config", cfg, "prestart")
	if code == 0 || stdout != "" || !strings.Contains(stderr, "cannot enforce GreenBoost budgets for container c1") {
		t.Fatalf("exit %d, stdout %q, stderr %q: want the refusal of a container whose budget cannot be enforced", code, stdout, stderr)
	}
	data, err := os.ReadFile(logFile)
	if err != nil || !strings.Contains(string(data), "level=INFO") || !strings.Contains(string(data), "container c1 opts out of GreenBoost, but the engine gave it the GreenBoost device") {
		t.Fatalf("log file %s = %q (%v)", logFile, data, err)
	}
	if _, err := os.Stat(filepath.Join(stateDir, "containers", "c1.json")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("record of a refused container: %v", err)
	}
}

// A prestart that succeeds without enforcing ([limits] enforce = false, no
// module) warns on stderr and in [runtime] log-file: runc and crun drop the
// stderr of a hook that succeeds. The log's lines are the wrapper's (level,
// pid), at or above [runtime] log-level.
func TestNotEnforcedWarningIsLogged(t *testing.T) {
	for _, tt := range []struct {
		logLevel string
		logged   bool
	}{{"", true}, {"warn", true}, {"error", false}} {
		t.Run("log-level "+tt.logLevel, func(t *testing.T) {
			cfg, logFile, _, bundle := hookFixture(t, "enforce = false\n", "GREENBOOST_RAM_LIMIT=1G")
			if tt.logLevel != "" {
				replaceInFile(t, cfg, "[runtime]\n", "[runtime]\nlog-level = \""+tt.logLevel+"\"\n")
			}
			state := fmt.Sprintf(`{"ociVersion":"1.0.2","id":"c1","status":"created","pid":%d,"bundle":%q}`, os.Getpid(), bundle)
			_, stderr, code := runHook(t, state, "--config", cfg, "prestart")
			if code != 0 || !strings.Contains(stderr, "NOT enforced") {
				t.Fatalf("exit %d, stderr %q: want exit 0 and the warning", code, stderr)
			}
			data, _ := os.ReadFile(logFile)
			logged := strings.Contains(string(data), "level=WARN") && strings.Contains(string(data), "budgets of container c1 are NOT enforced (ram 1G") &&
				strings.Contains(string(data), " pid=")
			if logged != tt.logged {
				t.Fatalf("log file %s = %q: logged %v, want %v", logFile, data, logged, tt.logged)
			}
		})
	}
}

func replaceInFile(t *testing.T, path, old, new string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(strings.Replace(string(data), old, new, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
}

// A hook that may not use the state dir runs as someone other than the
// host's root, as under a rootless engine: its message says that such
// engines cannot give budgets, at prestart and at poststop.
func TestStateDirNotWritableNamesRootless(t *testing.T) {
	cfg, _, stateDir, bundle := hookFixture(t, "enforce = false\n")
	dir := filepath.Dir(cfg)
	for _, d := range []string{filepath.Dir(hookBin), filepath.Dir(dir), dir} { // temp dirs are 0700
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(stateDir, 0o755); err != nil {
		t.Fatal(err)
	}
	state := fmt.Sprintf(`{"ociVersion":"1.0.2","id":"c1","status":"created","pid":%d,"bundle":%q}`, os.Getpid(), bundle)
	for _, stage := range []string{"prestart", "poststop"} {
		cmd := exec.Command(hookBin, "--config", cfg, stage)
		cmd.Env = []string{"PATH=/usr/bin:/bin"}
		cmd.Stdin = strings.NewReader(state)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
		out, err := cmd.CombinedOutput()
		if err == nil || !strings.Contains(string(out), "permission denied") || !strings.Contains(string(out), "rootless engines cannot give containers GreenBoost budgets") {
			t.Errorf("%s as an unprivileged user: %v %q", stage, err, out)
		}
	}
}

// A failing hook also appends its message to [runtime] log-file (crun drops
// a hook's stderr), creating the log's folder: on the CDI path nothing else
// may have made it.
func TestFailureIsLogged(t *testing.T) {
	dir := t.TempDir()
	logFile := filepath.Join(dir, "log", "greenboost", "runtime.log")
	cfg := filepath.Join(dir, "config.toml")
	if err := os.WriteFile(cfg, []byte("[runtime]\nlog-file = \""+logFile+"\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	stdout, stderr, code := runHook(t, "{not json", "--config", cfg, "prestart")
	if code != 1 || stdout != "" || strings.Count(stderr, "\n") != 1 || !strings.Contains(stderr, "greenboost-hook prestart:") {
		t.Fatalf("exit %d, stdout %q, stderr %q: want one line on stderr", code, stdout, stderr)
	}
	data, err := os.ReadFile(logFile)
	if err != nil || !strings.Contains(string(data), "level=ERROR") || !strings.Contains(string(data), "OCI state") {
		t.Fatalf("log file %s = %q (%v)", logFile, data, err)
	}
}

func TestVersion(t *testing.T) {
	for _, arg := range []string{"--version", "-version", "-v"} {
		out, _, code := runHook(t, "", arg)
		if code != 0 || !strings.HasPrefix(out, "greenboost-hook version") || !strings.Contains(out, "commit:") {
			t.Fatalf("%s: exit %d, output %q", arg, code, out)
		}
	}
}
