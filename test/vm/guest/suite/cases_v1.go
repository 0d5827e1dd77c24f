package suite

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/greenboost/greenboost-container-toolkit/kmod"
	"github.com/greenboost/greenboost-container-toolkit/test/vm/guest/hybrid"
)

// ModeV1 is a separate boot (gb.mode=v1) where the memory controller is on
// a cgroup v1 hierarchy, laid out like a hybrid host: a tmpfs at
// /sys/fs/cgroup with one v1 mount per controller and cgroup2 at
// /sys/fs/cgroup/unified. The module, loaded with cgroup_mode=auto after
// that, accounts in the v1 memory hierarchy (GB_CG_HIER_V1_MEMORY). The
// memory controller cannot move between hierarchies once it has cgroups,
// so this cannot share a boot with ModeTest.
const ModeV1 = "v1"

func init() {
	alwaysRun["v1-hybrid-mount"] = true
	alwaysRun["v1-load"] = true
	register(10, ModeV1, "v1-hybrid-mount", 30*time.Second, testV1Mount)
	register(20, ModeV1, "v1-load", time.Minute, testV1Load)
	// then the cgroup cases (registerBoth), in v1Layout
}

func testV1Mount(t *T) {
	t.Check(hybrid.Mount(), "hybrid cgroup layout")
	b, _ := os.ReadFile("/proc/self/cgroup")
	t.Logf("/proc/self/cgroup:\n%s", strings.TrimSpace(string(b)))
	if _, err := os.Stat(filepath.Join(hybrid.MemoryRoot, "memory.limit_in_bytes")); err != nil {
		t.Errorf("%s is not the v1 memory hierarchy: %v", hybrid.MemoryRoot, err)
	}
	var st unix.Statfs_t
	t.Check(unix.Statfs("/sys/fs/cgroup/unified", &st), "statfs unified")
	if st.Type != unix.CGROUP2_SUPER_MAGIC {
		t.Errorf("/sys/fs/cgroup/unified is not cgroup2 (magic %#x)", st.Type)
	}
	if ctl, _ := readTrim("/sys/fs/cgroup/unified/cgroup.controllers"); strings.Contains(ctl, "memory") {
		t.Errorf("cgroup2 still offers the memory controller (%q)", ctl)
	}
}

// testV1Load: kmod.Ensure loads the module with the default cgroup_mode=auto,
// which picks the v1 memory hierarchy here.
func testV1Load(t *T) {
	if _, err := os.Stat("/sys/module/greenboost"); err == nil {
		t.Fatalf("the module is loaded before the load case")
	}
	t.Check(kmod.Ensure(kmod.LoadOptions{Module: "/greenboost.ko", DevicePath: devPath}), "Ensure(/greenboost.ko)")
	if m := param(t, "cgroup_mode"); m != "auto" {
		t.Errorf("cgroup_mode = %q, want the default auto", m)
	}
	q, err := device(t).Query()
	t.Check(err, "CG_QUERY")
	if q.Hierarchy != kmod.HierarchyV1Memory {
		t.Fatalf("CG_QUERY hierarchy %d with memory on cgroup v1 and cgroup_mode=auto; want %d (v1 memory)", q.Hierarchy, kmod.HierarchyV1Memory)
	}
	buf := make([]byte, 1<<20)
	n, err := unix.Klogctl(unix.SYSLOG_ACTION_READ_ALL, buf)
	t.Check(err, "reading the kernel log")
	if !bytes.Contains(buf[:n], []byte("accounting in cgroup v1 memory")) {
		t.Errorf("dmesg does not say the module accounts in cgroup v1 memory")
	}
}
