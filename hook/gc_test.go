package hook

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/greenboost/greenboost-container-toolkit/internal/config"
	"github.com/greenboost/greenboost-container-toolkit/kmod"
	"golang.org/x/sys/unix"
)

func TestCollectDropsRecordsOfGoneContainers(t *testing.T) {
	cfg := config.Default()
	cfg.Hook.StateDir = t.TempDir()
	live := t.TempDir() // stands in for a cgroup directory that still exists
	liveID, err := kmod.CgroupID(live)
	if err != nil {
		t.Fatal(err)
	}
	gone := filepath.Join(t.TempDir(), "removed-cgroup")
	recs := []*Record{
		{ID: "alive", Cgroup: Cgroup{ID: liveID, Path: live}},
		{ID: "dead", Cgroup: Cgroup{ID: 12345, Path: gone}},
		{ID: "reused", Cgroup: Cgroup{ID: liveID + 1, Path: live}}, // same path, new cgroup
		{ID: "nocgroup-dead", Pid: 1 << 30},
		{ID: "nocgroup-alive", Pid: os.Getpid()},
		{ID: ".dotted-dead", Pid: 1 << 30}, // runc allows ids that start with a dot
	}
	for _, r := range recs {
		if err := WriteRecord(cfg.Hook.StateDir, r); err != nil {
			t.Fatal(err)
		}
	}
	res, err := Collect(cfg, nil, time.Now().Add(time.Minute), true)
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(res.RecordsDropped)
	if !slices.Equal(res.RecordsDropped, []string{".dotted-dead", "dead", "nocgroup-dead", "reused"}) {
		t.Fatalf("dropped %v", res.RecordsDropped)
	}
	left, leftOut, err := ReadRecords(cfg.Hook.StateDir)
	if err != nil || leftOut != nil {
		t.Fatal(err, leftOut)
	}
	var ids []string
	for _, r := range left {
		ids = append(ids, r.ID)
	}
	if !slices.Equal(ids, []string{"alive", "nocgroup-alive"}) {
		t.Fatalf("left %v", ids)
	}
}

// A file in the record dir that greenboost-hook did not write (a record of
// another container, content that does not parse, a name the hook never
// gives) is left alone and named, and is no failure: the gc timer runs every
// minute, and one stray file must not fail it until someone removes it. The
// rest of the collection still runs, and status names the file too.
func TestCollectLeavesForeignFilesAlone(t *testing.T) {
	tests := []struct {
		name    string
		file    string
		content string
		// make, where set, makes the stray file instead of content.
		make func(t *testing.T, path string)
	}{
		{"another container's record", "stale-other.json", `{"id":"ctr-live","cgroup":{"id":12345,"path":"/nonexistent/cgroup"}}`, nil},
		{"garbage", "bad.json", "garbage\n", nil},
		{"empty", "empty.json", "", nil},
		{"truncated", "broken.json", `{"id":`, nil},
		{"wrong type", "typed.json", `{"id":"typed","pid":"one"}`, nil},
		{"bad time", "timed.json", `{"id":"timed","time":"yesterday"}`, nil},
		{"not a JSON object", "list.json", `[]`, nil},
		{"no id in the name", ".json", `{"id":""}`, nil},
		// Read without a limit or blocking, these stalled every prestart.
		{"a FIFO", "fifo.json", "", func(t *testing.T, path string) {
			if err := unix.Mkfifo(path, 0o644); err != nil {
				t.Fatal(err)
			}
		}},
		{"a link to /dev/zero", "zero.json", "", func(t *testing.T, path string) {
			if err := os.Symlink("/dev/zero", path); err != nil {
				t.Fatal(err)
			}
		}},
		{"a directory", "dir.json", "", func(t *testing.T, path string) {
			if err := os.Mkdir(path, 0o755); err != nil {
				t.Fatal(err)
			}
		}},
		{"a huge file", "huge.json", "", func(t *testing.T, path string) {
			writeFile(t, path, "")
			if err := os.Truncate(path, 1<<30); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := config.Default()
			cfg.Hook.StateDir = t.TempDir()
			live := t.TempDir()
			liveID, err := kmod.CgroupID(live)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range []*Record{
				{ID: "ctr-live", Cgroup: Cgroup{ID: liveID, Path: live}},
				{ID: "ctr-dead", Cgroup: Cgroup{ID: 12345, Path: filepath.Join(t.TempDir(), "removed-cgroup")}},
			} {
				if err := WriteRecord(cfg.Hook.StateDir, r); err != nil {
					t.Fatal(err)
				}
			}
			stray := filepath.Join(RecordDir(cfg.Hook.StateDir), tt.file)
			if tt.make != nil {
				tt.make(t, stray)
			} else {
				writeFile(t, stray, tt.content)
			}
			res, err := Collect(cfg, nil, time.Now().Add(time.Minute), true)
			if err != nil {
				t.Errorf("error = %v, want none for a file the hook did not write", err)
			}
			if len(res.LeftAlone) != 1 || !strings.Contains(res.LeftAlone[0].Error(), stray) ||
				!errors.Is(res.LeftAlone[0], ErrForeignRecord) || !strings.Contains(res.LeftAlone[0].Error(), "remove it by hand") {
				t.Errorf("left alone: %v, want one naming %s and the fix", res.LeftAlone, stray)
			}
			if !slices.Equal(res.RecordsDropped, []string{"ctr-dead"}) {
				t.Errorf("dropped %v, want [ctr-dead]", res.RecordsDropped)
			}
			left, err, listErr := ReadRecords(cfg.Hook.StateDir)
			if listErr != nil {
				t.Fatal(listErr)
			}
			if len(left) != 1 || left[0].ID != "ctr-live" || !errors.Is(err, ErrForeignRecord) || !strings.Contains(fmt.Sprint(err), stray) {
				t.Errorf("records left: %v (%v); want ctr-live, and the stray file named in the error", left, err)
			}
			if _, err := os.Stat(stray); err != nil {
				t.Errorf("the stray file was removed: %v", err)
			}
		})
	}
}

// Only files the hook did not write are let off: a record file or a record
// dir that cannot be read and module errors still fail the run.
func TestCollectFailures(t *testing.T) {
	errList := errors.New("CG_LIST: input/output error")
	tests := []struct {
		name   string
		setup  func(t *testing.T, stateDir string)
		kernel kmod.Kernel
		want   string
		// noStray: no room for a foreign record beside the failure.
		noStray bool
	}{
		{
			name: "record dir unreadable",
			setup: func(t *testing.T, stateDir string) {
				writeFile(t, RecordDir(stateDir), "not a directory")
			},
			want:    "listing records",
			noStray: true,
		},
		{
			name:   "module list fails",
			kernel: &fakeKernel{listErr: errList},
			want:   errList.Error(),
		},
		{
			// Only ENOTTY and EINVAL say "no cgroup ABI".
			name:   "module query fails otherwise",
			kernel: &fakeKernel{queryErr: unix.EIO, listErr: errList},
			want:   errList.Error(),
		},
		{
			name: "module release fails",
			setup: func(t *testing.T, stateDir string) {
				if err := WriteRecord(stateDir, &Record{ID: "dead", Enforced: true, Cgroup: Cgroup{ID: 7, Path: "/nonexistent/cgroup"}}); err != nil {
					t.Fatal(err)
				}
			},
			kernel: &fakeKernel{releaseErr: errors.New("permission denied")},
			want:   "releasing the budget of container dead",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := config.Default()
			cfg.Hook.StateDir = t.TempDir()
			if tt.setup != nil {
				tt.setup(t, cfg.Hook.StateDir)
			}
			if !tt.noStray { // a foreign record beside the failure must not hide it
				writeFile(t, filepath.Join(RecordDir(cfg.Hook.StateDir), "stray.json"), `{"id":"other"}`)
			}
			var k kmod.Kernel
			if tt.kernel != nil {
				k = tt.kernel
			}
			if _, err := Collect(cfg, k, time.Now().Add(time.Minute), true); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error = %v, want one containing %q", err, tt.want)
			}
		})
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// fakeKernel is a module whose Query, List and Release fail as told; it
// counts the releases asked of it.
type fakeKernel struct {
	kmod.Kernel
	queryErr, listErr, releaseErr error
	releases                      int
	onList                        func()         // called by List
	nodes                         []kmod.CgEntry // what List returns
}

func (f *fakeKernel) Query() (kmod.CgQuery, error) { return kmod.CgQuery{}, f.queryErr }

func (f *fakeKernel) List() ([]kmod.CgEntry, error) {
	if f.onList != nil {
		f.onList()
	}
	return f.nodes, f.listErr
}

func (f *fakeKernel) Release(kmod.Cgroup, uint32) (kmod.CgRelease, error) {
	f.releases++
	return kmod.CgRelease{}, f.releaseErr
}

// An upstream GreenBoost module answers the cgroup ABI's ioctls with ENOTTY
// (or EINVAL): gc runs as without a module, dropping the records of gone
// containers (one enforced before the module was swapped too: the upstream
// module holds no budget to release), and does not fail (its timer runs
// every minute).
func TestCollectWithoutCgroupABI(t *testing.T) {
	for _, errno := range []unix.Errno{unix.ENOTTY, unix.EINVAL} {
		t.Run(errno.Error(), func(t *testing.T) {
			cfg := config.Default()
			cfg.Hook.StateDir = t.TempDir()
			for _, r := range []*Record{
				{ID: "dead", Pid: 1 << 30},
				{ID: "dead-enforced", Enforced: true, Cgroup: Cgroup{ID: 7, Path: "/nonexistent/cgroup"}},
				{ID: "alive", Pid: os.Getpid()},
			} {
				if err := WriteRecord(cfg.Hook.StateDir, r); err != nil {
					t.Fatal(err)
				}
			}
			// As kmod.Device wraps them.
			k := &fakeKernel{
				queryErr:   fmt.Errorf("greenboost CG_QUERY on /dev/greenboost: %w", errno),
				listErr:    fmt.Errorf("list cgroup nodes: greenboost CG_LIST on /dev/greenboost: %w", errno),
				releaseErr: fmt.Errorf("greenboost CG_RELEASE on /dev/greenboost: %w", errno),
			}
			res, err := Collect(cfg, k, time.Now().Add(time.Minute), true)
			if err != nil {
				t.Fatalf("error = %v, want none with a module that has no cgroup ABI", err)
			}
			slices.Sort(res.RecordsDropped)
			if !slices.Equal(res.RecordsDropped, []string{"dead", "dead-enforced"}) || len(res.NodesReleased) != 0 || k.releases != 0 {
				t.Errorf("dropped %v, released nodes %v, %d release call(s); want the two dead records dropped and no release", res.RecordsDropped, res.NodesReleased, k.releases)
			}
			if _, err := ReadRecord(cfg.Hook.StateDir, "alive"); err != nil {
				t.Errorf("the live container's record: %v", err)
			}
		})
	}
}

func TestCollectSkipsWhenLocked(t *testing.T) {
	cfg := config.Default()
	cfg.Hook.StateDir = t.TempDir()
	unlock, err := lockState(cfg.Hook.StateDir, true)
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	dead := &Record{ID: "dead", Bundle: "/b", Pid: 1, Cgroup: Cgroup{ID: 1, Path: filepath.Join(t.TempDir(), "gone")}}
	if err := WriteRecord(cfg.Hook.StateDir, dead); err != nil {
		t.Fatal(err)
	}
	if _, err := Collect(cfg, nil, time.Now().Add(time.Second), false); !errors.Is(err, errLocked) {
		t.Fatalf("error = %v, want errLocked", err)
	}
	if _, err := ReadRecord(cfg.Hook.StateDir, "dead"); err != nil {
		t.Fatalf("the record went while another process held the lock: %v", err)
	}
}

// A gc that waits for the state lock waits only until its deadline, and
// says it stopped early: `greenboost-ctk gc --timeout` bounds the whole run.
func TestCollectWaitsForTheLockUntilTheDeadline(t *testing.T) {
	cfg := config.Default()
	cfg.Hook.StateDir = t.TempDir()
	dead := &Record{ID: "dead", Bundle: "/b", Pid: 1, Cgroup: Cgroup{ID: 1, Path: filepath.Join(t.TempDir(), "gone")}}
	if err := WriteRecord(cfg.Hook.StateDir, dead); err != nil {
		t.Fatal(err)
	}
	unlock, err := lockState(cfg.Hook.StateDir, false)
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	start := time.Now()
	res, err := Collect(cfg, nil, start.Add(300*time.Millisecond), true)
	if took := time.Since(start); err != nil || !res.Incomplete || took > 3*time.Second {
		t.Fatalf("gc with the lock held: %+v, %v after %v; want incomplete, no error, at its deadline", res, err, took)
	}
	if _, err := ReadRecord(cfg.Hook.StateDir, "dead"); err != nil {
		t.Fatalf("the record went while another process held the lock: %v", err)
	}
}

// gc holds the state lock for one record at a time, so that a prestart hook
// or the shim's release never waits for a whole run: after the records, in
// the node pass, another process takes it at once.
func TestCollectLocksPerRecord(t *testing.T) {
	cfg := config.Default()
	cfg.Hook.StateDir = t.TempDir()
	for _, id := range []string{"a", "b"} {
		rec := &Record{ID: id, Bundle: "/b", Pid: 1, Enforced: true, Cgroup: Cgroup{ID: 1, Path: filepath.Join(t.TempDir(), "gone")}}
		if err := WriteRecord(cfg.Hook.StateDir, rec); err != nil {
			t.Fatal(err)
		}
	}
	var lockErr error
	k := &fakeKernel{onList: func() {
		unlock, err := lockState(cfg.Hook.StateDir, false)
		if err == nil {
			unlock()
		}
		lockErr = err
	}}
	res, err := Collect(cfg, k, time.Now().Add(time.Minute), true)
	if err != nil || len(res.RecordsDropped) != 2 || k.releases != 2 {
		t.Fatalf("gc: %+v, %d releases, %v", res, k.releases, err)
	}
	if lockErr != nil {
		t.Fatalf("the state lock was still held after the records: %v", lockErr)
	}
}

// A node freed between gc's list and its release (a poststop or the shim's
// release got there first) is no failure of the run.
func TestCollectNodeFreedMeanwhile(t *testing.T) {
	cfg := config.Default()
	cfg.Hook.StateDir = t.TempDir()
	k := &fakeKernel{nodes: []kmod.CgEntry{{CgroupID: 7}}, releaseErr: unix.ENOENT}
	res, err := Collect(cfg, k, time.Now().Add(time.Minute), true)
	if err != nil || k.releases != 1 || len(res.NodesReleased) != 0 {
		t.Fatalf("gc: %+v, %d releases, %v; want no error", res, k.releases, err)
	}
}

func TestJoinUsage(t *testing.T) {
	recs := []*Record{
		{ID: "a", Cgroup: Cgroup{Hierarchy: 0, ID: 10}, Limits: Limits{RAM: 64 << 20}, Enforced: true},
		{ID: "b", Cgroup: Cgroup{Hierarchy: 0, ID: 11}, Limits: Limits{RAM: 1 << 30}},
	}
	nodes := []kmod.CgEntry{
		{CgroupID: 10, T2Usage: 8 << 20, T2Max: 64 << 20, T3Max: kmod.Unlimited, NrBuffers: 1},
		{CgroupID: 99, T2Usage: 2 << 20, T2Max: kmod.Unlimited, T3Max: kmod.Unlimited},
	}
	rows, orphans := JoinUsage(recs, nodes)
	if len(rows) != 2 || rows[0].T2Used != 8<<20 || rows[0].T2Limit != 64<<20 || rows[0].T3Limit != 0 || rows[0].Buffers != 1 {
		t.Fatalf("rows = %+v", rows)
	}
	if rows[1].T2Used != 0 || rows[1].T2Limit != 1<<30 || rows[1].Enforced {
		t.Fatalf("unenforced row = %+v", rows[1])
	}
	if len(orphans) != 1 || orphans[0].CgroupID != 99 {
		t.Fatalf("orphans = %+v", orphans)
	}
}

// The containerd shim's gc on delete drops records of gone containers with a
// device that is no GreenBoost module or none at all, and never waits for
// the state lock.
func TestCollectBriefly(t *testing.T) {
	for _, device := range []string{"/dev/null", "/nonexistent/greenboost"} {
		cfg := config.Default()
		cfg.Device.HostPath = device
		cfg.Hook.StateDir = t.TempDir()
		for _, r := range []*Record{{ID: "dead", Pid: 1 << 30}, {ID: "alive", Pid: os.Getpid()}} {
			if err := WriteRecord(cfg.Hook.StateDir, r); err != nil {
				t.Fatal(err)
			}
		}
		CollectBriefly(cfg, nil)
		if _, err := ReadRecord(cfg.Hook.StateDir, "dead"); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s: the dead container's record is left: %v", device, err)
		}
		if _, err := ReadRecord(cfg.Hook.StateDir, "alive"); err != nil {
			t.Errorf("%s: the live container's record: %v", device, err)
		}
		unlock, err := lockState(cfg.Hook.StateDir, true)
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan struct{})
		go func() { CollectBriefly(cfg, nil); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Errorf("%s: CollectBriefly waited for the state lock", device)
		}
		unlock()
	}
}

// A module that is loaded but cannot be opened (here: its node is missing)
// holds budgets that only a release can lift: CollectBriefly leaves every
// record for a gc that can open it.
func TestCollectBrieflyWaitsForALoadedModule(t *testing.T) {
	saved := kmod.SysModule
	kmod.SysModule = t.TempDir() // the module is loaded
	t.Cleanup(func() { kmod.SysModule = saved })
	cfg := config.Default()
	cfg.Device.HostPath = "/nonexistent/greenboost"
	cfg.Hook.StateDir = t.TempDir()
	for _, r := range []*Record{{ID: "dead-enforced", Pid: 1 << 30, Enforced: true, Cgroup: Cgroup{ID: 9, Path: filepath.Join(t.TempDir(), "gone")}}, {ID: "dead", Pid: 1 << 30}} {
		if err := WriteRecord(cfg.Hook.StateDir, r); err != nil {
			t.Fatal(err)
		}
	}
	CollectBriefly(cfg, nil)
	for _, id := range []string{"dead-enforced", "dead"} {
		if _, err := ReadRecord(cfg.Hook.StateDir, id); err != nil {
			t.Errorf("record %s: %v", id, err)
		}
	}
}

// Prestart collects even where it cannot enforce ([limits] enforce = false,
// no module): records of exits whose poststop never ran go.
func TestPrestartWithoutModuleCollects(t *testing.T) {
	cfg, st := hookFixture(t, nil, nil)
	cfg.Limits.Enforce = false
	cfg.Device.HostPath = "/nonexistent/greenboost"
	if err := WriteRecord(cfg.Hook.StateDir, &Record{ID: "dead", Pid: 1 << 30}); err != nil {
		t.Fatal(err)
	}
	if err := runStage(t, New(cfg, "", io.Discard), Prestart, st); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadRecord(cfg.Hook.StateDir, "dead"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("the dead container's record is left: %v", err)
	}
}

// Prestart hooks collect at most once per prestartGCInterval, so that a
// start does not read every record each time: the record of a container
// that died after one prestart's gc stays through the next prestart, and
// goes with the first prestart after the interval.
func TestPrestartCollectsAtMostOncePerInterval(t *testing.T) {
	cfg, st := hookFixture(t, nil, nil)
	cfg.Limits.Enforce = false
	cfg.Device.HostPath = "/nonexistent/greenboost"
	h := New(cfg, "", io.Discard)
	if err := runStage(t, h, Prestart, st); err != nil {
		t.Fatal(err)
	}
	if err := WriteRecord(cfg.Hook.StateDir, &Record{ID: "dead", Pid: 1 << 30}); err != nil {
		t.Fatal(err)
	}
	if err := runStage(t, h, Prestart, st); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadRecord(cfg.Hook.StateDir, "dead"); err != nil {
		t.Fatalf("the prestart right after a collecting one collected too (or lost the record): %v", err)
	}
	stamp := filepath.Join(cfg.Hook.StateDir, gcStampName)
	past := time.Now().Add(-prestartGCInterval - time.Second)
	if err := os.Chtimes(stamp, past, past); err != nil {
		t.Fatal(err)
	}
	if err := runStage(t, h, Prestart, st); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadRecord(cfg.Hook.StateDir, "dead"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("a prestart after the interval left the dead container's record: %v", err)
	}
	if fi, err := os.Stat(stamp); err != nil || time.Since(fi.ModTime()) > prestartGCInterval {
		t.Fatalf("the collecting prestart did not renew %s: %v", stamp, err)
	}
}

// A cgroup counts as alive while a process is in it or below it: a
// directory the runtime failed to remove on delete is left empty.
func TestPopulated(t *testing.T) {
	write := func(t *testing.T, path, content string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, tt := range []struct {
		name  string
		files map[string]string
		want  bool
	}{
		{"v2 populated", map[string]string{"cgroup.events": "populated 1\nfrozen 0\n", "cgroup.procs": ""}, true},
		{"v2 empty", map[string]string{"cgroup.events": "populated 0\nfrozen 0\n", "cgroup.procs": ""}, false},
		{"v1 with a process", map[string]string{"cgroup.procs": "4242\n"}, true},
		{"v1 with a process below", map[string]string{"cgroup.procs": "", "inner/cgroup.procs": "4242\n"}, true},
		{"v1 empty", map[string]string{"cgroup.procs": "", "inner/cgroup.procs": "\n"}, false},
		{"not a cgroup", map[string]string{"other": "x"}, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			for name, content := range tt.files {
				write(t, filepath.Join(dir, name), content)
			}
			if got := populated(dir); got != tt.want {
				t.Errorf("populated = %v, want %v", got, tt.want)
			}
		})
	}
}

// A poststop whose container's cgroup the runtime could not remove (a
// process stuck in the kernel, an escaped exec) still releases: the empty
// directory left behind is no newer container.
func TestReleaseWithTheCgroupLeftEmpty(t *testing.T) {
	cfg := config.Default()
	cfg.Hook.StateDir = t.TempDir()
	cg := t.TempDir()
	if err := os.WriteFile(filepath.Join(cg, "cgroup.procs"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	id, err := kmod.CgroupID(cg)
	if err != nil {
		t.Fatal(err)
	}
	if err := WriteRecord(cfg.Hook.StateDir, &Record{ID: "c1", Bundle: "/b", Pid: 1 << 30, Cgroup: Cgroup{ID: id, Path: cg}}); err != nil {
		t.Fatal(err)
	}
	if err := ReleaseContainer(context.Background(), cfg, "c1", "/b", io.Discard); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadRecord(cfg.Hook.StateDir, "c1"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("the record stayed: %v", err)
	}
}

// A record that says its budget was set, for a cgroup the module has no node
// for (the module was unloaded or reloaded since), is not shown as enforced:
// the budget is lost.
func TestJoinUsageBudgetLost(t *testing.T) {
	recs := []*Record{
		{ID: "held", Cgroup: Cgroup{ID: 10}, Limits: Limits{RAM: 64 << 20}, Enforced: true},
		{ID: "lost", Cgroup: Cgroup{ID: 11}, Limits: Limits{RAM: 64 << 20}, Enforced: true},
		{ID: "unenforced", Cgroup: Cgroup{ID: 12}, Limits: Limits{RAM: 64 << 20}},
	}
	for _, tt := range []struct {
		name  string
		nodes []kmod.CgEntry
		want  map[string][2]bool // id: enforced, lost
	}{
		{"module with one node", []kmod.CgEntry{{CgroupID: 10, T2Max: 64 << 20}}, map[string][2]bool{"held": {true, false}, "lost": {false, true}, "unenforced": {false, false}}},
		{"no module", nil, map[string][2]bool{"held": {false, true}, "lost": {false, true}, "unenforced": {false, false}}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rows, _ := JoinUsage(recs, tt.nodes)
			if len(rows) != len(recs) {
				t.Fatalf("%d rows for %d records: %+v", len(rows), len(recs), rows)
			}
			for _, r := range rows {
				want, ok := tt.want[r.ID]
				if got := [2]bool{r.Enforced, r.Lost}; !ok || got != want {
					t.Errorf("%s: enforced, lost = %v, want %v", r.ID, got, want)
				}
				delete(tt.want, r.ID)
			}
			if len(tt.want) != 0 {
				t.Errorf("no rows for %v", tt.want)
			}
		})
	}
}

// Poststop with the module gone does as gc: no module (or one without the
// cgroup ABI) holds no budget to release, so the record goes and poststop
// succeeds. A module that is loaded but cannot be opened still holds the
// budget: the record stays for gc.
func TestReleaseWithoutModule(t *testing.T) {
	for _, tt := range []struct {
		name, device string
		loaded       bool
		wantErr      string
	}{
		{"not loaded", "/nonexistent/greenboost", false, ""},
		{"no cgroup ABI", "/dev/null", true, ""},
		{"loaded, its device node missing", "/nonexistent/greenboost", true, "/nonexistent/greenboost"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			saved := kmod.SysModule
			kmod.SysModule = filepath.Join(t.TempDir(), "greenboost")
			if tt.loaded {
				if err := os.Mkdir(kmod.SysModule, 0o755); err != nil {
					t.Fatal(err)
				}
			}
			t.Cleanup(func() { kmod.SysModule = saved })
			cfg := config.Default()
			cfg.Device.HostPath = tt.device
			cfg.Hook.StateDir = t.TempDir()
			if err := WriteRecord(cfg.Hook.StateDir, &Record{ID: "c1", Bundle: "/b", Pid: 1 << 30, Enforced: true, Cgroup: goneCgroup(t)}); err != nil {
				t.Fatal(err)
			}
			var warn strings.Builder
			err := ReleaseContainer(context.Background(), cfg, "c1", "/b", &warn)
			_, readErr := ReadRecord(cfg.Hook.StateDir, "c1")
			if tt.wantErr == "" {
				if err != nil || !errors.Is(readErr, fs.ErrNotExist) || !strings.Contains(warn.String(), "container c1: no GreenBoost module with the cgroup ABI is loaded") {
					t.Fatalf("error = %v, record: %v, note %q; want no error, the record gone and a note saying why", err, readErr, warn.String())
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) || readErr != nil {
				t.Fatalf("error = %v, record: %v; want an error naming %s and the record kept", err, readErr, tt.wantErr)
			}
		})
	}
}

// A container without a cgroup of its own is alive while its init runs: its
// killed init, a zombie until its parent reaps it, is gone (crun
// --cgroup-manager=disabled, podman --cgroups=disabled).
func TestContainerWithoutCgroupAliveWhileItsInitRuns(t *testing.T) {
	if !containerAlive(&Record{Pid: os.Getpid()}) {
		t.Fatal("this test process counts as gone")
	}
	cmd := exec.Command("true")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	rec := &Record{Pid: cmd.Process.Pid}
	zombie := false
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if stat, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", rec.Pid)); strings.Contains(string(stat), ") Z ") {
			zombie = true
			break
		}
	}
	if !zombie {
		t.Fatalf("process %d never became a zombie", rec.Pid)
	}
	if containerAlive(rec) {
		t.Error("a container whose init is a zombie counts as alive")
	}
	cmd.Wait()
	if containerAlive(rec) {
		t.Error("a container whose init was reaped counts as alive")
	}
}
