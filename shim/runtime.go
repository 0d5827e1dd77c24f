package shim

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
)

// findRuntime returns the first candidate that resolves to an executable
// other than this wrapper: an absolute path, or a name looked up on PATH. A
// name is looked up past this wrapper, so that the wrapper installed as
// "runc" ahead of the real one on PATH finds that one.
func findRuntime(candidates []string) (string, error) {
	self, _ := os.Stat("/proc/self/exe")
	for _, c := range candidates {
		if path, err := lookPathPast(c, self); err == nil {
			return path, nil
		}
	}
	return "", fmt.Errorf("no low-level runtime found (tried %v on PATH=%s, passing over this wrapper): install runc or crun, or set [runtime] runtimes", candidates, os.Getenv("PATH"))
}

// lookPathPast finds the executable file name as exec.LookPath does (never
// in the current directory), skipping the file self: an exec of ourselves
// would loop. One stat per candidate: this runs on every verb.
func lookPathPast(name string, self os.FileInfo) (string, error) {
	var paths []string
	if strings.Contains(name, "/") {
		paths = []string{name}
	} else {
		for _, dir := range filepath.SplitList(os.Getenv("PATH")) {
			if filepath.IsAbs(dir) {
				paths = append(paths, filepath.Join(dir, name))
			}
		}
	}
	for _, p := range paths {
		fi, err := os.Stat(p)
		if err != nil || !fi.Mode().IsRegular() || fi.Mode().Perm()&0o111 == 0 {
			continue
		}
		if self != nil && os.SameFile(fi, self) {
			continue
		}
		return p, nil
	}
	return "", exec.ErrNotFound
}

// execRuntime replaces this process with the low-level runtime, passing the
// original arguments untouched. Its argv[0] is its name, as engines call it,
// which it puts in its messages ("runc: ...").
func execRuntime(path string, argv []string) error {
	args := append([]string{filepath.Base(path)}, argv[1:]...)
	err := syscall.Exec(path, args, os.Environ())
	return fmt.Errorf("exec %s: %w", path, err)
}
