// Package hook is greenboost-hook: the OCI prestart hook sets a container's
// budgets in the kernel module and records them; poststop releases them.
package hook

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/greenboost/greenboost-container-toolkit/internal/atomicfile"
	"github.com/greenboost/greenboost-container-toolkit/internal/config"
	"github.com/greenboost/greenboost-container-toolkit/internal/ocispec"
	"github.com/greenboost/greenboost-container-toolkit/internal/request"
	"github.com/greenboost/greenboost-container-toolkit/kmod"
)

// Stage is an OCI hook stage the hook handles.
type Stage string

const (
	Prestart Stage = "prestart"
	Poststop Stage = "poststop"
)

// prestartGCBudget bounds the garbage collection a prestart hook does.
const prestartGCBudget = 50 * time.Millisecond

// Hook runs one stage for one container.
type Hook struct {
	cfg     *config.Config
	profile string
	warn    io.Writer
	// Info, when set, takes notes for the toolkit's log file: what a hook
	// that succeeds says goes there, not to stderr.
	Info func(msg string)
	// SpecPath, when set, is the container's spec file, where it is not
	// BUNDLE/config.json (crun's create --config FILE).
	SpecPath string
}

// New returns a hook for the CDI device profile ("" or "ext" for the
// config's defaults); warnings go to warn, one per write.
func New(cfg *config.Config, profile string, warn io.Writer) *Hook {
	return &Hook{cfg: cfg, profile: profile, warn: warn}
}

// Run handles stage with the OCI state read from stdin.
func (h *Hook) Run(stage Stage, stdin io.Reader) error {
	// Checked before reading stdin, which a mistyped stage run by hand
	// would otherwise wait on.
	if stage != Prestart && stage != Poststop {
		return fmt.Errorf("unknown stage %q: expected prestart or poststop", stage)
	}
	state, err := ReadState(stdin)
	if err != nil {
		return err
	}
	if stage == Prestart {
		return h.prestart(state)
	}
	return h.poststop(state)
}

func (h *Hook) prestart(state *specs.State) error {
	req, err := h.request(state)
	if err != nil {
		return err
	}
	if req.Disable {
		// Only the CDI path runs this hook for an opted-out container (the
		// wrapper leaves its spec untouched), and there the engine has given
		// it the device anyway: skipping the budget would let an image's ENV
		// lift the caps.
		h.info(fmt.Sprintf("container %s opts out of GreenBoost, but the engine gave it the GreenBoost device (CDI), so its budget applies: to run it without GreenBoost, do not request %s", state.ID, config.CDIKind))
	}
	limits, err := h.limits(req)
	if err != nil {
		return err
	}
	if state.Pid <= 0 {
		return fmt.Errorf("container %s: the OCI state has no pid", state.ID)
	}
	rec := &Record{
		ID:      state.ID,
		Bundle:  state.Bundle,
		Pid:     state.Pid,
		Limits:  limits,
		Profile: h.profile,
		Time:    time.Now().UTC(),
	}
	dev, q, kernelErr := openKernel(h.cfg)
	if kernelErr == nil {
		defer dev.Close()
	}
	// Catch exits whose poststop never ran, bounded and now and then so a
	// start stays fast; a busy state lock means another hook is collecting
	// already.
	collectIfDue(h.cfg, dev)
	// The lock makes checking for a namesake, setting the budget and writing
	// the record one step for poststop, the shim and gc.
	unlock, err := lockState(h.cfg.Hook.StateDir, true)
	if err != nil {
		return err
	}
	defer unlock()
	if err := h.replacePrevious(dev, rec); err != nil {
		return err
	}
	enforceErr := kernelErr
	if enforceErr == nil {
		enforceErr = h.enforce(dev, q.Hierarchy, rec)
	}
	if enforceErr != nil {
		if h.cfg.Limits.Enforce {
			return notEnforcedError(h.cfg, state.ID, enforceErr, kernelErr != nil)
		}
		fmt.Fprintf(h.warn, "greenboost-hook: WARNING: budgets of container %s are NOT enforced (ram %s, nvme %s recorded only): %v\n",
			state.ID, config.FormatSize(limits.RAM), config.FormatSize(limits.NVMe), enforceErr)
		// The record's cgroup tells gc whether the container lives; a
		// shared one outlives it, so such a record goes by the pid.
		if rec.Cgroup.Path == "" && !errors.Is(enforceErr, errSharedCgroup) {
			if cg, err := ResolveCgroup(state.Pid, HierarchyAuto); err == nil && ownCgroup(cg, state.Pid) == nil {
				rec.Cgroup = cg
			}
		}
	}
	if err := WriteRecord(h.cfg.Hook.StateDir, rec); err != nil {
		if rec.Enforced {
			// Without a record nothing would ever release this budget.
			dev.Release(kmod.Cgroup{Hierarchy: rec.Cgroup.Hierarchy, ID: rec.Cgroup.ID}, 0) //nolint:errcheck // the write error is the news
		}
		return err
	}
	return nil
}

// replacePrevious deals with an earlier record of rec's id. A running
// container with another bundle (the same id in another containerd
// namespace) keeps it, and this one is refused: that budget would never be
// released. A gone container's budget is released here (dev nil: no module),
// since its record, which gc would release it by, is about to be replaced.
func (h *Hook) replacePrevious(dev kmod.Kernel, rec *Record) error {
	old, err := ReadRecord(h.cfg.Hook.StateDir, rec.ID)
	if err != nil {
		return nil // none, or not ours to judge (gc names it)
	}
	if containerAlive(old) {
		if sameBundle(old.Bundle, rec.Bundle) {
			// The same start of the container (one pid) running our
			// prestart again: the engine was given two of our CDI devices,
			// each with its hooks, and the last would win.
			if old.Pid == rec.Pid && old.Limits != rec.Limits {
				return fmt.Errorf("container %s asks for two GreenBoost devices, %s=%s and %s=%s, whose budgets differ: request one",
					rec.ID, config.CDIKind, deviceName(old.Profile), config.CDIKind, deviceName(rec.Profile))
			}
			return nil
		}
		return fmt.Errorf("container %s: a running container with the same id (bundle %s) holds the GreenBoost record %s: one id can have one budget; use another container id",
			rec.ID, old.Bundle, filepath.Join(RecordDir(h.cfg.Hook.StateDir), rec.ID+".json"))
	}
	if old.Enforced && dev != nil {
		dev.Release(kmod.Cgroup{Hierarchy: old.Cgroup.Hierarchy, ID: old.Cgroup.ID}, 0) //nolint:errcheck // best effort, as gc's
	}
	return nil
}

// deviceName is the CDI device a hook profile stands for.
func deviceName(profile string) string {
	if profile == "" {
		return config.DefaultDevice
	}
	return profile
}

// request reads what the container asks for (opt-out, budgets) from its
// annotations and env.
func (h *Hook) request(state *specs.State) (request.Request, error) {
	path := h.SpecPath
	if path == "" {
		// The hook runs in the bundle, but a missing or relative bundle
		// must not read whatever config.json lies in some directory.
		if !filepath.IsAbs(state.Bundle) {
			return request.Request{}, fmt.Errorf("the OCI state's bundle %q is not an absolute path: the runtime must give the bundle the container was created from", state.Bundle)
		}
		path = ocispec.Path(state.Bundle)
	}
	specAnnotations, env, err := ocispec.ReadAnnotationsAndEnv(path)
	if err != nil {
		return request.Request{}, err
	}
	annotations := state.Annotations
	if len(annotations) == 0 {
		annotations = specAnnotations
	}
	return request.Parse(annotations, env)
}

// limits resolves the budgets: annotations > env > CDI profile > config.
func (h *Hook) limits(req request.Request) (Limits, error) {
	ram, nvme, err := req.Resolve(h.cfg, h.profile)
	if err != nil {
		return Limits{}, err
	}
	return Limits{RAM: ram, NVMe: nvme}, nil
}

func (h *Hook) info(msg string) {
	if h.Info != nil {
		h.Info(msg)
	}
}

// enforce sets rec's limits in the module for the container's cgroup of
// hierarchy and fills rec.Cgroup and rec.Enforced. An error means nothing
// was enforced.
func (h *Hook) enforce(dev kmod.Kernel, hierarchy uint32, rec *Record) error {
	cg, err := ResolveCgroup(rec.Pid, hierarchy)
	if err != nil {
		return err
	}
	if err := ownCgroup(cg, rec.Pid); err != nil {
		return err
	}
	rec.Cgroup = cg
	if _, err := dev.SetLimit(kmod.Cgroup{Hierarchy: cg.Hierarchy, ID: cg.ID}, kernelLimit(rec.Limits.RAM), kernelLimit(rec.Limits.NVMe)); err != nil {
		return fmt.Errorf("setting the budget of cgroup %s: %w", cg.Path, err)
	}
	rec.Enforced = true
	h.warnAbovePool(dev, rec)
	return nil
}

// errSharedCgroup is a container without a cgroup of its own.
var errSharedCgroup = errors.New("a budget needs the container's own cgroup")

// ownCgroup checks that the container's process is alone in its cgroup and
// its subtree, as engines set it up: a budget on a shared cgroup (a
// container started without a cgroup of its own, in the engine's or the
// root, or in a parent of other processes' cgroups) would bind the other
// processes, since charges go up to every ancestor, and its release would
// lift their budget. At prestart the container has made no cgroups of its
// own yet, so a populated child is another's.
func ownCgroup(cg Cgroup, pid int) error {
	data, err := os.ReadFile(filepath.Join(cg.Path, "cgroup.procs"))
	if err != nil {
		return fmt.Errorf("reading the processes of cgroup %s: %w", cg.Path, err)
	}
	for _, f := range strings.Fields(string(data)) {
		if f != strconv.Itoa(pid) {
			return fmt.Errorf("cgroup %s is shared with other processes (pid %s): %w", cg.Path, f, errSharedCgroup)
		}
	}
	children, err := os.ReadDir(cg.Path)
	if err != nil {
		return fmt.Errorf("reading cgroup %s: %w", cg.Path, err)
	}
	for _, c := range children {
		if child := filepath.Join(cg.Path, c.Name()); c.IsDir() && populated(child) {
			return fmt.Errorf("cgroup %s is shared with the processes of its child %s: %w", cg.Path, child, errSharedCgroup)
		}
	}
	return nil
}

// warnAbovePool says when a budget cannot be reached because the module's
// pool is smaller: accepted, but bounded by the pool.
func (h *Hook) warnAbovePool(k kmod.Kernel, rec *Record) {
	info, err := k.Info()
	if err != nil {
		return
	}
	for _, tier := range []struct {
		name       string
		limit, cap uint64
	}{
		{"ram", rec.Limits.RAM, info.MaxPoolMB << 20},
		{"nvme", rec.Limits.NVMe, info.NVMeSwapTotalMB << 20},
	} {
		if tier.cap == 0 && tier.limit != 0 {
			fmt.Fprintf(h.warn, "greenboost-hook: note: container %s: %s budget %s set, but the module has no such pool (see t3_path)\n",
				rec.ID, tier.name, config.FormatSize(tier.limit))
		} else if tier.limit > tier.cap {
			fmt.Fprintf(h.warn, "greenboost-hook: note: container %s: %s budget %s is larger than the module's pool (%s); it is bounded by the pool\n",
				rec.ID, tier.name, config.FormatSize(tier.limit), config.FormatSize(tier.cap))
		}
	}
}

// LoadModule inserts the module where [kmod] load = "auto" (and it is not
// loaded yet); with "never" it does nothing: whether the device is there is
// then the caller's to judge.
func LoadModule(cfg *config.Config) error {
	if cfg.Kmod.Load != "auto" {
		return nil
	}
	return kmod.Ensure(kmod.LoadOptions{Load: cfg.Kmod.Load, Module: cfg.Kmod.Module, Params: cfg.Kmod.Params, DevicePath: cfg.Device.HostPath})
}

// openKernel makes sure the module is there (per [kmod] load), opens it and
// checks that it has the cgroup ABI, which budgets need.
func openKernel(cfg *config.Config) (kmod.Kernel, kmod.CgQuery, error) {
	if err := LoadModule(cfg); err != nil {
		return nil, kmod.CgQuery{}, err
	}
	dev, err := kmod.Open(cfg.Device.HostPath)
	if err != nil {
		return nil, kmod.CgQuery{}, err
	}
	q, err := dev.Query()
	if err != nil {
		dev.Close()
		if LacksCgroupABI(err) {
			err = fmt.Errorf("%s is not a GreenBoost module with the cgroup ABI (an upstream module?): %w", cfg.Device.HostPath, err)
		}
		return nil, q, err
	}
	return dev, q, nil
}

// CheckEnforceable fails as prestart would where budgets cannot be enforced.
// The runtime wrapper asks before create: crun drops a failing hook's stderr.
func CheckEnforceable(cfg *config.Config, id string) error {
	dev, _, err := openKernel(cfg)
	if err != nil {
		return notEnforcedError(cfg, id, err, true)
	}
	return dev.Close()
}

// notEnforcedError refuses a container whose budget could not be set,
// naming the fix for the cause: the module (moduleErr: opening it failed),
// the container's cgroup, or the hook's privileges.
func notEnforcedError(cfg *config.Config, id string, err error, moduleErr bool) error {
	var fix string
	switch {
	case moduleErr:
		fix = "load the GreenBoost module (see `greenboost-ctk status`), "
	case errors.Is(err, errSharedCgroup):
		fix = "give the container a cgroup of its own, or run it without GreenBoost (GREENBOOST_DISABLE=1 through the wrapper; on the CDI path, do not request the device), "
	case errors.Is(err, unix.EPERM):
		fix = "run the engine as the host's root (setting a budget needs CAP_SYS_ADMIN in the host's user namespace), "
	}
	return fmt.Errorf("cannot enforce GreenBoost budgets for container %s: %w; %sor set [limits] enforce = false in %s to run without budgets", id, err, fix, cfg.Path)
}

// kernelLimit maps our "0 = unlimited" to the module's GB_CG_UNLIMITED.
func kernelLimit(b uint64) uint64 {
	if b == 0 {
		return kmod.Unlimited
	}
	return b
}

// poststopLockWait bounds the poststop hook's wait for the state lock: runc
// runs the hook inside the engine's delete, which containerd's CRI gives
// 10 s; a record it leaves, gc releases. A variable for tests.
var poststopLockWait = 5 * time.Second

func (h *Hook) poststop(state *specs.State) error {
	ctx, cancel := context.WithTimeout(context.Background(), poststopLockWait)
	defer cancel()
	return ReleaseContainer(ctx, h.cfg, state.ID, state.Bundle, h.warn)
}

// ReleaseContainer releases the budget of container id in the module and
// drops its record: the poststop hook, and the containerd shim on task
// delete, where runc skipped poststop. It is idempotent. A record made for
// another bundle belongs to a namesake (the same id in another containerd
// namespace) and is left alone; bundle "" skips that check; so is one of a
// container still alive. When pools are
// still held by a process outside the container, the record is kept as
// pending and gc retries. As in gc, without the module (or with one that has
// no cgroup ABI) there is no budget left to release: the record just goes.
//
// ctx bounds the wait for the state lock, which gc or a prestart hook may
// hold (the poststop hook's: poststopLockWait); a ctx that never ends waits
// stateLockWait;
// when the wait ends first the error wraps ErrLockTimeout, nothing is
// changed and gc releases the container later.
func ReleaseContainer(ctx context.Context, cfg *config.Config, id, bundle string, warn io.Writer) error {
	unlock, err := lockStateUntil(ctx, cfg.Hook.StateDir)
	if err != nil {
		return err
	}
	defer unlock()
	rec, err := ReadRecord(cfg.Hook.StateDir, id)
	if errors.Is(err, fs.ErrNotExist) {
		return nil // released already (by the shim or gc) or never started
	}
	if err != nil {
		return err
	}
	if bundle != "" && rec.Bundle != "" && !sameBundle(rec.Bundle, bundle) {
		return nil
	}
	// runc and crun remove the container's cgroup before its poststop
	// hooks run, and the shim releases after the runtime's delete: a
	// record whose container is alive belongs to a newer container of the
	// same id and bundle (docker restart), whose prestart came first.
	if containerAlive(rec) {
		return nil
	}
	if !rec.Enforced {
		return RemoveRecord(cfg.Hook.StateDir, id)
	}
	// A module that is loaded but cannot be opened still holds the budget:
	// the record stays for gc.
	dev, err := kmod.OpenLoaded(cfg.Device.HostPath)
	if err != nil {
		return fmt.Errorf("releasing the budget of container %s: %w", id, err)
	}
	if dev != nil {
		defer dev.Close()
	}
	if dev == nil || !hasCgroupABI(dev) {
		// The budget went with the module that held it (unloaded, or
		// replaced by one without budgets).
		fmt.Fprintf(warn, "greenboost: container %s: no GreenBoost module with the cgroup ABI is loaded (device %s), so its budget went with the module; record dropped\n",
			id, cfg.Device.HostPath)
		return RemoveRecord(cfg.Hook.StateDir, id)
	}
	return release(dev, cfg.Hook.StateDir, rec, warn)
}

// sameBundle says whether two bundle paths name one directory. runc records
// the bundle as its working directory, symlinks resolved, where containerd
// names it as configured (/var/run/containerd/... with /var/run -> /run).
func sameBundle(a, b string) bool {
	return atomicfile.ResolvePath(a) == atomicfile.ResolvePath(b)
}

// release does CG_RELEASE for rec and removes the record, or keeps it as
// pending while buffers are live. The caller holds the state lock.
func release(k kmod.Kernel, stateDir string, rec *Record, warn io.Writer) error {
	res, err := k.Release(kmod.Cgroup{Hierarchy: rec.Cgroup.Hierarchy, ID: rec.Cgroup.ID}, 0)
	if err != nil && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("releasing the budget of container %s: %w", rec.ID, err)
	}
	if err == nil && (res.T2Live > 0 || res.T3Live > 0) {
		if !rec.Pending {
			fmt.Fprintf(warn, "greenboost: container %s is gone but %d buffer(s) (%d bytes in RAM, %d on NVMe) are still held by another process; kept as pending for `greenboost-ctk gc`\n",
				rec.ID, res.NrLiveBuffers, res.T2Live, res.T3Live)
		}
		rec.Pending = true
		return WriteRecord(stateDir, rec)
	}
	return RemoveRecord(stateDir, rec.ID)
}
