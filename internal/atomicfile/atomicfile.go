// Package atomicfile writes files so that readers see the old content or the
// new, never a truncated mix: a temp file in the same directory, fsync, rename.
package atomicfile

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// Write replaces path with data, created with mode perm; a file it replaces
// keeps its owner.
func Write(path string, data []byte, perm os.FileMode) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, tempPattern(filepath.Base(path)))
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	defer os.Remove(tmp.Name()) // a no-op after the rename
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := tmp.Chmod(perm); err != nil {
		tmp.Close()
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := keepOwner(tmp, path); err != nil {
		tmp.Close()
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}

// tempPattern names the temp file after the target, unless that name would
// pass NAME_MAX (255 bytes) where the target's own name does not.
func tempPattern(base string) string {
	const nameMax, suffix = 255, len(".tmp-") + 10 // CreateTemp's * is up to 10 digits
	if 1+len(base)+suffix > nameMax {
		return ".tmp-*"
	}
	return "." + base + ".tmp-*"
}

// keepOwner gives tmp the owner of the file at path, where there is one
// owned by someone else (a bundle of another user, written by root).
func keepOwner(tmp *os.File, path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return nil
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok || (int(st.Uid) == os.Geteuid() && int(st.Gid) == os.Getegid()) {
		return nil
	}
	return tmp.Chown(int(st.Uid), int(st.Gid))
}
