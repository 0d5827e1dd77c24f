package hook

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"
)

func TestRecordRoundTrip(t *testing.T) {
	dir := t.TempDir()
	r := &Record{ID: "c1", Bundle: "/b", Pid: 42, Cgroup: Cgroup{Hierarchy: 1, ID: 7, Path: "/sys/fs/cgroup/memory/c1"},
		Limits: Limits{RAM: 64 << 20}, Enforced: true, Time: time.Unix(1, 0).UTC()}
	if err := WriteRecord(dir, r); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(dir, "containers", "c1.json"))
	if err != nil || fi.Mode().Perm() != 0o644 {
		t.Fatalf("record file: %v %v", fi, err)
	}
	got, err := ReadRecord(dir, "c1")
	if err != nil || !reflect.DeepEqual(got, r) {
		t.Fatalf("got %+v, %v", got, err)
	}
	if err := RemoveRecord(dir, "c1"); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadRecord(dir, "c1"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("record still there: %v", err)
	}
	if err := RemoveRecord(dir, "c1"); err != nil {
		t.Fatalf("removing twice: %v", err)
	}
}

func TestRecordRejectsPathsAsIDs(t *testing.T) {
	dir := t.TempDir()
	for _, id := range []string{"", ".", "..", "../escape", "a/b", "x\x00y"} {
		if err := WriteRecord(dir, &Record{ID: id}); err == nil {
			t.Errorf("id %q accepted", id)
		}
	}
}
