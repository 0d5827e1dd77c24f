package statuscmd

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"

	"github.com/greenboost/greenboost-container-toolkit/hook"
	"github.com/greenboost/greenboost-container-toolkit/kmod"
)

// runGC runs `greenboost-ctk gc ARGS` with a config whose state dir is
// stateDir, as if the module were not loaded.
func runGC(t *testing.T, stateDir string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	return runCommand(t, NewGC(), stateDir, args...)
}

// runCommand runs `greenboost-ctk CMD ARGS` (gc or status) with a config
// whose state dir is stateDir, as if the module were not loaded.
func runCommand(t *testing.T, cmd *cli.Command, stateDir string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	return runCommandOn(t, cmd, stateDir, "", args...)
}

// runCommandOn is runCommand with the module loaded and its node at device;
// device "" is no module loaded.
func runCommandOn(t *testing.T, cmd *cli.Command, stateDir, device string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	saved := kmod.SysModule
	kmod.SysModule = filepath.Join(t.TempDir(), "greenboost")
	t.Cleanup(func() { kmod.SysModule = saved })
	content := fmt.Sprintf("[hook]\nstate-dir = %q\n", stateDir)
	if device != "" {
		if err := os.Mkdir(kmod.SysModule, 0o755); err != nil {
			t.Fatal(err)
		}
		content += fmt.Sprintf("[device]\nhost-path = %q\n", device)
	}
	cfgPath := filepath.Join(t.TempDir(), "config.toml")
	if err := os.WriteFile(cfgPath, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	var out, errOut strings.Builder
	app := &cli.App{
		Name:           "greenboost-ctk",
		Flags:          []cli.Flag{&cli.StringFlag{Name: "config", Value: cfgPath}},
		Commands:       []*cli.Command{cmd},
		Writer:         &out,
		ErrWriter:      &errOut,
		ExitErrHandler: func(*cli.Context, error) {},
	}
	err = app.Run(append([]string{"greenboost-ctk", cmd.Name}, args...))
	return out.String(), errOut.String(), err
}

// A file in the record dir that greenboost-hook did not write (a record of
// another container, one that does not parse) is left in place and named on
// stderr, and gc and status succeed: the timer runs gc every minute. The
// rest of the work is done.
func TestForeignRecordLeftAlone(t *testing.T) {
	for _, content := range []string{`{"id":"someone-else"}`, "garbage\n", ""} {
		for _, args := range [][]string{{"gc"}, {"gc", "--json"}, {"status"}, {"status", "--json"}} {
			t.Run(fmt.Sprintf("%q %v", content, args), func(t *testing.T) {
				stateDir := t.TempDir()
				if err := hook.WriteRecord(stateDir, &hook.Record{ID: "dead", Cgroup: hook.Cgroup{ID: 12345, Path: "/nonexistent/cgroup"}}); err != nil {
					t.Fatal(err)
				}
				stray := filepath.Join(hook.RecordDir(stateDir), "stray.json")
				if err := os.WriteFile(stray, []byte(content), 0o644); err != nil {
					t.Fatal(err)
				}
				cmd := NewGC()
				if args[0] == "status" {
					cmd = NewStatus()
				}
				stdout, stderr, err := runCommand(t, cmd, stateDir, args[1:]...)
				if err != nil {
					t.Fatalf("%s failed: %v", args[0], err)
				}
				if !strings.Contains(stderr, "warning") || !strings.Contains(stderr, stray) || !strings.Contains(stderr, "remove it by hand") ||
					strings.Count(stderr, "\n") != 1 {
					t.Errorf("stderr %q, want one warning naming %s and the fix", stderr, stray)
				}
				if _, err := os.Stat(stray); err != nil {
					t.Errorf("the stray file is gone: %v", err)
				}
				switch strings.Join(args, " ") {
				case "gc --json":
					var res hook.GCResult
					if err := json.Unmarshal([]byte(stdout), &res); err != nil || len(res.RecordsDropped) != 1 || res.RecordsDropped[0] != "dead" {
						t.Errorf("stdout %q (%v), want JSON with records_dropped [dead]", stdout, err)
					}
				case "gc":
					if !strings.HasPrefix(stdout, "gc: 1 record(s) dropped") {
						t.Errorf("stdout %q, want the dead record dropped", stdout)
					}
				case "status --json":
					var st Status
					if err := json.Unmarshal([]byte(stdout), &st); err != nil || len(st.Containers) != 1 || st.Containers[0].ID != "dead" {
						t.Errorf("stdout %q (%v), want JSON with container dead", stdout, err)
					}
				case "status":
					if !strings.Contains(stdout, "\ndead ") {
						t.Errorf("stdout %q, want a row for dead", stdout)
					}
				}
			})
		}
	}
}

// A gc that fails before doing anything (its record dir unreadable) prints
// no summary: zeros would tell a script that nothing is held.
func TestGCFailurePrintsNoSummary(t *testing.T) {
	stateDir := t.TempDir()
	if err := os.WriteFile(hook.RecordDir(stateDir), nil, 0o644); err != nil { // a file where the dir should be
		t.Fatal(err)
	}
	for _, args := range [][]string{nil, {"--json"}} {
		stdout, _, err := runCommand(t, NewGC(), stateDir, args...)
		if err == nil || stdout != "" {
			t.Errorf("gc %v: err %v, stdout %q; want a failure and no summary", args, err, stdout)
		}
	}
}

// Container ids are the engine's or a user's, and crun takes control
// characters: status shows them quoted, never as terminal commands.
func TestStatusQuotesUnprintableIDs(t *testing.T) {
	stateDir := t.TempDir()
	for _, id := range []string{"\x1b[2J\x1b[1;1Hfake", "plain-id-longer-than-twelve", "ünïcödé"} {
		if err := hook.WriteRecord(stateDir, &hook.Record{ID: id, Pid: os.Getpid()}); err != nil {
			t.Fatal(err)
		}
	}
	stdout, _, err := runCommand(t, NewStatus(), stateDir)
	if err != nil {
		t.Fatal(err)
	}
	if strings.ContainsRune(stdout, 0x1b) {
		t.Errorf("status printed an escape character: %q", stdout)
	}
	for _, want := range []string{`"\x1b[2J\x1b[1;1Hfa"`, "\nplain-id-lon ", "\nünïcödé "} {
		if !strings.Contains(stdout, want) {
			t.Errorf("status output %q lacks %q", stdout, want)
		}
	}
}

// A time limit of zero or less would stop gc before it does anything: a
// usage error, one line, that names the flag and the form expected.
func TestGCRefusesTimeoutNotAboveZero(t *testing.T) {
	for _, value := range []string{"0", "0s", "-1s"} {
		_, _, err := runGC(t, t.TempDir(), "--timeout", value)
		if err == nil || !strings.Contains(err.Error(), "--timeout") || !strings.Contains(err.Error(), "above zero") || strings.Contains(err.Error(), "\n") {
			t.Errorf("--timeout %s: error = %v, want one line about --timeout", value, err)
		}
	}
}

// gc stopped by its time limit still succeeds (the next run goes on), but
// says so: on stderr, in the text line and in the JSON.
func TestGCSaysWhenIncomplete(t *testing.T) {
	for _, asJSON := range []bool{false, true} {
		t.Run(fmt.Sprint("json=", asJSON), func(t *testing.T) {
			stateDir := t.TempDir()
			if err := hook.WriteRecord(stateDir, &hook.Record{ID: "dead", Pid: 1 << 30}); err != nil {
				t.Fatal(err)
			}
			args := []string{"--timeout", "1ns"} // past before the first record
			if asJSON {
				args = append(args, "--json")
			}
			stdout, stderr, err := runGC(t, stateDir, args...)
			if err != nil {
				t.Fatalf("gc failed: %v", err)
			}
			if !strings.Contains(stderr, "warning: gc stopped at its time limit (--timeout 1ns)") || strings.Count(stderr, "\n") != 1 {
				t.Errorf("stderr %q, want one warning about the time limit", stderr)
			}
			if asJSON {
				var res hook.GCResult
				if err := json.Unmarshal([]byte(stdout), &res); err != nil || !res.Incomplete {
					t.Errorf("stdout %q (%v), want incomplete true", stdout, err)
				}
			} else if !strings.Contains(stdout, "incomplete") {
				t.Errorf("stdout %q, want it to say the run was incomplete", stdout)
			}
		})
	}
}

// The JSON has every field README lists, also the false, empty and unknown
// ones: scripts read a fixed schema.
func TestJSONHasEveryDocumentedField(t *testing.T) {
	stateDir := t.TempDir()
	if err := hook.WriteRecord(stateDir, &hook.Record{ID: "ctr", Pid: os.Getpid(), Cgroup: hook.Cgroup{Path: "/sys/fs/cgroup/x"}}); err != nil {
		t.Fatal(err)
	}
	stdout, _, err := runCommand(t, NewStatus(), stateDir, "--json")
	if err != nil {
		t.Fatal(err)
	}
	var st map[string]any
	if err := json.Unmarshal([]byte(stdout), &st); err != nil {
		t.Fatalf("status --json: %v\n%s", err, stdout)
	}
	hasKeys(t, "status", st, "module", "containers", "unclaimed_nodes")
	if m, ok := st["module"].(map[string]any); ok {
		hasKeys(t, "module", m, "loaded", "version", "device", "cgroup_hierarchy", "t2_total_mb", "t2_used_mb", "t3_total_mb", "t3_used_mb", "buffers", "unavailable")
	}
	if ctrs, ok := st["containers"].([]any); !ok || len(ctrs) != 1 {
		t.Errorf("containers = %v, want one", st["containers"])
	} else {
		ctr, _ := ctrs[0].(map[string]any)
		hasKeys(t, "containers[0]", ctr, "id", "cgroup", "t2_used_bytes", "t2_limit_bytes", "t3_used_bytes", "t3_limit_bytes", "buffers", "enforced", "pending", "lost")
		cg, _ := ctr["cgroup"].(map[string]any)
		hasKeys(t, "containers[0].cgroup", cg, "hierarchy", "id", "path")
	}
	// No module here, so no unclaimed node: check one on its own.
	data, err := json.Marshal(newNode(kmod.CgEntry{}))
	if err != nil {
		t.Fatal(err)
	}
	var node map[string]any
	if err := json.Unmarshal(data, &node); err != nil {
		t.Fatal(err)
	}
	hasKeys(t, "unclaimed_nodes[0]", node, "hierarchy", "id", "t2_used_bytes", "t2_limit_bytes", "t3_used_bytes", "t3_limit_bytes", "buffers", "alive", "released")

	stdout, _, err = runGC(t, t.TempDir(), "--json")
	if err != nil {
		t.Fatal(err)
	}
	var res map[string]any
	if err := json.Unmarshal([]byte(stdout), &res); err != nil {
		t.Fatalf("gc --json: %v\n%s", err, stdout)
	}
	hasKeys(t, "gc", res, "records_dropped", "nodes_released", "pending", "incomplete")
}

func hasKeys(t *testing.T, what string, m map[string]any, keys ...string) {
	t.Helper()
	for _, k := range keys {
		if _, ok := m[k]; !ok {
			t.Errorf("%s: no %q in %v", what, k, m)
		}
	}
}

// A state dir gc or status cannot read fails them: an empty list would say
// that nothing is held.
func TestUnreadableStateDirFails(t *testing.T) {
	stateDir := t.TempDir()
	if err := os.WriteFile(hook.RecordDir(stateDir), []byte("not a directory"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, cmd := range []func() *cli.Command{NewGC, NewStatus} {
		for _, args := range [][]string{nil, {"--json"}} {
			c := cmd()
			stdout, _, err := runCommand(t, c, stateDir, args...)
			if err == nil || !strings.Contains(err.Error(), "listing records") {
				t.Errorf("%s %v: error = %v, want one about listing records", c.Name, args, err)
			}
			if c.Name == "status" && stdout != "" { // gc reports what it did before failing
				t.Errorf("status %v printed a report: %q", args, stdout)
			}
		}
	}
}

// A loaded module without the cgroup ABI (an upstream GreenBoost module;
// here /dev/null, which answers ENOTTY) is reported as unavailable, saying
// why, and the records are still listed: status does not fail.
func TestStatusWithoutCgroupABI(t *testing.T) {
	stateDir := t.TempDir()
	if err := hook.WriteRecord(stateDir, &hook.Record{ID: "ctr", Pid: os.Getpid(), Limits: hook.Limits{RAM: 1 << 30}}); err != nil {
		t.Fatal(err)
	}
	const why = "/dev/null is not a GreenBoost module with the cgroup ABI"
	stdout, _, err := runCommandOn(t, NewStatus(), stateDir, "/dev/null")
	if err != nil {
		t.Fatalf("status: %v", err)
	}
	if !strings.Contains(stdout, "Module:  loaded, unavailable: "+why) || !strings.Contains(stdout, "\nctr ") {
		t.Errorf("status output %q, want the module unavailable (%s) and a row for ctr", stdout, why)
	}
	stdout, _, err = runCommandOn(t, NewStatus(), stateDir, "/dev/null", "--json")
	if err != nil {
		t.Fatalf("status --json: %v", err)
	}
	var st Status
	if err := json.Unmarshal([]byte(stdout), &st); err != nil {
		t.Fatalf("status --json: %v\n%s", err, stdout)
	}
	if !st.Module.Loaded || !strings.Contains(st.Module.Unavailable, why) || len(st.Containers) != 1 || st.Containers[0].ID != "ctr" {
		t.Errorf("status --json = %+v, want the module loaded and unavailable (%s), and container ctr", st, why)
	}
}

// A record whose budget was set, with no module node for its cgroup (here no
// module at all), shows as lost, not enforced, and the text says what that
// means.
func TestStatusSaysBudgetLost(t *testing.T) {
	stateDir := t.TempDir()
	if err := hook.WriteRecord(stateDir, &hook.Record{ID: "ctr", Pid: os.Getpid(), Enforced: true, Cgroup: hook.Cgroup{ID: 7, Path: "/sys/fs/cgroup/x"}}); err != nil {
		t.Fatal(err)
	}
	stdout, _, err := runCommand(t, NewStatus(), stateDir)
	if err != nil {
		t.Fatal(err)
	}
	row, _, _ := strings.Cut(strings.SplitN(stdout, "\nctr ", 2)[1], "\n")
	if strings.Contains(row, "enforced") || !strings.Contains(row, "budget lost") || !strings.Contains(stdout, "\nbudget lost: the module holds no budget") {
		t.Errorf("status output %q, want ctr's budget lost, and a line saying what that is", stdout)
	}
}

// A record without a cgroup (no device and enforce = false: the hook does not
// resolve it) shows none, not cgroup v2's id 0.
func TestStatusRecordWithoutCgroup(t *testing.T) {
	stateDir := t.TempDir()
	if err := hook.WriteRecord(stateDir, &hook.Record{ID: "nocg", Pid: os.Getpid()}); err != nil {
		t.Fatal(err)
	}
	stdout, _, err := runCommand(t, NewStatus(), stateDir)
	if err != nil {
		t.Fatal(err)
	}
	row, _, _ := strings.Cut(strings.SplitN(stdout, "\nnocg ", 2)[1], "\n")
	if fields := strings.Fields(row); len(fields) == 0 || fields[0] != "-" {
		t.Errorf("status row %q, want the cgroup shown as -", row)
	}
}
