package hook

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"
)

// errLocked says another process holds the state lock (non-blocking tries).
var errLocked = fmt.Errorf("state dir locked by another process")

// ErrLockTimeout says the state lock stayed held by another process (gc, a
// prestart hook) for as long as the caller could wait.
var ErrLockTimeout = errors.New("timed out waiting for the state lock")

// lockPollInterval is how often lockStateUntil tries the lock again.
const lockPollInterval = 10 * time.Millisecond

// stateLockWait bounds a wait for the state lock that has no deadline of
// its own. Each holder keeps the lock for
// milliseconds (tens under load: 20 prestarts at once on 2 cores waited
// 0.5 s at most, 50 waited 4 s); one that keeps it for a minute is stuck,
// and a hook that waited for it would hang container starts and stops with
// it. A variable for tests.
var stateLockWait = time.Minute

// lockState takes the state dir's flock, which guards every
// read-modify-write of records (prestart, poststop, the shim's delete, gc):
// with wait, for up to stateLockWait, else only if it is free now.
func lockState(stateDir string, wait bool) (func(), error) {
	if wait {
		return lockStateUntil(context.Background(), stateDir)
	}
	f, err := openLock(stateDir)
	if err != nil {
		return nil, err
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		if err == unix.EWOULDBLOCK {
			return nil, errLocked
		}
		return nil, fmt.Errorf("locking the state dir: %w", err)
	}
	return func() { f.Close() }, nil
}

// lockStateUntil takes the state dir's flock as lockState does, waiting
// until ctx ends (a ctx without a deadline: stateLockWait): it tries LOCK_NB
// every lockPollInterval. When the wait ends first the error wraps
// ErrLockTimeout and ctx's error.
func lockStateUntil(ctx context.Context, stateDir string) (func(), error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, stateLockWait)
		defer cancel()
	}
	f, err := openLock(stateDir)
	if err != nil {
		return nil, err
	}
	tick := time.NewTicker(lockPollInterval)
	defer tick.Stop()
	for {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			return func() { f.Close() }, nil
		}
		if err != unix.EWOULDBLOCK && err != unix.EINTR {
			f.Close()
			return nil, fmt.Errorf("locking the state dir: %w", err)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("%w %s (another process holds it; `fuser -v %s` names it): %w",
				ErrLockTimeout, f.Name(), f.Name(), ctx.Err())
		case <-tick.C:
		}
	}
}

// openLock opens the lock file, which only its owner (root) may open: flock
// needs no more than a read-only descriptor, so a lock others can read is
// one any local user can hold forever. An older lock made 0644 is tightened.
func openLock(stateDir string) (*os.File, error) {
	if err := os.MkdirAll(stateDir, 0o755); err != nil {
		return nil, stateDirError("creating the state dir", err)
	}
	f, err := os.OpenFile(filepath.Join(stateDir, "lock"), os.O_RDWR|os.O_CREATE|unix.O_NOFOLLOW, 0o600)
	if err != nil {
		return nil, stateDirError("opening the state lock", err)
	}
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return nil, fmt.Errorf("restricting the state lock to its owner: %w", err)
	}
	return f, nil
}

// stateDirError wraps a failure to use the state dir; where it is a denied
// permission, the caller is not the host's root: a hook run by a rootless
// engine, or greenboost-ctk run by a user.
func stateDirError(what string, err error) error {
	if errors.Is(err, fs.ErrPermission) {
		return fmt.Errorf("%s: %w (this needs the host's root: rootless engines cannot give containers GreenBoost budgets, which need CAP_SYS_ADMIN in the host's user namespace, so use a rootful engine; run greenboost-ctk as root)", what, err)
	}
	return fmt.Errorf("%s: %w", what, err)
}
