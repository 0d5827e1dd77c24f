package lowlevel

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
)

// Find returns the first candidate that resolves to an executable
// other than this wrapper: an absolute path, or a name looked up in
// searchDirs. A name is looked up past this wrapper, so that the wrapper
// installed as "runc" ahead of the real one on PATH finds that one.
// configPath is the config file that named the candidates.
func Find(candidates []string, configPath string) (string, error) {
	self, _ := os.Stat("/proc/self/exe")
	dirs := searchDirs(os.Getenv("PATH"))
	for _, c := range candidates {
		if path, err := lookPathPast(c, dirs, self); err == nil {
			return path, nil
		}
	}
	return "", fmt.Errorf("no low-level runtime found (tried %v in %s, passing over this wrapper): install runc or crun, or set [runtime] runtimes in %s", candidates, strings.Join(dirs, ":"), configPath)
}

// standardDirs are searched after PATH: engines do not always give the
// runtime one (podman runs `delete` with an empty environment), and a PATH
// may leave out the sbin directories where runc lives.
var standardDirs = []string{"/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"}

// searchDirs returns the absolute directories of path (a relative one would
// depend on the engine's working directory), then the standard directories
// it does not name.
func searchDirs(path string) []string {
	var dirs []string
	for _, dir := range append(filepath.SplitList(path), standardDirs...) {
		if filepath.IsAbs(dir) && !slices.Contains(dirs, dir) {
			dirs = append(dirs, dir)
		}
	}
	return dirs
}

// lookPathPast finds the executable file name in dirs, or name itself where
// it has a slash, skipping the file self: an exec of ourselves would loop.
// One stat per candidate: this runs on every verb.
func lookPathPast(name string, dirs []string, self os.FileInfo) (string, error) {
	var paths []string
	if strings.Contains(name, "/") {
		paths = []string{name}
	} else {
		for _, dir := range dirs {
			paths = append(paths, filepath.Join(dir, name))
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

// Exec replaces this process with the low-level runtime, passing the
// original arguments untouched. Its argv[0] is its name, as engines call it,
// which it puts in its messages ("runc: ...").
func Exec(path string, argv []string) error {
	args := append([]string{filepath.Base(path)}, argv[1:]...)
	err := syscall.Exec(path, args, os.Environ())
	return fmt.Errorf("exec %s: %w", path, err)
}
