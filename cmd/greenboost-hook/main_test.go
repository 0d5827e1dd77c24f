package main

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
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

func runHook(t *testing.T, stdin string, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(hookBin, args...)
	cmd.Env = []string{"PATH=/usr/bin:/bin"}
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		t.Fatal(err)
	}
	return string(out), cmd.ProcessState.ExitCode()
}

// A missing or extra stage is named, not only answered with the usage.
func TestStageArgument(t *testing.T) {
	for _, args := range [][]string{nil, {"prestart", "extra"}} {
		out, code := runHook(t, "", args...)
		if code != 2 || !strings.HasPrefix(out, "greenboost-hook: expected one stage, prestart or poststop") || !strings.Contains(out, "Usage:") {
			t.Errorf("%q: exit %d, output %q", args, code, out)
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
	out, code := runHook(t, "{not json", "--config", cfg, "prestart")
	if code != 1 || strings.Count(out, "\n") != 1 || !strings.Contains(out, "greenboost-hook prestart:") {
		t.Fatalf("exit %d, output %q: want one line", code, out)
	}
	data, err := os.ReadFile(logFile)
	if err != nil || !strings.Contains(string(data), "level=error") || !strings.Contains(string(data), "OCI state") {
		t.Fatalf("log file %s = %q (%v)", logFile, data, err)
	}
}

func TestVersion(t *testing.T) {
	out, code := runHook(t, "", "--version")
	if code != 0 || !strings.HasPrefix(out, "greenboost-hook version") || !strings.Contains(out, "commit:") {
		t.Fatalf("exit %d, output %q", code, out)
	}
}
