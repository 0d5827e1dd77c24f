// Package atomicfile writes files so that readers see the old content or the
// new, never a truncated mix: a temp file in the same directory, fsync, rename.
package atomicfile

import (
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// Write replaces path with data, created with mode perm; a file it replaces
// keeps its owner.
func Write(path string, data []byte, perm os.FileMode) error {
	dir, name, err := OpenDir(path)
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	defer dir.Close()
	return WriteIn(dir, name, data, perm)
}

// LockDir takes an exclusive flock on directory dir, made if missing, until
// unlock is called: read-modify-write updates of a file in it then run one
// at a time, so none loses another's change. The lock is on the directory
// because Write replaces the file itself.
func LockDir(dir string) (unlock func(), err error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	f, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("locking %s: %w", dir, err)
	}
	return func() { f.Close() }, nil
}

// OpenDir opens the directory of the file path names, for reads and writes
// relative to it (WriteIn), and returns the file's name in it. A path ending
// in a separator names no file and is refused.
func OpenDir(path string) (*os.Root, string, error) {
	dirPath, name := filepath.Split(path)
	if name == "" {
		return nil, "", errors.New("the path names a directory, not a file")
	}
	if dirPath == "" {
		dirPath = "."
	}
	dir, err := os.OpenRoot(dirPath)
	if err != nil {
		return nil, "", err
	}
	return dir, name, nil
}

// WriteIn replaces the file name of directory dir as Write does. Everything
// happens relative to dir, opened once: the write lands in that directory
// even if its path is renamed or swapped for a symlink meanwhile.
func WriteIn(dir *os.Root, name string, data []byte, perm os.FileMode) error {
	path := filepath.Join(dir.Name(), name)
	tmp, tmpName, err := createTemp(dir, name)
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	renamed := false
	defer func() {
		if !renamed {
			dir.Remove(tmpName)
		}
	}()
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := tmp.Chmod(perm); err != nil {
		tmp.Close()
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := keepOwner(tmp, dir, name); err != nil {
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
	if err := dir.Rename(tmpName, name); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	renamed = true
	return nil
}

// createTemp makes a new file in dir named after name, as os.CreateTemp
// does in a directory given by path.
func createTemp(dir *os.Root, name string) (*os.File, string, error) {
	for range 100 {
		tmpName := strings.Replace(tempPattern(name), "*", strconv.FormatUint(uint64(rand.Uint32()), 10), 1)
		f, err := dir.OpenFile(tmpName, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		return f, tmpName, err
	}
	return nil, "", fmt.Errorf("no free temp file name in %s", dir.Name())
}

// tempPattern names the temp file after the target, unless that name would
// pass NAME_MAX (255 bytes) where the target's own name does not.
func tempPattern(base string) string {
	const nameMax, suffix = 255, len(".tmp-") + 10 // the * becomes up to 10 digits
	if 1+len(base)+suffix > nameMax {
		return ".tmp-*"
	}
	return "." + base + ".tmp-*"
}

// keepOwner gives tmp the owner of the file name in dir, where there is one
// owned by someone else (a bundle of another user, written by root). A name
// that dir cannot stat (a link out of it) keeps no owner: callers that write
// through links resolve them first (FollowLinks).
func keepOwner(tmp *os.File, dir *os.Root, name string) error {
	fi, err := dir.Stat(name)
	if err != nil {
		return nil
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok || (int(st.Uid) == os.Geteuid() && int(st.Gid) == os.Getegid()) {
		return nil
	}
	err = tmp.Chown(int(st.Uid), int(st.Gid))
	if errors.Is(err, syscall.EPERM) || errors.Is(err, syscall.EINVAL) {
		// Not ours to give (not root, NFS root squash, an unmapped id):
		// the file is written as it always was, owned by the writer.
		return nil
	}
	return err
}

// FollowLinks returns the file path's chain of symlinks ends at, which
// need not exist, for a write to replace that file and keep the links. A relative target is resolved as the kernel does, against
// the directory the link really is in (that directory may be reached through
// a link itself, /etc/docker -> /srv/conf/docker), not against the path's
// spelling.
func FollowLinks(path string) (string, error) {
	followed := false
	for range 40 { // as the kernel's limit
		fi, err := os.Lstat(path)
		if err != nil || fi.Mode()&fs.ModeSymlink == 0 {
			if followed {
				// Cleaned only now, with every link resolved: a ".." of a
				// target steps out of the real directory.
				return ResolvePath(path), nil
			}
			return path, nil
		}
		dest, err := os.Readlink(path)
		if err != nil {
			return "", err
		}
		if !filepath.IsAbs(dest) {
			dir, _ := splitLast(path)
			dest = ResolvePath(dir) + string(filepath.Separator) + dest
		}
		path, followed = dest, true
	}
	return "", fmt.Errorf("%s: too many levels of symbolic links", path)
}

// ResolvePath returns path with the symlinks in its existing part resolved
// and the part that does not exist yet appended, cleaned.
func ResolvePath(path string) string {
	if real, err := filepath.EvalSymlinks(path); err == nil {
		return real
	}
	dir, base := splitLast(path)
	if dir == path {
		return filepath.Clean(path)
	}
	return filepath.Join(ResolvePath(dir), base)
}

// splitLast splits path at its last separator without cleaning it (as
// filepath.Split and Dir do), so that a ".." after a link is left to
// EvalSymlinks, which walks it as the kernel does.
func splitLast(path string) (dir, base string) {
	i := strings.LastIndexByte(path, filepath.Separator)
	switch {
	case i < 0:
		return ".", path
	case i == 0:
		return string(filepath.Separator), path[1:]
	}
	return path[:i], path[i+1:]
}
