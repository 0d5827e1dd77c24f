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
)

// runGC runs `greenboost-ctk gc ARGS` with a config whose state dir is
// stateDir, as if the module were not loaded.
func runGC(t *testing.T, stateDir string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	saved := sysModule
	sysModule = filepath.Join(t.TempDir(), "no-module")
	t.Cleanup(func() { sysModule = saved })
	cfgPath := filepath.Join(t.TempDir(), "config.toml")
	if err := os.WriteFile(cfgPath, fmt.Appendf(nil, "[hook]\nstate-dir = %q\n", stateDir), 0o644); err != nil {
		t.Fatal(err)
	}
	var out, errOut strings.Builder
	app := &cli.App{
		Name:           "greenboost-ctk",
		Flags:          []cli.Flag{&cli.StringFlag{Name: "config", Value: cfgPath}},
		Commands:       []*cli.Command{NewGC()},
		Writer:         &out,
		ErrWriter:      &errOut,
		ExitErrHandler: func(*cli.Context, error) {},
	}
	err = app.Run(append([]string{"greenboost-ctk", "gc"}, args...))
	return out.String(), errOut.String(), err
}

// A file in the record dir that names another container is left in place
// and named on stderr, and gc succeeds: the timer runs it every minute. The
// rest of the work is done.
func TestGCLeavesForeignRecordAlone(t *testing.T) {
	for _, asJSON := range []bool{false, true} {
		t.Run(fmt.Sprint("json=", asJSON), func(t *testing.T) {
			stateDir := t.TempDir()
			if err := hook.WriteRecord(stateDir, &hook.Record{ID: "dead", Cgroup: hook.Cgroup{ID: 12345, Path: "/nonexistent/cgroup"}}); err != nil {
				t.Fatal(err)
			}
			stray := filepath.Join(hook.RecordDir(stateDir), "stray.json")
			if err := os.WriteFile(stray, []byte(`{"id":"someone-else"}`), 0o644); err != nil {
				t.Fatal(err)
			}
			var args []string
			if asJSON {
				args = []string{"--json"}
			}
			stdout, stderr, err := runGC(t, stateDir, args...)
			if err != nil {
				t.Fatalf("gc failed: %v", err)
			}
			if !strings.Contains(stderr, "warning") || !strings.Contains(stderr, stray) || strings.Count(stderr, "\n") != 1 {
				t.Errorf("stderr %q, want one warning naming %s", stderr, stray)
			}
			if _, err := os.Stat(stray); err != nil {
				t.Errorf("the stray file is gone: %v", err)
			}
			if asJSON {
				var res hook.GCResult
				if err := json.Unmarshal([]byte(stdout), &res); err != nil || len(res.RecordsDropped) != 1 || res.RecordsDropped[0] != "dead" {
					t.Errorf("stdout %q (%v), want JSON with records_dropped [dead]", stdout, err)
				}
			} else if !strings.HasPrefix(stdout, "gc: 1 record(s) dropped") {
				t.Errorf("stdout %q, want the dead record dropped", stdout)
			}
		})
	}
}

// A state dir gc cannot read still fails it.
func TestGCFailsOnUnreadableStateDir(t *testing.T) {
	stateDir := t.TempDir()
	if err := os.WriteFile(hook.RecordDir(stateDir), []byte("not a directory"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{nil, {"--json"}} {
		if _, _, err := runGC(t, stateDir, args...); err == nil || !strings.Contains(err.Error(), "listing records") {
			t.Errorf("gc %v: error = %v, want one about listing records", args, err)
		}
	}
}
