package suite

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/greenboost/greenboost-container-toolkit/kmod"
	"github.com/greenboost/greenboost-container-toolkit/test/vm/guest/hybrid"
)

const (
	cgRoot  = "/sys/fs/cgroup"
	devPath = "/dev/greenboost"
	kiB     = uint64(1) << 10
	miB     = uint64(1) << 20
	page    = 4 * kiB
)

var (
	devMu sync.Mutex
	dev   *kmod.Device // opened by the load case, closed by reload
)

// layout is the cgroup hierarchy a boot's cases make their cgroups in.
type layout struct {
	root      string // its mount
	hierarchy uint32 // as the module names it
	// procLine is how /proc/PID/cgroup names a cgroup path of it.
	procLine func(path string) string
}

var (
	v2Layout = layout{root: cgRoot, hierarchy: kmod.HierarchyV2, procLine: func(p string) string { return "0::" + p }}
	v1Layout = layout{root: hybrid.MemoryRoot, hierarchy: kmod.HierarchyV1Memory, procLine: func(p string) string { return ":memory:" + p }}
	// cgLayout is this boot's: v1Layout in ModeV1, else v2Layout.
	cgLayout = v2Layout
)

// otherHierarchy is the module's name for the hierarchy it does not use.
func otherHierarchy() uint32 {
	if cgLayout.hierarchy == kmod.HierarchyV2 {
		return kmod.HierarchyV1Memory
	}
	return kmod.HierarchyV2
}

// device returns the test process's open /dev/greenboost.
func device(t *T) *kmod.Device {
	devMu.Lock()
	defer devMu.Unlock()
	if dev == nil {
		d, err := kmod.Open(devPath)
		if err != nil {
			t.Fatalf("the module is not usable (did the load case pass?): %v", err)
		}
		dev = d
	}
	return dev
}

func closeDevice() {
	devMu.Lock()
	defer devMu.Unlock()
	if dev != nil {
		dev.Close()
		dev = nil
	}
}

func devFD(t *T) int { return device(t).Fd() }

func uintptrOf(b []byte) uintptr { return uintptr(unsafe.Pointer(&b[0])) }

// cgroup is a test cgroup directory with its module identity.
type cgroup struct {
	dir string
	cg  kmod.Cgroup
}

// mkcg creates <layout root>/<rel> and any missing parents; the case's
// cleanup releases their nodes and removes what it created, deepest first.
func mkcg(t *T, rel string) cgroup {
	parts := strings.Split(rel, "/")
	for i := range parts {
		dir := filepath.Join(cgLayout.root, filepath.Join(parts[:i+1]...))
		if err := os.Mkdir(dir, 0o755); err != nil {
			if os.IsExist(err) {
				continue
			}
			t.Fatalf("mkdir %s: %v", dir, err)
		}
		c := cgOf(t, dir)
		t.Cleanup(func() {
			if _, err := device(t).Release(c.cg, kmod.CgFlagRecursive); err != nil && !errors.Is(err, unix.ENOENT) {
				t.Errorf("cleanup: release %s: %v", shortcg(c), err)
			}
			if err := rmcg(dir); err != nil {
				t.Errorf("cleanup: rmdir %s: %v", dir, err)
			}
		})
	}
	return cgOf(t, filepath.Join(cgLayout.root, rel))
}

// cgOf is the cgroup directory dir of this boot's layout.
func cgOf(t *T, dir string) cgroup {
	id, err := kmod.CgroupID(dir)
	t.Check(err, "cgroup id")
	return cgroup{dir: dir, cg: kmod.Cgroup{Hierarchy: cgLayout.hierarchy, ID: id}}
}

// rmcg removes a cgroup directory, retrying while its last processes are
// still being reaped.
func rmcg(dir string) error {
	var err error
	for i := 0; i < 100; i++ {
		err = unix.Rmdir(dir)
		if err == nil || errors.Is(err, unix.ENOENT) {
			return nil
		}
		if !errors.Is(err, unix.EBUSY) {
			return err
		}
		time.Sleep(10 * time.Millisecond)
	}
	return err
}

func usage(t *T, c cgroup) kmod.CgUsage {
	u, err := device(t).Usage(c.cg, false)
	t.Check(err, "usage of "+c.dir)
	return u
}

// moduleInfo is GET_INFO; a failure fails the case, so that comparisons of
// two readings never compare zero values.
func moduleInfo(t *T) kmod.Info {
	info, err := device(t).Info()
	t.Check(err, "GET_INFO")
	return info
}

// poolInfoV3 is GET_POOL_INFO_V3, checked as moduleInfo.
func poolInfoV3(t *T) kmod.PoolInfoV3 {
	pi, err := device(t).PoolInfoV3()
	t.Check(err, "GET_POOL_INFO_V3")
	return pi
}

// expectUsage checks the T2 usage (and buffer count, if n >= 0) of c,
// polling briefly for asynchronous releases.
func expectUsage(t *T, c cgroup, bytes uint64, n int, what string) kmod.CgUsage {
	var u kmod.CgUsage
	for i := 0; i < 50; i++ {
		u = usage(t, c)
		if u.T2Usage == bytes && (n < 0 || int(u.NrBuffers) == n) {
			return u
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Errorf("%s: %s T2 usage %d (%s), %d buffers; want %d (%s), %d buffers",
		what, shortcg(c), u.T2Usage, human(u.T2Usage), u.NrBuffers, bytes, human(bytes), n)
	return u
}

func shortcg(c cgroup) string { return strings.TrimPrefix(c.dir, cgLayout.root+"/") }

func human(b uint64) string {
	switch {
	case b == kmod.Unlimited:
		return "unlimited"
	case b >= miB && b%miB == 0:
		return fmt.Sprintf("%d MiB", b/miB)
	case b >= kiB && b%kiB == 0:
		return fmt.Sprintf("%d KiB", b/kiB)
	}
	return fmt.Sprintf("%d B", b)
}

func setLimit(t *T, c cgroup, t2, t3 uint64) {
	if _, err := device(t).SetLimit(c.cg, t2, t3); err != nil {
		t.Fatalf("set limit of %s: %v", shortcg(c), err)
	}
}

// wantErrno checks an errno returned by a helper.
func wantErrno(t *T, r response, want unix.Errno, what string) {
	if r.Errno != int(want) {
		if r.Errno == 0 {
			t.Errorf("%s: succeeded, want %v", what, want)
		} else {
			t.Errorf("%s: %s, want %v", what, r.Err, want)
		}
	}
}

// isErrno checks an error returned in the test process.
func isErrno(t *T, err error, want unix.Errno, what string) {
	if !errors.Is(err, want) {
		if err == nil {
			t.Errorf("%s: succeeded, want %v", what, want)
		} else {
			t.Errorf("%s: %v, want %v", what, err, want)
		}
	}
}

func readTrim(path string) (string, error) {
	b, err := os.ReadFile(path)
	return strings.TrimSpace(string(b)), err
}

func fill(b []byte, seed byte) {
	for i := range b {
		b[i] = seed + byte(i*7+i>>12)
	}
}

func firstMismatch(b []byte, seed byte, base int) int {
	for i := range b {
		if b[i] != seed+byte((i+base)*7+(i+base)>>12) {
			return i
		}
	}
	return -1
}
