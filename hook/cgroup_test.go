package hook

import (
	"fmt"
	"strings"
	"testing"

	"github.com/greenboost/greenboost-container-toolkit/kmod"
)

const (
	mountinfoV2 = `22 1 0:21 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:9 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
25 1 0:22 / /proc rw,nosuid,nodev,noexec,relatime shared:12 - proc proc rw
`
	mountinfoHybrid = `30 25 0:26 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:4 - tmpfs tmpfs ro,mode=755
31 30 0:27 / /sys/fs/cgroup/unified rw,nosuid,nodev,noexec,relatime shared:5 - cgroup2 cgroup2 rw,nsdelegate
33 30 0:29 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime shared:8 - cgroup cgroup rw,memory
34 30 0:30 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid,nodev,noexec,relatime shared:9 - cgroup cgroup rw,cpu,cpuacct
`
	// A v1 host where the memory hierarchy is mounted from a sub-root, as in
	// a container that bind-mounts its own part of the tree.
	mountinfoV1SubRoot = `40 30 0:29 /outer /sys/fs/cgroup/memory rw,nosuid - cgroup cgroup rw,memory
41 30 0:31 / /sys/fs/cgroup/pids rw,nosuid - cgroup cgroup rw,pids
`
	mountinfoEscaped = `50 1 0:21 / /mnt/cgroup\040v2 rw - cgroup2 cgroup2 rw
`
	// A mount whose source is empty: two spaces after the type.
	mountinfoEmptySource = `60 30 0:29 / /sys/fs/cgroup/memory rw - cgroup  rw,memory
`
)

func TestLocateCgroup(t *testing.T) {
	tests := []struct {
		name       string
		procCgroup string
		mountinfo  string
		hierarchy  uint32
		wantHier   uint32
		wantDir    string
	}{
		{"v2 cgroupfs driver", "0::/default/abc123\n", mountinfoV2, HierarchyAuto, kmod.HierarchyV2, "/sys/fs/cgroup/default/abc123"},
		{"v2 systemd driver", "0::/system.slice/docker-abc123.scope\n", mountinfoV2, HierarchyAuto, kmod.HierarchyV2, "/sys/fs/cgroup/system.slice/docker-abc123.scope"},
		{"hybrid picks v1 memory",
			"12:pids:/docker/abc\n4:memory:/docker/abc\n3:cpu,cpuacct:/docker/abc\n1:name=systemd:/docker/abc\n0::/docker/abc\n",
			mountinfoHybrid, HierarchyAuto, kmod.HierarchyV1Memory, "/sys/fs/cgroup/memory/docker/abc"},
		{"hybrid with the module on v2", "4:memory:/docker/abc\n0::/docker/abc\n", mountinfoHybrid, kmod.HierarchyV2, kmod.HierarchyV2, "/sys/fs/cgroup/unified/docker/abc"},
		{"v1 systemd driver", "7:memory:/system.slice/docker-abc.scope\n2:pids:/system.slice/docker-abc.scope\n", mountinfoHybrid, HierarchyAuto, kmod.HierarchyV1Memory,
			"/sys/fs/cgroup/memory/system.slice/docker-abc.scope"},
		{"v1 sub-root mount", "4:memory:/outer/inner/c1\n", mountinfoV1SubRoot, HierarchyAuto, kmod.HierarchyV1Memory, "/sys/fs/cgroup/memory/inner/c1"},
		{"escaped mount point", "0::/a\n", mountinfoEscaped, HierarchyAuto, kmod.HierarchyV2, "/mnt/cgroup v2/a"},
		{"empty mount source", "4:memory:/a\n", mountinfoEmptySource, HierarchyAuto, kmod.HierarchyV1Memory, "/sys/fs/cgroup/memory/a"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hier, dir, err := locateCgroup([]byte(tt.procCgroup), strings.NewReader(tt.mountinfo), tt.hierarchy)
			if err != nil {
				t.Fatal(err)
			}
			if hier != tt.wantHier || dir != tt.wantDir {
				t.Fatalf("got (%d, %s), want (%d, %s)", hier, dir, tt.wantHier, tt.wantDir)
			}
		})
	}
}

func TestLocateCgroupErrors(t *testing.T) {
	tests := []struct {
		name, procCgroup, mountinfo string
		hierarchy                   uint32
	}{
		{"no v2 entry", "4:memory:/a\n", mountinfoHybrid, kmod.HierarchyV2},
		{"no memory entry", "0::/a\n", mountinfoV2, kmod.HierarchyV1Memory},
		{"no mount", "0::/a\n", mountinfoHybrid[:0], HierarchyAuto},
		{"path outside the mount root", "4:memory:/elsewhere/c1\n", mountinfoV1SubRoot, HierarchyAuto},
		{"empty", "", mountinfoV2, HierarchyAuto},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, dir, err := locateCgroup([]byte(tt.procCgroup), strings.NewReader(tt.mountinfo), tt.hierarchy); err == nil {
				t.Fatalf("no error, got %s", dir)
			}
		})
	}
}

// A Kubernetes node's mountinfo: thousands of overlay and bind mounts, one
// of them with a line longer than bufio.Scanner's default limit.
func nodeMountinfo(mounts int) string {
	var b strings.Builder
	for i := range mounts {
		fmt.Fprintf(&b, "%d 30 0:%d / /var/lib/kubelet/pods/p%d/volumes rw,relatime shared:%d - tmpfs tmpfs rw,size=1024k\n", 100+i, 50+i, i, i)
	}
	b.WriteString("99 30 0:40 / /var/lib/docker/overlay2/x/merged rw - overlay overlay rw,lowerdir=" + strings.Repeat("/var/lib/docker/overlay2/l/ABCDEFGH:", 3000) + "\n")
	b.WriteString(mountinfoHybrid)
	return b.String()
}

func TestLocateCgroupOnABusyNode(t *testing.T) {
	mountinfo := nodeMountinfo(5000)
	hier, dir, err := locateCgroup([]byte("4:memory:/kubepods/pod1/c1\n"), strings.NewReader(mountinfo), HierarchyAuto)
	if err != nil {
		t.Fatal(err)
	}
	if hier != kmod.HierarchyV1Memory || dir != "/sys/fs/cgroup/memory/kubepods/pod1/c1" {
		t.Fatalf("got (%d, %s)", hier, dir)
	}
	// Lines that are not cgroup mounts cost no allocation: the hook runs on
	// every container start.
	allocs := testing.AllocsPerRun(5, func() {
		if _, err := cgroupMounts(strings.NewReader(mountinfo)); err != nil {
			t.Fatal(err)
		}
	})
	if allocs > 40 {
		t.Fatalf("reading a mountinfo of 5,000 mounts allocated %.0f times, want a count independent of the mounts", allocs)
	}
}

func TestCgroupMountsRejectsAnOverlongLine(t *testing.T) {
	line := "1 0 0:1 / /x rw - overlay overlay rw,lowerdir=" + strings.Repeat("a", maxMountinfoLine) + "\n"
	if _, err := cgroupMounts(strings.NewReader(line + mountinfoV2)); err == nil {
		t.Fatal("a line over the limit was skipped silently")
	}
}

// The kernel shows a cgroup outside the reader's cgroup namespace with ".."
// components: joined to the mount point, such a path would name another
// directory (or none), so it is refused, naming the fix.
func TestLocateCgroupOutsideTheNamespace(t *testing.T) {
	for _, tt := range []struct{ name, procCgroup, mountinfo string }{
		{"v2", "0::/../../system.slice/docker-abc.scope\n", mountinfoV2},
		{"v1 memory", "4:memory:/../docker/abc\n0::/../docker/abc\n", mountinfoHybrid},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, dir, err := locateCgroup([]byte(tt.procCgroup), strings.NewReader(tt.mountinfo), HierarchyAuto)
			if err == nil || !strings.Contains(err.Error(), "outside the hook's cgroup namespace") || !strings.Contains(err.Error(), "host's cgroup namespace") {
				t.Fatalf("got %q, %v; want an error saying the cgroup is outside the hook's cgroup namespace", dir, err)
			}
		})
	}
}
