package hook

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/greenboost/greenboost-container-toolkit/internal/config"
)

// hookFixture is a config whose device is /dev/null: a character device
// that is not a GreenBoost module, the host-side stand-in of DESIGN.md §6.
// The container is this test process, whose cgroup is real.
func hookFixture(t *testing.T, env []string, annotations map[string]string) (*config.Config, *specs.State) {
	t.Helper()
	dir := t.TempDir()
	cfg := config.Default()
	cfg.Path = filepath.Join(dir, "config.toml")
	cfg.Device.HostPath = "/dev/null"
	cfg.Kmod.Load = "never"
	cfg.Hook.StateDir = filepath.Join(dir, "state")
	cfg.Limits.RAM = "2G"
	cfg.Limits.Profiles = map[string]config.Profile{"small": {RAM: "1G", NVMe: "10G"}}
	bundle := filepath.Join(dir, "bundle")
	if err := os.Mkdir(bundle, 0o755); err != nil {
		t.Fatal(err)
	}
	spec, _ := json.Marshal(specs.Spec{Process: &specs.Process{Env: env}, Annotations: annotations})
	if err := os.WriteFile(filepath.Join(bundle, "config.json"), spec, 0o644); err != nil {
		t.Fatal(err)
	}
	return cfg, &specs.State{ID: "ctr-1", Pid: os.Getpid(), Bundle: bundle, Annotations: annotations}
}

// stopContainer makes container id's record look as it does when poststop
// runs: the runtime has removed the container's cgroup.
func stopContainer(t *testing.T, stateDir, id string) {
	t.Helper()
	rec, err := ReadRecord(stateDir, id)
	if err != nil {
		t.Fatal(err)
	}
	rec.Cgroup = goneCgroup(t)
	if err := WriteRecord(stateDir, rec); err != nil {
		t.Fatal(err)
	}
}

// goneCgroup is a cgroup the runtime has removed.
func goneCgroup(t *testing.T) Cgroup {
	return Cgroup{ID: 1, Path: filepath.Join(t.TempDir(), "gone")}
}

func runStage(t *testing.T, h *Hook, stage Stage, st *specs.State) error {
	t.Helper()
	data, _ := json.Marshal(st)
	return h.Run(stage, bytes.NewReader(data))
}

// soleProcess starts a process alone in a new cgroup below this test's, as
// an engine starts a container, and returns its pid and that cgroup.
func soleProcess(t *testing.T) (int, Cgroup) {
	t.Helper()
	parent, err := ResolveCgroup(os.Getpid(), HierarchyAuto)
	if err != nil {
		t.Fatal(err)
	}
	dir, err := os.MkdirTemp(parent.Path, "greenboost-hook-test-")
	if err != nil {
		t.Fatalf("making a cgroup (the tests run as root): %v", err)
	}
	cmd := exec.Command("sleep", "60")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if err := os.Remove(dir); err != nil {
			t.Errorf("removing cgroup %s: %v", dir, err)
		}
	})
	if err := os.WriteFile(filepath.Join(dir, "cgroup.procs"), []byte(strconv.Itoa(cmd.Process.Pid)), 0o644); err != nil {
		t.Fatal(err)
	}
	cg, err := ResolveCgroup(cmd.Process.Pid, HierarchyAuto)
	if err != nil || cg.Path != dir {
		t.Fatalf("the process's cgroup: %+v, %v; want %s", cg, err, dir)
	}
	return cmd.Process.Pid, cg
}

func TestPrestartUnenforcedRecordsAndWarns(t *testing.T) {
	cfg, st := hookFixture(t, []string{"GREENBOOST_RAM_LIMIT=64M"}, map[string]string{"greenboost.io/nvme-limit": "1G"})
	cfg.Limits.Enforce = false
	pid, cg := soleProcess(t)
	st.Pid = pid
	var warn bytes.Buffer
	h := New(cfg, "", &warn)
	if err := runStage(t, h, Prestart, st); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(warn.String(), "NOT enforced") || !strings.Contains(warn.String(), "not a GreenBoost module") {
		t.Fatalf("warning = %q", warn.String())
	}
	rec, err := ReadRecord(cfg.Hook.StateDir, "ctr-1")
	if err != nil {
		t.Fatal(err)
	}
	if rec.Enforced || rec.Limits.RAM != 64<<20 || rec.Limits.NVMe != 1<<30 || rec.Pid != pid || rec.Bundle != st.Bundle {
		t.Fatalf("record = %+v", rec)
	}
	if rec.Cgroup != cg {
		t.Fatalf("record's cgroup %+v, want %+v", rec.Cgroup, cg)
	}
	stopContainer(t, cfg.Hook.StateDir, "ctr-1")
	if err := runStage(t, h, Poststop, st); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadRecord(cfg.Hook.StateDir, "ctr-1"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("record left after poststop: %v", err)
	}
	if err := runStage(t, h, Poststop, st); err != nil {
		t.Fatalf("poststop without a record: %v", err)
	}
}

// An unenforced record of a container that shares its cgroup (this test
// process's) goes by the pid: the cgroup outlives the container, so poststop
// and gc would keep the record for ever.
func TestPrestartUnenforcedSharedCgroupGoesByPid(t *testing.T) {
	cfg, st := hookFixture(t, nil, nil)
	cfg.Limits.Enforce = false
	if err := runStage(t, New(cfg, "", io.Discard), Prestart, st); err != nil {
		t.Fatal(err)
	}
	rec, err := ReadRecord(cfg.Hook.StateDir, st.ID)
	if err != nil {
		t.Fatal(err)
	}
	if rec.Cgroup != (Cgroup{}) || rec.Pid != os.Getpid() {
		t.Fatalf("record = %+v, want no cgroup", rec)
	}
}

// On the CDI path the engine gives an opted-out container the device and
// runs our hooks anyway, so the opt-out cannot take its budget away: an
// image's ENV would lift the caps. The hook notes that in the log and goes
// on; here the config enforces and the device is no GreenBoost module, so
// going on fails the prestart.
func TestPrestartOptOutKeepsTheBudget(t *testing.T) {
	tests := []struct {
		name        string
		env         []string
		annotations map[string]string
		optedOut    bool
		wantErr     string
	}{
		{"annotation", nil, map[string]string{"greenboost.io/disable": "true"}, true, "cannot enforce"},
		{"env", []string{"GREENBOOST_DISABLE=1"}, nil, true, "cannot enforce"},
		{"env with a bad limit", []string{"GREENBOOST_DISABLE=1", "GREENBOOST_RAM_LIMIT=bogus"}, nil, true, "GREENBOOST_RAM_LIMIT"},
		{"annotation false beats env", []string{"GREENBOOST_DISABLE=1"}, map[string]string{"greenboost.io/disable": "false"}, false, "cannot enforce"},
		{"env 0", []string{"GREENBOOST_DISABLE=0"}, nil, false, "cannot enforce"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, st := hookFixture(t, tt.env, tt.annotations)
			var warn bytes.Buffer
			var notes []string
			h := New(cfg, "", &warn)
			h.Info = func(msg string) { notes = append(notes, msg) }
			if err := runStage(t, h, Prestart, st); err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("prestart: %v, want an error with %q", err, tt.wantErr)
			}
			noted := slices.ContainsFunc(notes, func(n string) bool {
				return strings.Contains(n, "container ctr-1 opts out") && strings.Contains(n, "its budget applies")
			})
			if noted != tt.optedOut {
				t.Errorf("log notes = %q, opted out %v", notes, tt.optedOut)
			}
		})
	}
}

func TestPrestartEnforcedFailsWithoutModule(t *testing.T) {
	for _, tt := range []struct{ name, device, why string }{
		{"not a GreenBoost module", "/dev/null", "not a GreenBoost module"},
		{"no device", "/nonexistent/greenboost", "/nonexistent/greenboost"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg, st := hookFixture(t, nil, nil)
			cfg.Device.HostPath = tt.device
			err := runStage(t, New(cfg, "", &bytes.Buffer{}), Prestart, st)
			if err == nil {
				t.Fatal("a container started without its budget")
			}
			for _, want := range []string{"cannot enforce", tt.why, "enforce = false", cfg.Path} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q lacks %q", err, want)
				}
			}
			if _, err := ReadRecord(cfg.Hook.StateDir, "ctr-1"); !errors.Is(err, fs.ErrNotExist) {
				t.Fatal("a record claims a container that was refused")
			}
		})
	}
}

func TestPrestartLimits(t *testing.T) {
	tests := []struct {
		name        string
		profile     string
		env         []string
		annotations map[string]string
		ram, nvme   uint64
	}{
		{"config", "", nil, nil, 2 << 30, 0},
		{"ext is the config", "ext", nil, nil, 2 << 30, 0},
		{"profile", "small", nil, nil, 1 << 30, 10 << 30},
		{"env beats profile", "small", []string{"GREENBOOST_RAM_LIMIT=128M"}, nil, 128 << 20, 10 << 30},
		{"annotation beats env", "small", []string{"GREENBOOST_RAM_LIMIT=128M"}, map[string]string{"greenboost.io/ram-limit": "256M"}, 256 << 20, 10 << 30},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, st := hookFixture(t, tt.env, tt.annotations)
			cfg.Limits.Enforce = false
			if err := runStage(t, New(cfg, tt.profile, &bytes.Buffer{}), Prestart, st); err != nil {
				t.Fatal(err)
			}
			rec, err := ReadRecord(cfg.Hook.StateDir, st.ID)
			if err != nil {
				t.Fatal(err)
			}
			if rec.Limits.RAM != tt.ram || rec.Limits.NVMe != tt.nvme {
				t.Fatalf("limits = %+v, want ram %d nvme %d", rec.Limits, tt.ram, tt.nvme)
			}
		})
	}
}

// With crun's create --config FILE the container's spec is FILE, which the
// wrapper names with --spec: the requests are read there, and the bundle
// need not have a config.json.
func TestPrestartReadsTheSpecItIsGiven(t *testing.T) {
	cfg, st := hookFixture(t, nil, nil)
	cfg.Limits.Enforce = false
	if err := os.Remove(filepath.Join(st.Bundle, "config.json")); err != nil {
		t.Fatal(err)
	}
	specFile := filepath.Join(t.TempDir(), "other.json")
	spec, _ := json.Marshal(specs.Spec{Process: &specs.Process{Env: []string{"GREENBOOST_RAM_LIMIT=384M"}}})
	if err := os.WriteFile(specFile, spec, 0o644); err != nil {
		t.Fatal(err)
	}
	h := New(cfg, "", &bytes.Buffer{})
	h.SpecPath = specFile
	if err := runStage(t, h, Prestart, st); err != nil {
		t.Fatal(err)
	}
	rec, err := ReadRecord(cfg.Hook.StateDir, st.ID)
	if err != nil {
		t.Fatal(err)
	}
	if rec.Limits.RAM != 384<<20 {
		t.Errorf("ram limit %d, want %d from the given spec's env", rec.Limits.RAM, 384<<20)
	}
}

func TestPrestartBadLimitFails(t *testing.T) {
	cfg, st := hookFixture(t, []string{"GREENBOOST_RAM_LIMIT=bogus"}, nil)
	cfg.Limits.Enforce = false
	err := runStage(t, New(cfg, "", &bytes.Buffer{}), Prestart, st)
	if err == nil || strings.Contains(err.Error(), "\n") ||
		!strings.Contains(err.Error(), `GREENBOOST_RAM_LIMIT "bogus"`) || !strings.Contains(err.Error(), "expected "+config.SizeForm) {
		t.Fatalf("want one line naming the key, the value and the expected form: %v", err)
	}
	if _, err := ReadRecord(cfg.Hook.StateDir, st.ID); !errors.Is(err, fs.ErrNotExist) {
		t.Fatal("a record for a container with a bad limit")
	}
}

func TestBadInput(t *testing.T) {
	cfg, st := hookFixture(t, nil, nil)
	h := New(cfg, "", &bytes.Buffer{})
	if err := h.Run(Prestart, strings.NewReader("{not json")); err == nil || !strings.Contains(err.Error(), "OCI state") {
		t.Fatalf("error = %v", err)
	}
	if err := runStage(t, h, Stage("poststart"), st); err == nil {
		t.Fatal("unknown stage accepted")
	}
	// An unknown stage is named before stdin is read (a reader that fails
	// stands in for a terminal that would block).
	if err := h.Run(Stage("version"), iotest.ErrReader(errors.New("stdin read"))); err == nil || !strings.Contains(err.Error(), `unknown stage "version"`) {
		t.Fatalf("unknown stage with unreadable stdin: %v", err)
	}
	if err := runStage(t, New(cfg, "nosuch", &bytes.Buffer{}), Prestart, st); err == nil || !strings.Contains(err.Error(), "nosuch") {
		t.Fatalf("unknown profile: %v", err)
	}
}

func TestReleaseLeavesNamesakeInAnotherBundle(t *testing.T) {
	cfg, st := hookFixture(t, nil, nil)
	cfg.Limits.Enforce = false
	if err := runStage(t, New(cfg, "", &bytes.Buffer{}), Prestart, st); err != nil {
		t.Fatal(err)
	}
	stopContainer(t, cfg.Hook.StateDir, st.ID)
	if err := ReleaseContainer(context.Background(), cfg, st.ID, "/run/other-namespace/bundle", &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadRecord(cfg.Hook.StateDir, st.ID); err != nil {
		t.Fatalf("a namesake's release removed the record: %v", err)
	}
	if err := ReleaseContainer(context.Background(), cfg, st.ID, st.Bundle+"/", &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadRecord(cfg.Hook.StateDir, st.ID); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("record left after its own release: %v", err)
	}
}

// A container cannot ask for more than [limits] max-ram: prestart fails,
// naming the request and the cap, and sets and records nothing.
func TestPrestartRefusesABudgetAboveTheCap(t *testing.T) {
	cfg, st := hookFixture(t, []string{"GREENBOOST_RAM_LIMIT=64G"}, nil)
	cfg.Limits.Enforce = false
	cfg.Limits.MaxRAM = "16G"
	err := runStage(t, New(cfg, "", &bytes.Buffer{}), Prestart, st)
	if err == nil || !strings.Contains(err.Error(), `GREENBOOST_RAM_LIMIT "64G" is above this host's cap limits.max-ram = "16G"`) {
		t.Fatalf("prestart: %v", err)
	}
	if _, err := ReadRecord(cfg.Hook.StateDir, st.ID); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("a record of a refused container: %v", err)
	}
}

// docker restart reuses the id and the bundle: once runc has removed the
// stopped container's state (and cgroup), the new container's prestart may
// take the state lock before the old poststop. That poststop must leave the
// new container's record, and budget, alone.
func TestReleaseLeavesNewerContainerOfTheSameID(t *testing.T) {
	cfg, st := hookFixture(t, nil, nil)
	cfg.Limits.Enforce = false
	if err := runStage(t, New(cfg, "", &bytes.Buffer{}), Prestart, st); err != nil { // the new container: alive
		t.Fatal(err)
	}
	if err := runStage(t, New(cfg, "", &bytes.Buffer{}), Poststop, st); err != nil { // the old one's
		t.Fatal(err)
	}
	if _, err := ReadRecord(cfg.Hook.StateDir, st.ID); err != nil {
		t.Fatalf("the old container's poststop removed the new one's record: %v", err)
	}
}

// runc records the bundle as its working directory, symlinks resolved;
// containerd names it as configured (/var/run/containerd/... with /var/run
// -> /run). Both name the container's own bundle, also once it is gone.
func TestReleaseSymlinkedBundle(t *testing.T) {
	for _, tc := range []struct {
		name     string
		via      func(realBundle, link string) string // the bundle the release names
		gone     bool                                 // the bundle is removed before the release
		wantKept bool
	}{
		{"through a symlinked parent", func(_, link string) string { return link }, false, false},
		{"through a symlinked parent, bundle gone", func(_, link string) string { return link }, true, false},
		{"unresolved with a trailing slash", func(realBundle, _ string) string { return realBundle + "/" }, false, false},
		{"another bundle under the symlink", func(_, link string) string { return link + "-other" }, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, st := hookFixture(t, nil, nil)
			cfg.Limits.Enforce = false
			root := t.TempDir()
			realDir := filepath.Join(root, "run", "containerd")
			if err := os.MkdirAll(filepath.Join(realDir, "b1"), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(filepath.Join(root, "run"), filepath.Join(root, "varrun")); err != nil {
				t.Fatal(err)
			}
			realBundle := filepath.Join(realDir, "b1")
			link := filepath.Join(root, "varrun", "containerd", "b1")
			if err := WriteRecord(cfg.Hook.StateDir, &Record{ID: st.ID, Bundle: realBundle, Pid: st.Pid, Cgroup: goneCgroup(t)}); err != nil {
				t.Fatal(err)
			}
			if tc.gone {
				if err := os.Remove(realBundle); err != nil {
					t.Fatal(err)
				}
			}
			if err := ReleaseContainer(context.Background(), cfg, st.ID, tc.via(realBundle, link), &bytes.Buffer{}); err != nil {
				t.Fatal(err)
			}
			_, err := ReadRecord(cfg.Hook.StateDir, st.ID)
			if kept := err == nil; kept != tc.wantKept {
				t.Errorf("record kept = %v (%v), want %v", kept, err, tc.wantKept)
			}
		})
	}
}

// The shim bounds its wait for the state lock (gc or a prestart hook may
// hold it; containerd gives a task delete 10 s, `shim delete` 5 s): when the
// bound passes it gets ErrLockTimeout and the record stays for gc. A
// context that never ends waits up to stateLockWait.
func TestReleaseLockWait(t *testing.T) {
	for _, tc := range []struct {
		name     string
		bound    time.Duration // 0: context.Background()
		holdFor  time.Duration // the other process's hold
		wantErr  error
		wantKept bool
	}{
		{"bounded, lock freed in time", 2 * time.Second, 50 * time.Millisecond, nil, false},
		{"bounded, lock held past the bound", 100 * time.Millisecond, 3 * time.Second, ErrLockTimeout, true},
		{"no bound of its own: waits", 0, 300 * time.Millisecond, nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, st, unlock := goneContainerLocked(t)
			freed := make(chan struct{})
			timer := time.AfterFunc(tc.holdFor, func() { unlock(); close(freed) })
			defer func() {
				if timer.Stop() {
					unlock()
				}
			}()
			ctx := context.Background()
			if tc.bound > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tc.bound)
				defer cancel()
			}
			start := time.Now()
			err := ReleaseContainer(ctx, cfg, st.ID, st.Bundle, &bytes.Buffer{})
			took := time.Since(start)
			if !errors.Is(err, tc.wantErr) || (err != nil) != (tc.wantErr != nil) {
				t.Fatalf("ReleaseContainer after %v: %v, want %v", took, err, tc.wantErr)
			}
			if tc.wantErr != nil && took > tc.bound+time.Second {
				t.Errorf("ReleaseContainer waited %v for the lock, bound %v", took, tc.bound)
			}
			if tc.wantErr == nil {
				select {
				case <-freed:
				default:
					t.Errorf("ReleaseContainer returned after %v while the lock was held", took)
				}
			}
			_, err = ReadRecord(cfg.Hook.StateDir, st.ID)
			if kept := err == nil; kept != tc.wantKept {
				t.Errorf("record kept = %v (%v), want %v", kept, err, tc.wantKept)
			}
		})
	}
}

// A record of a running container with the same id and another bundle (the
// same id in another containerd namespace) is not replaced: that
// container's budget would never be released. A dead one's is.
func TestPrestartRefusesLiveNamesake(t *testing.T) {
	cfg, st := hookFixture(t, nil, nil)
	cfg.Limits.Enforce = false
	self, err := ResolveCgroup(os.Getpid(), HierarchyAuto)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name    string
		cgroup  Cgroup
		wantErr bool
	}{
		{"alive", self, true},
		{"gone", Cgroup{Hierarchy: self.Hierarchy, ID: 1, Path: filepath.Join(t.TempDir(), "gone")}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			other := &Record{ID: st.ID, Bundle: "/run/other-namespace/bundle", Pid: os.Getpid(), Cgroup: tt.cgroup}
			if err := WriteRecord(cfg.Hook.StateDir, other); err != nil {
				t.Fatal(err)
			}
			err := runStage(t, New(cfg, "", &bytes.Buffer{}), Prestart, st)
			rec, rerr := ReadRecord(cfg.Hook.StateDir, st.ID)
			if rerr != nil {
				t.Fatal(rerr)
			}
			if tt.wantErr {
				if err == nil || !strings.Contains(err.Error(), "same id (bundle /run/other-namespace/bundle)") || rec.Bundle != other.Bundle {
					t.Fatalf("error = %v, record bundle %s: want a refusal and the namesake's record kept", err, rec.Bundle)
				}
				return
			}
			if err != nil || rec.Bundle != st.Bundle {
				t.Fatalf("error = %v, record bundle %s: want the dead namesake's record replaced", err, rec.Bundle)
			}
		})
	}
}

// Two of our CDI devices given to one container run two prestart hooks for
// the same start: budgets that differ are refused, not left to their order.
func TestPrestartRefusesTwoDevices(t *testing.T) {
	cfg, st := hookFixture(t, nil, nil)
	cfg.Limits.Enforce = false
	if err := runStage(t, New(cfg, "small", &bytes.Buffer{}), Prestart, st); err != nil {
		t.Fatal(err)
	}
	if err := runStage(t, New(cfg, "small", &bytes.Buffer{}), Prestart, st); err != nil {
		t.Fatalf("the same device twice: %v", err)
	}
	// another device with the same budgets: nothing depends on the order
	cfg.Limits.Profiles["small2"] = cfg.Limits.Profiles["small"]
	if err := runStage(t, New(cfg, "small2", &bytes.Buffer{}), Prestart, st); err != nil {
		t.Fatalf("two devices with the same budgets: %v", err)
	}
	err := runStage(t, New(cfg, "", &bytes.Buffer{}), Prestart, st)
	if err == nil || !strings.Contains(err.Error(), "greenboost.io/vram=small2 and greenboost.io/vram=ext") {
		t.Fatalf("error = %v, want a refusal naming both devices", err)
	}
	if rec, err := ReadRecord(cfg.Hook.StateDir, st.ID); err != nil || rec.Profile != "small2" {
		t.Fatalf("record %+v (%v): want the first device's kept", rec, err)
	}
	// A later start of the container (another pid) takes its new device.
	st.Pid = 1
	if err := runStage(t, New(cfg, "", &bytes.Buffer{}), Prestart, st); err != nil {
		t.Fatalf("a restart with another device: %v", err)
	}
}

// A budget needs the container's own cgroup: one shared with other
// processes would bind them, and its release would lift their budget.
func TestOwnCgroup(t *testing.T) {
	dir := t.TempDir()
	cg := Cgroup{Path: dir}
	for _, tt := range []struct {
		procs   string
		wantErr string
	}{
		{"42\n", ""},
		{"", ""},
		{"42\n7\n", "shared with other processes (pid 7)"},
	} {
		if err := os.WriteFile(filepath.Join(dir, "cgroup.procs"), []byte(tt.procs), 0o644); err != nil {
			t.Fatal(err)
		}
		err := ownCgroup(cg, 42)
		if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
			t.Errorf("procs %q: error %v, want %q", tt.procs, err, tt.wantErr)
		}
	}
	if err := ownCgroup(Cgroup{Path: filepath.Join(dir, "gone")}, 42); err == nil {
		t.Error("a cgroup without cgroup.procs passed")
	}

	// A v1 child cgroup (cgroup.procs, as in the memory hierarchy) with
	// processes: charges there go up to the container's cgroup.
	if err := os.WriteFile(filepath.Join(dir, "cgroup.procs"), []byte("42\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	child := filepath.Join(dir, "session.scope")
	if err := os.MkdirAll(filepath.Join(child, "inner"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{filepath.Join(child, "cgroup.procs"), filepath.Join(child, "inner", "cgroup.procs")} {
		if err := os.WriteFile(f, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := ownCgroup(cg, 42); err != nil {
		t.Errorf("empty child cgroups: %v", err)
	}
	if err := os.WriteFile(filepath.Join(child, "inner", "cgroup.procs"), []byte("7\n8\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := ownCgroup(cg, 42); !errors.Is(err, errSharedCgroup) || !strings.Contains(err.Error(), child) {
		t.Errorf("a grandchild with processes: %v", err)
	}
	// v2: a child's cgroup.events says whether its subtree has processes.
	if err := os.RemoveAll(child); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(child, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		events string
		shared bool
	}{{"populated 0\nfrozen 0\n", false}, {"populated 1\nfrozen 0\n", true}} {
		if err := os.WriteFile(filepath.Join(child, "cgroup.events"), []byte(tt.events), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := ownCgroup(cg, 42); errors.Is(err, errSharedCgroup) != tt.shared {
			t.Errorf("child with cgroup.events %q: %v", tt.events, err)
		}
	}
}

// The fix a refusal names follows its cause: a module to load, or a cgroup
// of the container's own.
func TestNotEnforcedErrorNamesTheFix(t *testing.T) {
	cfg := config.Default()
	shared := notEnforcedError(cfg, "c1", fmt.Errorf("cgroup /x is shared with other processes (pid 7): %w", errSharedCgroup), false)
	if !strings.Contains(shared.Error(), "give the container a cgroup of its own") || strings.Contains(shared.Error(), "load the GreenBoost module") {
		t.Errorf("shared cgroup: %v", shared)
	}
	noModule := notEnforcedError(cfg, "c1", errors.New("open greenboost device /dev/greenboost: no such file or directory"), true)
	if !strings.Contains(noModule.Error(), "load the GreenBoost module") || !strings.Contains(noModule.Error(), "enforce = false in "+cfg.Path) {
		t.Errorf("no module: %v", noModule)
	}
	noPrivilege := notEnforcedError(cfg, "c1", fmt.Errorf("setting the budget of cgroup /x: %w", unix.EPERM), false)
	if !strings.Contains(noPrivilege.Error(), "CAP_SYS_ADMIN") || strings.Contains(noPrivilege.Error(), "load the GreenBoost module") {
		t.Errorf("no privilege: %v", noPrivilege)
	}
	// The container's process is gone before its prestart: no module to blame.
	gone := notEnforcedError(cfg, "c1", fmt.Errorf("open /proc/99999999/cgroup: %w", fs.ErrNotExist), false)
	if strings.Contains(gone.Error(), "load the GreenBoost module") || !strings.Contains(gone.Error(), "; or set [limits] enforce = false") {
		t.Errorf("pid gone: %v", gone)
	}
}

// The poststop hook runs inside the engine's delete (CRI gives it 10 s): it
// waits poststopLockWait for the state lock, then leaves the record for gc.
func TestPoststopLockWaitBounded(t *testing.T) {
	cfg, st, unlock := goneContainerLocked(t)
	defer unlock()
	old := poststopLockWait
	poststopLockWait = 100 * time.Millisecond
	defer func() { poststopLockWait = old }()
	start := time.Now()
	err := runStage(t, New(cfg, "", io.Discard), Poststop, st)
	if !errors.Is(err, ErrLockTimeout) || time.Since(start) > 5*time.Second {
		t.Fatalf("poststop with the lock held: %v after %v, want ErrLockTimeout after about %v", err, time.Since(start), poststopLockWait)
	}
	if _, err := ReadRecord(cfg.Hook.StateDir, st.ID); err != nil {
		t.Errorf("the record is gone (%v), want it kept for gc", err)
	}
}

// goneContainerLocked is a container whose cgroup is gone, with its record,
// and the state lock held as another process would hold it.
func goneContainerLocked(t *testing.T) (*config.Config, *specs.State, func()) {
	t.Helper()
	cfg, st := hookFixture(t, nil, nil)
	if err := WriteRecord(cfg.Hook.StateDir, &Record{ID: st.ID, Bundle: st.Bundle, Pid: st.Pid, Cgroup: goneCgroup(t)}); err != nil {
		t.Fatal(err)
	}
	unlock, err := lockState(cfg.Hook.StateDir, true)
	if err != nil {
		t.Fatal(err)
	}
	return cfg, st, unlock
}
