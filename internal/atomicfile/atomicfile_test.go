package atomicfile

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func TestWriteReplacesWithModeAndNoLeftovers(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "spec.yaml")
	if err := os.WriteFile(path, []byte("old content that is longer"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := Write(path, []byte("new"), 0o644); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(path)
	fi, _ := os.Stat(path)
	if string(data) != "new" || fi.Mode().Perm() != 0o644 {
		t.Fatalf("got %q mode %v", data, fi.Mode().Perm())
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Fatalf("temp files left: %v", entries)
	}
}

// A path ending in a separator names a directory: nothing is written
// inside it under its own name.
func TestWriteRefusesADirectoryPath(t *testing.T) {
	dir := t.TempDir()
	sub := filepath.Join(dir, "out.yaml")
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := Write(sub+"/", []byte("new"), 0o644); err == nil || !strings.Contains(err.Error(), "names a directory") {
		t.Fatalf("error = %v, want one saying the path names a directory", err)
	}
	if entries, _ := os.ReadDir(sub); len(entries) != 0 {
		t.Fatalf("written into the directory: %v", entries)
	}
}

// A container id near runc's limit makes a record name of 250 bytes, which
// fits NAME_MAX, but the temp file must not carry it whole.
func TestWriteLongName(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, strings.Repeat("c", 245)+".json")
	if err := Write(path, []byte("{}"), 0o644); err != nil {
		t.Fatal(err)
	}
	if data, err := os.ReadFile(path); err != nil || string(data) != "{}" {
		t.Fatalf("got %q, %v", data, err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Fatalf("temp files left: %v", entries)
	}
}

func TestWriteKeepsOwner(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("giving a file to another user needs root: run the tests as root, as `make test` does")
	}
	path := filepath.Join(t.TempDir(), "config.json")
	if err := os.WriteFile(path, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(path, 1000, 1001); err != nil {
		t.Fatal(err)
	}
	if err := Write(path, []byte("new"), 0o644); err != nil {
		t.Fatal(err)
	}
	fi, _ := os.Stat(path)
	if st := fi.Sys().(*syscall.Stat_t); st.Uid != 1000 || st.Gid != 1001 {
		t.Fatalf("owner %d:%d after the write, want 1000:1001", st.Uid, st.Gid)
	}
}

func TestWriteFailureKeepsOldFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "f")
	os.WriteFile(path, []byte("keep"), 0o644)
	// A directory at the target makes the rename fail after the temp file
	// was written: the original must survive untouched elsewhere.
	target := filepath.Join(dir, "sub")
	os.Mkdir(target, 0o755)
	os.WriteFile(filepath.Join(target, "x"), nil, 0o644)
	if err := Write(target, []byte("new"), 0o644); err == nil {
		t.Fatal("rename over a non-empty directory succeeded")
	}
	if data, _ := os.ReadFile(path); string(data) != "keep" {
		t.Fatal("unrelated file changed")
	}
	if entries, err := os.ReadDir(target); err != nil || len(entries) != 1 || entries[0].Name() != "x" {
		t.Fatalf("the target directory after a failed write: %v %v", entries, err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 2 {
		t.Fatalf("temp files left after a failure: %v", entries)
	}
	if err := Write(filepath.Join(dir, "missing", "f"), []byte("x"), 0o644); err == nil {
		t.Fatal("write into a missing directory succeeded")
	}
}

// A write that fails part way (a full file system) leaves the file it
// would have replaced as it was, and no temp file.
func TestFullFileSystemKeepsOldFile(t *testing.T) {
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size=64k"); err != nil {
		t.Fatalf("mount a small tmpfs (the tests run as root): %v", err)
	}
	t.Cleanup(func() { syscall.Unmount(dir, syscall.MNT_DETACH) })
	path := filepath.Join(dir, "config.json")
	if err := os.WriteFile(path, []byte("keep"), 0o644); err != nil {
		t.Fatal(err)
	}
	err := Write(path, make([]byte, 1<<20), 0o644)
	if !errors.Is(err, syscall.ENOSPC) || !strings.Contains(err.Error(), path) {
		t.Fatalf("write of 1 MiB into 64 KiB: %v, want ENOSPC naming %s", err, path)
	}
	if data, _ := os.ReadFile(path); string(data) != "keep" {
		t.Fatalf("the file after a failed write: %q", data)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Fatalf("temp files left after a failure: %v", entries)
	}
}

func TestFollowLinks(t *testing.T) {
	root := t.TempDir()
	if real, err := filepath.EvalSymlinks(root); err == nil {
		root = real
	}
	for _, dir := range []string{"a/b", "c"} {
		if err := os.MkdirAll(filepath.Join(root, dir), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for link, target := range map[string]string{
		"l":       "a/b",            // a directory link
		"c/rel":   "../l/x.json",    // relative, through the directory link: a/b/x.json
		"c/up":    "../l/../y.json", // ".." after a link is the link target's parent: a/y.json
		"c/chain": "rel",            // a link to a link
		"c/new":   "../l/new/z.json",
		"c/loop":  "loop",
	} {
		if err := os.Symlink(target, filepath.Join(root, link)); err != nil {
			t.Fatal(err)
		}
	}
	for path, want := range map[string]string{
		"c/rel":     "a/b/x.json",
		"c/up":      "a/y.json",
		"c/chain":   "a/b/x.json",
		"c/new":     "a/b/new/z.json", // a directory to create
		"c/plain":   "c/plain",        // no link: as given
		"l/x.json":  "l/x.json",
		"c/missing": "c/missing",
	} {
		got, err := FollowLinks(filepath.Join(root, path))
		if err != nil || got != filepath.Join(root, want) {
			t.Errorf("FollowLinks(%s) = %s (%v), want %s", path, got, err, want)
		}
	}
	if _, err := FollowLinks(filepath.Join(root, "c/loop")); err == nil || !strings.Contains(err.Error(), "too many levels") {
		t.Errorf("a loop: %v", err)
	}
}
