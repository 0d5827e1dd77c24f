package hook

import (
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// errLocked says another process holds the state lock (non-blocking tries).
var errLocked = fmt.Errorf("state dir locked by another process")

// lockState takes the state dir's flock, which guards every
// read-modify-write of records (poststop, the shim's delete, gc).
func lockState(stateDir string, wait bool) (func(), error) {
	if err := os.MkdirAll(stateDir, 0o755); err != nil {
		return nil, fmt.Errorf("creating the state dir: %w", err)
	}
	f, err := os.OpenFile(filepath.Join(stateDir, "lock"), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("opening the state lock: %w", err)
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
