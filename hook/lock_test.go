package hook

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// The lock file is the owner's alone: a lock others can open is one any
// local user can hold, hanging every container start and stop.
func TestLockFileMode(t *testing.T) {
	dir := t.TempDir()
	lock := filepath.Join(dir, "lock")
	if err := os.WriteFile(lock, nil, 0o644); err != nil { // made by an older version
		t.Fatal(err)
	}
	unlock, err := lockState(dir, false)
	if err != nil {
		t.Fatal(err)
	}
	unlock()
	fi, err := os.Stat(lock)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("lock mode %v, want 0600", fi.Mode().Perm())
	}

	linked := t.TempDir()
	target := filepath.Join(t.TempDir(), "elsewhere")
	if err := os.Symlink(target, filepath.Join(linked, "lock")); err != nil {
		t.Fatal(err)
	}
	if unlock, err := lockState(linked, false); err == nil {
		unlock()
		t.Fatal("a symlinked lock file was followed")
	}
	if _, err := os.Stat(target); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the symlink's target was created: %v", err)
	}
}

// A waiting lockState gives up after stateLockWait instead of hanging.
func TestLockStateWaitIsBounded(t *testing.T) {
	dir := t.TempDir()
	unlock, err := lockState(dir, false)
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	old := stateLockWait
	stateLockWait = 200 * time.Millisecond
	defer func() { stateLockWait = old }()
	start := time.Now()
	if unlock2, err := lockState(dir, true); !errors.Is(err, ErrLockTimeout) {
		if err == nil {
			unlock2()
		}
		t.Fatalf("lockState with the lock held: %v, want ErrLockTimeout", err)
	}
	if took := time.Since(start); took < stateLockWait || took > stateLockWait+2*time.Second {
		t.Errorf("gave up after %v, bound %v", took, stateLockWait)
	}
}
