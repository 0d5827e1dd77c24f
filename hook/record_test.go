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

// FuzzReadRecord feeds ReadRecord arbitrary record files, as a crash or a
// person editing /run/greenboost could leave them: it must fail cleanly or
// return a record that writes back and reads to the same value.
func FuzzReadRecord(f *testing.F) {
	f.Add([]byte(`{"id":"c1","bundle":"/b","pid":42,"cgroup":{"hierarchy":1,"id":7,"path":"/sys/fs/cgroup/memory/c1"},"limits":{"ram_bytes":67108864,"nvme_bytes":0},"enforced":true,"time":"2026-11-27T08:00:00Z"}`))
	f.Add([]byte(`{"id":"c1","pending":true,"time":"2026-11-27T08:00:00+01:00"}`))
	f.Add([]byte(`{"id":"c1","limits":{"ram_bytes":-1}}`))
	f.Add([]byte(``))
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		if err := os.MkdirAll(RecordDir(dir), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(RecordDir(dir), "c1.json"), data, 0o644); err != nil {
			t.Fatal(err)
		}
		r, err := ReadRecord(dir, "c1")
		if err != nil {
			return
		}
		r.ID = "c1" // the file's own id may be anything; the round trip is about the rest
		if err := WriteRecord(dir, r); err != nil {
			t.Fatalf("a record that was read cannot be written: %v", err)
		}
		again, err := ReadRecord(dir, "c1")
		if err != nil {
			t.Fatalf("a written record does not read: %v", err)
		}
		if !again.Time.Equal(r.Time) {
			t.Fatalf("time %v became %v", r.Time, again.Time)
		}
		again.Time = r.Time
		if !reflect.DeepEqual(again, r) {
			t.Fatalf("round trip changed the record: %+v -> %+v", r, again)
		}
	})
}
