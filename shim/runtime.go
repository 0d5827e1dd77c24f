package shim

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
)

// findRuntime returns the first candidate that resolves to an executable
// other than this wrapper: an absolute path, or a name looked up on PATH.
func findRuntime(candidates []string) (string, error) {
	self, _ := os.Executable()
	self, _ = filepath.EvalSymlinks(self)
	for _, c := range candidates {
		path, err := exec.LookPath(c)
		if err != nil {
			continue
		}
		if real, err := filepath.EvalSymlinks(path); err == nil && real == self {
			continue // never exec ourselves in a loop
		}
		return path, nil
	}
	return "", fmt.Errorf("no low-level runtime found (tried %v on PATH=%s): install runc or crun, or set [runtime] runtimes", candidates, os.Getenv("PATH"))
}

// execRuntime replaces this process with the low-level runtime, passing the
// original arguments untouched. Its argv[0] is its name, as engines call it,
// which it puts in its messages ("runc: ...").
func execRuntime(path string, argv []string) error {
	args := append([]string{filepath.Base(path)}, argv[1:]...)
	err := syscall.Exec(path, args, os.Environ())
	return fmt.Errorf("exec %s: %w", path, err)
}
