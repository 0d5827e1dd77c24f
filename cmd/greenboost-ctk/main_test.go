package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"

	"github.com/greenboost/greenboost-container-toolkit/internal/config"
)

// A word among the flags fails the command before it does anything: the
// flags after it would be dropped (a dry run would write, --config would
// name the default file).
func TestCommandsRefuseArguments(t *testing.T) {
	daemonJSON := filepath.Join(t.TempDir(), "daemon.json")
	for _, args := range [][]string{
		{"runtime", "configure", "--config", daemonJSON, "containerd"},
		{"gc", "now"},
		{"status", "all"},
		{"config", "default", "x"},
	} {
		err := newApp().Run(append([]string{"greenboost-ctk"}, args...))
		if err == nil || !strings.Contains(err.Error(), "takes no arguments") || !strings.Contains(err.Error(), args[len(args)-1]) {
			t.Errorf("%v: %v, want an error naming the argument", args, err)
		}
	}
	if _, err := os.Stat(daemonJSON); !os.IsNotExist(err) {
		t.Errorf("runtime configure wrote %s despite the error (%v)", daemonJSON, err)
	}
}

// runCLI runs greenboost-ctk with args and returns its exit status, stdout
// and stderr.
func runCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(append([]string{"greenboost-ctk"}, args...), &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

// oneLine fails unless s is exactly one line holding each of want.
func oneLine(t *testing.T, what, s string, want ...string) {
	t.Helper()
	if strings.Count(s, "\n") != 1 || !strings.HasSuffix(s, "\n") {
		t.Errorf("%s = %q, want one line", what, s)
	}
	for _, w := range want {
		if !strings.Contains(s, w) {
			t.Errorf("%s = %q, want it to contain %q", what, s, w)
		}
	}
}

// An unknown command, also one of a group, is one line on stderr naming it
// and where to look, and exit 1; not urfave's "No help topic" and exit 3.
func TestUnknownCommand(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want []string
	}{
		{[]string{"bogus"}, []string{`greenboost-ctk: unknown command "bogus"; see greenboost-ctk --help`}},
		{[]string{"--config", "/nonexistent", "bogus", "x"}, []string{`unknown command "bogus"`}},
		{[]string{"cdi", "bogus"}, []string{`unknown command "cdi bogus"`, "see greenboost-ctk cdi --help"}},
		{[]string{"config", "shw"}, []string{`unknown command "config shw"`, "see greenboost-ctk config --help"}},
		{[]string{"runtime", "bogus"}, []string{`unknown command "runtime bogus"`, "see greenboost-ctk runtime --help"}},
		{[]string{"help", "bogus"}, []string{`greenboost-ctk: unknown command "bogus"; see greenboost-ctk --help`}},
		{[]string{"h", "bogus"}, []string{`unknown command "bogus"`}},
		{[]string{"config", "help", "bogus"}, []string{`unknown command "config bogus"`, "see greenboost-ctk config --help"}},
		{[]string{"cdi", "h", "bogus"}, []string{`unknown command "cdi bogus"`, "see greenboost-ctk cdi --help"}},
	} {
		code, stdout, stderr := runCLI(t, tt.args...)
		if code != 1 || stdout != "" {
			t.Errorf("%v: exit %d, stdout %q; want 1 and nothing", tt.args, code, stdout)
		}
		oneLine(t, fmt.Sprint(tt.args), stderr, tt.want...)
	}
}

// Help is still there for the app, each group and each command.
func TestHelp(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want string
	}{
		{nil, "greenboost-ctk [global options] command"},
		{[]string{"help"}, "greenboost-ctk [global options] command"},
		{[]string{"help", "cdi"}, "greenboost-ctk cdi - generate, list and validate"},
		{[]string{"cdi"}, "validate  check a spec"},
		{[]string{"cdi", "help"}, "validate  check a spec"},
		{[]string{"help", "gc"}, "greenboost-ctk gc [command options]"},
		{[]string{"gc", "--help"}, "--timeout value"},
		{[]string{"cdi", "help", "list"}, "--spec-dir value"},
		{[]string{"h", "status"}, "greenboost-ctk status [command options]"},
		{[]string{"config", "help"}, "show     "},
		{[]string{"config", "h", "show"}, "greenboost-ctk config show"},
		{[]string{"help", "help"}, "Shows a list of commands"},
		{[]string{"--help"}, "help, h"},
		{[]string{"runtime", "configure", "-h"}, "--set-as-default"},
	} {
		code, stdout, stderr := runCLI(t, tt.args...)
		if code != 0 || stderr != "" || !strings.Contains(stdout, tt.want) {
			t.Errorf("%v: exit %d, stderr %q, stdout %q; want 0 and help with %q", tt.args, code, stderr, stdout, tt.want)
		}
	}
}

// A flag usage error is one line on stderr naming the flag, what is wrong
// and where to look, exit 1, and no help dumped on stdout.
func TestUsageErrors(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want []string
	}{
		{[]string{"--bogus"}, []string{"greenboost-ctk: unknown flag --bogus; see greenboost-ctk --help"}},
		{[]string{"gc", "--timeout", "abc"}, []string{`--timeout "abc"`, "duration like 30s", "see greenboost-ctk gc --help"}},
		{[]string{"gc", "--timeout"}, []string{"--timeout needs a value", "30s", "see greenboost-ctk gc --help"}},
		{[]string{"gc", "--json=maybe"}, []string{`--json "maybe"`, "true or false"}},
		{[]string{"status", "--bogus"}, []string{"unknown flag --bogus", "see greenboost-ctk status --help"}},
		{[]string{"cdi", "list", "--bogus"}, []string{"unknown flag --bogus", "see greenboost-ctk cdi list --help"}},
		{[]string{"cdi", "generate", "-x"}, []string{"unknown flag -x", "see greenboost-ctk cdi generate --help"}},
		{[]string{"cdi", "generate", "--config", "x.toml"}, []string{"cdi generate: --config is a global flag: put it before the command, as in greenboost-ctk --config VALUE cdi generate"}},
		{[]string{"cdi", "--bogus", "list"}, []string{"unknown flag --bogus", "see greenboost-ctk cdi --help"}},
		{[]string{"config", "show", "--bogus"}, []string{"unknown flag --bogus", "see greenboost-ctk config show --help"}},
		{[]string{"runtime", "configure", "--bogus"}, []string{"unknown flag --bogus", "see greenboost-ctk runtime configure --help"}},
		{[]string{"gc", "--timeout", "0"}, []string{"--timeout 0s", "above zero", "see greenboost-ctk gc --help"}},
		{[]string{"gc", "--timeout=-1s"}, []string{"--timeout -1s", "above zero"}},
		// Values checked in Before name the command and its --help too.
		{[]string{"cdi", "generate", "--format", "xml"}, []string{"greenboost-ctk: cdi generate: --format \"xml\"", "see greenboost-ctk cdi generate --help"}},
		{[]string{"cdi", "validate", "a", "b"}, []string{"cdi validate: takes at most one FILE, got 2", "see greenboost-ctk cdi validate --help"}},
		{[]string{"runtime", "configure", "--runtime", "podman"}, []string{"runtime configure: --runtime podman", "see greenboost-ctk runtime configure --help"}},
		{[]string{"config", "show", "extra"}, []string{"config show: takes no arguments, got \"extra\"", "see greenboost-ctk config show --help"}},
	} {
		code, stdout, stderr := runCLI(t, tt.args...)
		if code != 1 || stdout != "" {
			t.Errorf("%v: exit %d, stdout %q; want 1 and nothing", tt.args, code, stdout)
		}
		oneLine(t, fmt.Sprint(tt.args), stderr, tt.want...)
	}
	// Every command, present and future, shares the handler.
	var walk func([]*cli.Command)
	walk = func(cmds []*cli.Command) {
		for _, c := range cmds {
			if c.OnUsageError == nil {
				t.Errorf("command %s has no OnUsageError", c.Name)
			}
			walk(c.Subcommands)
		}
	}
	app := newApp()
	if app.OnUsageError == nil {
		t.Error("the app has no OnUsageError")
	}
	walk(app.Commands)
}

// config show names the file it read in a TOML comment, and stays TOML
// that config.Load takes back.
func TestConfigShowNamesTheFile(t *testing.T) {
	dir := t.TempDir()
	existing := filepath.Join(dir, "config.toml")
	if err := os.WriteFile(existing, []byte("[limits]\nram = \"1G\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name, path, first, ram string
	}{
		{"existing file", existing, "# " + existing + " over the defaults\n", "1G"},
		{"mistyped path", filepath.Join(dir, "conifg.toml"), "# " + filepath.Join(dir, "conifg.toml") + " does not exist: the defaults\n", "unlimited"},
		{"newline in the path", filepath.Join(dir, "a\nb.toml"), "# " + strconv.Quote(filepath.Join(dir, "a\nb.toml")) + " does not exist: the defaults\n", "unlimited"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("GREENBOOST_CONFIG", tt.path)
			code, stdout, stderr := runCLI(t, "config", "show")
			if code != 0 || stderr != "" {
				t.Fatalf("exit %d, stderr %q", code, stderr)
			}
			if !strings.HasPrefix(stdout, tt.first) {
				t.Errorf("output starts %q, want %q", strings.SplitAfter(stdout, "\n")[0], tt.first)
			}
			shown := filepath.Join(t.TempDir(), "shown.toml")
			if err := os.WriteFile(shown, []byte(stdout), 0o644); err != nil {
				t.Fatal(err)
			}
			cfg, err := config.Load(shown)
			if err != nil {
				t.Fatalf("config.Load of the output: %v", err)
			}
			if string(cfg.Limits.RAM) != tt.ram {
				t.Errorf("ram = %q, want %q", cfg.Limits.RAM, tt.ram)
			}
		})
	}
}

// cdi list: a bad spec fails text and JSON alike (the JSON still printed);
// no GreenBoost device is a hint on stderr naming the dirs and the fix.
func TestCDIList(t *testing.T) {
	const good = "cdiVersion: 0.5.0\nkind: greenboost.io/vram\ndevices:\n- name: ext\n  containerEdits:\n    env: [GREENBOOST_ACTIVE=1]\n"
	const other = "cdiVersion: 0.5.0\nkind: vendor.example/gpu\ndevices:\n- name: \"0\"\n  containerEdits:\n    env: [GPU=0]\n"
	const bad = "cdiVersion: 0.5.0\nkind: greenboost.io/vram\ndevices: [\n"
	for _, tt := range []struct {
		name       string
		files      map[string]string
		json       bool
		code       int
		stdout     string
		stderr     []string
		noHint     bool
		jsonErrors bool
	}{
		{name: "empty dir", stderr: []string{"no greenboost.io/vram devices in DIR", "greenboost-ctk cdi generate --output DIR/"}},
		{name: "empty dir json", json: true, stdout: `{"devices":[],"errors":{}}` + "\n", stderr: []string{"no greenboost.io/vram devices in DIR", "greenboost-ctk cdi generate"}},
		{name: "other kinds only", files: map[string]string{"other.yaml": other}, stdout: "vendor.example/gpu=0\n", stderr: []string{"no greenboost.io/vram devices"}},
		{name: "good spec", files: map[string]string{"gb.yaml": good}, stdout: "greenboost.io/vram=ext\n", noHint: true},
		{name: "good spec json", files: map[string]string{"gb.yaml": good}, json: true, stdout: `{"devices":["greenboost.io/vram=ext"],"errors":{}}` + "\n", noHint: true},
		{name: "bad spec", files: map[string]string{"gb.yaml": good, "bad.yaml": bad}, code: 1, stdout: "greenboost.io/vram=ext\n", stderr: []string{"error: DIR/bad.yaml"}, noHint: true},
		{name: "bad spec json", files: map[string]string{"gb.yaml": good, "bad.yaml": bad}, json: true, code: 1, jsonErrors: true, noHint: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			for name, content := range tt.files {
				if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			args := []string{"cdi", "list", "--spec-dir", dir}
			if tt.json {
				args = append(args, "--json")
			}
			code, stdout, stderr := runCLI(t, args...)
			if code != tt.code {
				t.Errorf("exit %d, want %d (stderr %q)", code, tt.code, stderr)
			}
			if tt.jsonErrors {
				var doc struct {
					Devices []string            `json:"devices"`
					Errors  map[string][]string `json:"errors"`
				}
				if err := json.Unmarshal([]byte(stdout), &doc); err != nil || len(doc.Errors[filepath.Join(dir, "bad.yaml")]) == 0 || len(doc.Devices) != 1 {
					t.Errorf("stdout %q (%v), want JSON naming bad.yaml in errors and one device", stdout, err)
				}
			} else if stdout != tt.stdout {
				t.Errorf("stdout %q, want %q", stdout, tt.stdout)
			}
			for _, w := range tt.stderr {
				if !strings.Contains(stderr, strings.ReplaceAll(w, "DIR", dir)) {
					t.Errorf("stderr %q, want it to contain %q", stderr, w)
				}
			}
			if hint := strings.Contains(stderr, "no greenboost.io/vram devices"); hint == tt.noHint {
				t.Errorf("stderr %q: hint printed %v, want %v", stderr, hint, !tt.noHint)
			}
		})
	}
}
