// Package hybrid lays a VM guest's cgroups out like a hybrid host (Debian 12
// booted with systemd.unified_cgroup_hierarchy=0): the memory controller on
// a cgroup v1 hierarchy, cgroup2 at /sys/fs/cgroup/unified. Both guest
// programs (the module suite and the integration run) use it; the memory
// controller cannot move between hierarchies once it has cgroups, so it is
// done at the start of a boot of its own.
package hybrid

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// MemoryRoot is the v1 memory hierarchy's mount in the hybrid layout.
const MemoryRoot = "/sys/fs/cgroup/memory"

// controllers are the v1 hierarchies, each mounted at /sys/fs/cgroup/<name>;
// "systemd" is the named hierarchy name=systemd.
var controllers = []string{"cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "blkio", "pids", "hugetlb", "systemd"}

// Mount turns a guest whose init mounted cgroup2 at /sys/fs/cgroup (with no
// cgroups made yet) into a hybrid host: a tmpfs at /sys/fs/cgroup, the v1
// hierarchies under it and cgroup2 at /sys/fs/cgroup/unified, where runc's
// cgroupfs driver in hybrid mode also puts its containers.
func Mount() error {
	const top = "/sys/fs/cgroup"
	const flags = unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC
	var st unix.Statfs_t
	if err := unix.Statfs(top, &st); err == nil && st.Type == unix.CGROUP2_SUPER_MAGIC {
		if err := unix.Unmount(top, 0); err != nil {
			return fmt.Errorf("umount the cgroup2 mount at %s: %w", top, err)
		}
	}
	if err := unix.Mount("tmpfs", top, "tmpfs", flags, "mode=755"); err != nil {
		return fmt.Errorf("mount tmpfs at %s: %w", top, err)
	}
	for _, name := range controllers {
		dir := filepath.Join(top, name)
		if err := os.Mkdir(dir, 0o755); err != nil {
			return err
		}
		opts := name
		if name == "systemd" {
			opts = "none,name=systemd"
		}
		if err := unix.Mount("cgroup", dir, "cgroup", flags, opts); err != nil {
			return fmt.Errorf("mount cgroup v1 %s at %s: %w", opts, dir, err)
		}
	}
	unified := filepath.Join(top, "unified")
	if err := os.Mkdir(unified, 0o755); err != nil {
		return err
	}
	if err := unix.Mount("cgroup2", unified, "cgroup2", flags, ""); err != nil {
		return fmt.Errorf("mount cgroup2 at %s: %w", unified, err)
	}
	// the memory controller must now be on v1
	b, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return err
	}
	if !strings.Contains(string(b), ":memory:/") {
		return fmt.Errorf("no v1 memory line in /proc/self/cgroup after mounting:\n%s", b)
	}
	return nil
}
