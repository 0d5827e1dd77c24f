package hook

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/greenboost/greenboost-container-toolkit/internal/config"
	"github.com/greenboost/greenboost-container-toolkit/kmod"
	"golang.org/x/sys/unix"
)

// GCResult says what a collection did.
type GCResult struct {
	RecordsDropped []string `json:"records_dropped"`
	NodesReleased  []uint64 `json:"nodes_released"`
	Pending        []string `json:"pending"`
	// Incomplete is set when the deadline stopped the collection early.
	Incomplete bool `json:"incomplete"`
	// LeftAlone names the files in the record dir that greenboost-hook did
	// not write: a record of another container (acting on the id inside
	// would touch that container's record), content that does not parse as
	// a record, a name the hook never gives. Each wraps ErrForeignRecord;
	// they are left in place for the admin, and are no failure of the run.
	LeftAlone []error `json:"-"`
}

// Collect releases what dead containers left: records of containers whose
// cgroup is gone (their budgets released first) and module nodes whose
// cgroup no longer exists. k is nil when the module is not loaded; then only
// records are dropped, as they are when k is a module without the cgroup ABI
// (an upstream GreenBoost module). With wait false a held state lock skips
// the run; with wait true gc waits for it until deadline, and a lock held
// past it ends the run as Incomplete.
func Collect(cfg *config.Config, k kmod.Kernel, deadline time.Time, wait bool) (GCResult, error) {
	res := GCResult{RecordsDropped: []string{}, NodesReleased: []uint64{}, Pending: []string{}}
	if k != nil && !hasCgroupABI(k) {
		// An upstream module: it holds no budgets and lists no nodes, so
		// the run is the one without a module, not a failure every minute.
		k = nil
	}
	ids, err := recordIDs(cfg.Hook.StateDir)
	if err != nil {
		return res, err
	}
	var errs []error
	for _, id := range ids {
		if time.Now().After(deadline) {
			res.Incomplete = true
			return res, errors.Join(errs...)
		}
		// The state lock is held for one record at a time: a prestart
		// hook or the shim's release waits for one record, not the run.
		unlock, err := lockForRecord(cfg.Hook.StateDir, wait, deadline)
		if errors.Is(err, ErrLockTimeout) {
			res.Incomplete = true
			return res, errors.Join(errs...)
		}
		if err != nil {
			return res, errors.Join(append(errs, err)...)
		}
		err = collectRecord(cfg.Hook.StateDir, k, id, &res)
		unlock()
		if err != nil {
			errs = append(errs, err)
		}
	}

	if k == nil {
		return res, errors.Join(errs...)
	}
	nodes, err := k.List()
	if err != nil {
		return res, errors.Join(append(errs, err)...)
	}
	for _, n := range nodes {
		// A released node is freed by the module once nothing is charged; v1
		// nodes (liveness unknown) are left to their records.
		if n.NodeFlags&(kmod.CgNodeReleased|kmod.CgNodeAlive|kmod.CgNodeAliveUnknown) != 0 {
			continue
		}
		if time.Now().After(deadline) {
			res.Incomplete = true
			break
		}
		_, err := k.Release(kmod.Cgroup{Hierarchy: n.Hierarchy, ID: n.CgroupID}, 0)
		if errors.Is(err, unix.ENOENT) {
			continue // freed since the list: a release got there first
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		res.NodesReleased = append(res.NodesReleased, n.CgroupID)
	}
	return res, errors.Join(errs...)
}

// hasCgroupABI reports whether k answers the cgroup ABI's query (see
// LacksCgroupABI).
func hasCgroupABI(k kmod.Kernel) bool {
	_, err := k.Query()
	return !LacksCgroupABI(err)
}

// LacksCgroupABI reports whether err, from the module's CG_QUERY, says it
// has no cgroup ABI: ENOTTY or EINVAL is a module without it (an upstream
// one, or another driver at the path); any other failure is left to the
// calls that follow to report.
func LacksCgroupABI(err error) bool {
	return errors.Is(err, unix.ENOTTY) || errors.Is(err, unix.EINVAL)
}

// collectRecord drops the record of container id if the container is gone,
// releasing its budget first, and notes what it did in res. The caller holds
// the state lock.
func collectRecord(stateDir string, k kmod.Kernel, id string, res *GCResult) error {
	rec, err := readListedRecord(stateDir, id)
	if errors.Is(err, os.ErrNotExist) {
		return nil // removed since it was listed (a poststop)
	}
	if errors.Is(err, ErrForeignRecord) {
		res.LeftAlone = append(res.LeftAlone, err)
		return nil
	}
	if err != nil {
		return err
	}
	if !rec.Pending && containerAlive(rec) {
		return nil
	}
	if rec.Enforced && k != nil {
		if err := release(k, stateDir, rec, io.Discard); err != nil {
			return err
		}
		if rec.Pending {
			res.Pending = append(res.Pending, rec.ID)
			return nil
		}
	} else if err := RemoveRecord(stateDir, rec.ID); err != nil {
		return err
	}
	res.RecordsDropped = append(res.RecordsDropped, rec.ID)
	return nil
}

// readListedRecord reads the record of a file recordIDs listed. A file
// greenboost-hook did not write, which no run of gc or status will ever
// read, comes back as an error that names it and wraps ErrForeignRecord;
// failing to read a file (permissions, I/O) is an error of its own.
func readListedRecord(stateDir, id string) (*Record, error) {
	if _, err := recordPath(stateDir, id); err != nil {
		// ".json", "..json": a name the hook never gives.
		file := filepath.Join(RecordDir(stateDir), id+".json")
		return nil, fmt.Errorf("%s: %w (%w); remove it by hand", file, ErrForeignRecord, err)
	}
	rec, err := ReadRecord(stateDir, id)
	var readErr *fs.PathError
	if err == nil || errors.Is(err, ErrForeignRecord) || errors.As(err, &readErr) {
		return rec, err
	}
	// Content that does not parse as a record (garbage, an empty file):
	// the hook writes records atomically, so this is no write in progress.
	// ReadRecord's error names the file.
	return nil, fmt.Errorf("%w: %w; remove it by hand", err, ErrForeignRecord)
}

// CollectBriefly is the bounded gc of each prestart hook and of the
// containerd shim on delete: it skips when another process holds the state
// lock. k is the module, or nil to open it here. A module that is loaded but
// cannot be opened skips the run: its budgets wait for a gc that can
// release them (without the module, budgets went with it).
func CollectBriefly(cfg *config.Config, k kmod.Kernel) {
	if k == nil {
		dev, err := kmod.OpenLoaded(cfg.Device.HostPath)
		if err != nil {
			return
		}
		if dev != nil {
			defer dev.Close()
			k = dev
		}
	}
	Collect(cfg, k, time.Now().Add(prestartGCBudget), false) //nolint:errcheck // best effort
}

// prestartGCInterval is how often at most prestart hooks collect: a run
// reads every record (about 40 µs a running container here), which a start
// on a busy host should not pay each time. The containerd shim's delete
// collects each time, and greenboost-gc.timer every minute.
const prestartGCInterval = 10 * time.Second

// gcStampName is the file in the state dir made anew by each prestart
// collection: its mtime says when the last one began.
const gcStampName = "last-gc"

// collectIfDue is the prestart hook's gc: CollectBriefly, unless a prestart
// began one within prestartGCInterval.
func collectIfDue(cfg *config.Config, k kmod.Kernel) {
	stamp := filepath.Join(cfg.Hook.StateDir, gcStampName)
	if fi, err := os.Lstat(stamp); err == nil {
		if age := time.Since(fi.ModTime()); age >= 0 && age < prestartGCInterval {
			return
		}
	}
	// Stamped first, so that the prestarts of a burst of starts skip; a
	// racing one's create fails, which is harmless. Where the stamp cannot
	// be made, every prestart collects, as before it existed.
	_ = os.Remove(stamp)
	if err := os.MkdirAll(cfg.Hook.StateDir, 0o755); err == nil {
		if f, err := os.OpenFile(stamp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644); err == nil {
			f.Close()
		}
	}
	CollectBriefly(cfg, k)
}

// lockForRecord takes the state lock for gc: waiting until deadline, or
// only if it is free now.
func lockForRecord(stateDir string, wait bool, deadline time.Time) (func(), error) {
	if !wait {
		return lockState(stateDir, false)
	}
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	return lockStateUntil(ctx, stateDir)
}

// containerAlive reports whether the record's container still exists: its
// cgroup directory is there with the same inode and processes in it or
// below (runc removes it on delete; one it failed to remove is left empty).
func containerAlive(rec *Record) bool {
	if rec.Cgroup.Path == "" {
		return processAlive(rec.Pid)
	}
	id, err := kmod.CgroupID(rec.Cgroup.Path)
	return err == nil && id == rec.Cgroup.ID && populated(rec.Cgroup.Path)
}

// processAlive says whether process pid exists and has not exited: a
// container's killed init stays a zombie until its parent reaps it, which
// may be after poststop.
func processAlive(pid int) bool {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// "PID (COMM) STATE …", where COMM may hold spaces and parentheses.
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 || i+2 >= len(stat) {
		return true // unreadable: nothing says it exited
	}
	state := stat[i+2]
	return state != 'Z' && state != 'X'
}

// populated says whether a process lives in the cgroup at dir or below it:
// cgroup v2's cgroup.events says so; on v1 a cgroup.procs of the subtree
// names one. A directory that is neither counts as populated: nothing says
// otherwise.
func populated(dir string) bool {
	if events, err := os.ReadFile(filepath.Join(dir, "cgroup.events")); err == nil {
		return bytes.Contains(events, []byte("populated 1"))
	}
	isCgroup, found := false, false
	filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error { //nolint:errcheck // unreadable parts count as empty
		if err != nil || d.Name() != "cgroup.procs" {
			return nil
		}
		isCgroup = true
		if procs, err := os.ReadFile(path); err == nil && len(bytes.TrimSpace(procs)) > 0 {
			found = true
			return fs.SkipAll
		}
		return nil
	})
	return found || !isCgroup
}

// GCDeadline is how long `greenboost-ctk gc` may run by default.
const GCDeadline = 30 * time.Second
