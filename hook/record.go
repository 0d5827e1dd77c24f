package hook

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/greenboost/greenboost-container-toolkit/internal/atomicfile"
)

// Record is what the prestart hook leaves for poststop and gc: runc removes
// the cgroup before poststop runs, so its id must come from here.
type Record struct {
	ID      string `json:"id"`
	Bundle  string `json:"bundle"`
	Pid     int    `json:"pid"`
	Cgroup  Cgroup `json:"cgroup"`
	Limits  Limits `json:"limits"`
	Profile string `json:"profile,omitempty"`
	// Enforced says whether the module holds these limits; false only with
	// [limits] enforce = false where the module could not be used.
	Enforced bool `json:"enforced"`
	// Pending marks a stopped container whose buffers another process still
	// holds: gc releases it once they are gone.
	Pending bool      `json:"pending,omitempty"`
	Time    time.Time `json:"time"`
}

// Limits are budgets in bytes; 0 means unlimited.
type Limits struct {
	RAM  uint64 `json:"ram_bytes"`
	NVMe uint64 `json:"nvme_bytes"`
}

// RecordDir is where records live under the state dir.
func RecordDir(stateDir string) string {
	return filepath.Join(stateDir, "containers")
}

// maxIDLen is the longest id whose record file name, ID.json, fits in the
// 255 bytes a file name may have.
const maxIDLen = 255 - len(".json")

// validID checks that id can name a record file: a file in the record
// dir, never one outside it.
func validID(id string) error {
	if id == "" || id == "." || id == ".." || strings.ContainsAny(id, "/\x00") {
		return fmt.Errorf(`invalid container id %q: expected a non-empty name without / or NUL, not "." or ".."`, id)
	}
	if len(id) > maxIDLen {
		return fmt.Errorf("invalid container id of %d bytes: its record file, ID.json, would pass the 255-byte limit of a file name; use an id of at most %d bytes", len(id), maxIDLen)
	}
	return nil
}

func recordPath(stateDir, id string) (string, error) {
	if err := validID(id); err != nil {
		return "", err
	}
	return filepath.Join(RecordDir(stateDir), id+".json"), nil
}

// WriteRecord stores r atomically.
func WriteRecord(stateDir string, r *Record) error {
	path, err := recordPath(stateDir, r.ID)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("creating the state dir: %w", err)
	}
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("encoding the record of %s: %w", r.ID, err)
	}
	return atomicfile.Write(path, append(data, '\n'), 0o644)
}

// recordIDs lists the ids of the records in the state dir (none when it does
// not exist), passing over temp files (.ID.json.tmp-N).
func recordIDs(stateDir string) ([]string, error) {
	entries, err := os.ReadDir(RecordDir(stateDir))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("listing records: %w", err)
	}
	var ids []string
	for _, e := range entries {
		if id, ok := strings.CutSuffix(e.Name(), ".json"); ok {
			ids = append(ids, id)
		}
	}
	return ids, nil
}

// ErrForeignRecord is a record file whose content names another container.
var ErrForeignRecord = errors.New("not a record greenboost-hook wrote")

// ReadRecord loads the record of container id; fs.ErrNotExist when none,
// ErrForeignRecord for a file that names another container.
func ReadRecord(stateDir, id string) (*Record, error) {
	path, err := recordPath(stateDir, id)
	if err != nil {
		return nil, err
	}
	data, err := readRecordFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading the record of %s: %w", id, err)
	}
	var r Record
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, fmt.Errorf("parsing %s: %w", path, err)
	}
	// Everything done with a record (release, removal) goes by its id: one
	// that names another container must not act on that one's record.
	if r.ID != id {
		return nil, fmt.Errorf("%s names container %q, not %q: %w; remove it by hand", path, r.ID, id, ErrForeignRecord)
	}
	return &r, nil
}

// maxRecordSize bounds what is read of a record file: the hook's are a few
// hundred bytes, and a stray file in the record dir must not stall every
// prestart, gc and status.
const maxRecordSize = 64 << 10

// readRecordFile reads the record file at path, refusing what the hook never
// writes there without blocking on it: a link (to /dev/zero, say), a FIFO
// or device, a file over maxRecordSize.
func readRecordFile(path string) ([]byte, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK, 0)
	if errors.Is(err, unix.ELOOP) {
		return nil, fmt.Errorf("%s is a symbolic link: %w; remove it by hand", path, ErrForeignRecord)
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file: %w; remove it by hand", path, ErrForeignRecord)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxRecordSize+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxRecordSize {
		return nil, fmt.Errorf("%s holds over %d KiB: %w; remove it by hand", path, maxRecordSize>>10, ErrForeignRecord)
	}
	return data, nil
}

// RemoveRecord deletes the record of container id; a missing one is fine.
func RemoveRecord(stateDir, id string) error {
	path, err := recordPath(stateDir, id)
	if err != nil {
		return err
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("removing the record of %s: %w", id, err)
	}
	return nil
}
