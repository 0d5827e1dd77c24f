package hook

import (
	"context"
	"errors"
	"fmt"
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

// lockState takes the state dir's flock, which guards every
// read-modify-write of records (poststop, the shim's delete, gc).
func lockState(stateDir string, wait bool) (func(), error) {
	f, err := openLock(stateDir)
	if err != nil {
		return nil, err
	}
	how := unix.LOCK_EX
	if !wait {
		how |= unix.LOCK_NB
	}
	if err := unix.Flock(int(f.Fd()), how); err != nil {
		f.Close()
		if err == unix.EWOULDBLOCK {
			return nil, errLocked
		}
		return nil, fmt.Errorf("locking the state dir: %w", err)
	}
	return func() { f.Close() }, nil
}

// lockStateUntil takes the state dir's flock as lockState does, but waits
// for it only until ctx ends: it tries LOCK_NB every lockPollInterval. When
// ctx ends first the error wraps ErrLockTimeout and ctx's error.
func lockStateUntil(ctx context.Context, stateDir string) (func(), error) {
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
			return nil, fmt.Errorf("%w %s: %w", ErrLockTimeout, stateDir, ctx.Err())
		case <-tick.C:
		}
	}
}

func openLock(stateDir string) (*os.File, error) {
	if err := os.MkdirAll(stateDir, 0o755); err != nil {
		return nil, fmt.Errorf("creating the state dir: %w", err)
	}
	f, err := os.OpenFile(filepath.Join(stateDir, "lock"), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("opening the state lock: %w", err)
	}
	return f, nil
}
