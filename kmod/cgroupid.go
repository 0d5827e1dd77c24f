package kmod

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// CgroupID returns the id the module uses for the cgroup whose directory is
// dir (under the cgroup2 mount, or the v1 memory hierarchy): the inode
// number of the directory, which the kernel's cgroup_id() equals.
func CgroupID(dir string) (uint64, error) {
	var st unix.Stat_t
	if err := unix.Stat(dir, &st); err != nil {
		return 0, fmt.Errorf("cgroup id of %s: %w", dir, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return 0, fmt.Errorf("cgroup id of %s: not a directory", dir)
	}
	return st.Ino, nil
}
