package hook

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/greenboost/greenboost-container-toolkit/kmod"
)

// Cgroup is a container's cgroup as the module knows it.
type Cgroup struct {
	Hierarchy uint32 `json:"hierarchy"` // kmod.HierarchyV2 or kmod.HierarchyV1Memory
	ID        uint64 `json:"id"`        // inode of the cgroup directory
	Path      string `json:"path"`      // the directory on the host
}

// HierarchyAuto picks v1 memory when the memory controller lives on a v1
// hierarchy (v1 and hybrid hosts), cgroup v2 otherwise, as the module's
// cgroup_mode=auto does.
const HierarchyAuto = ^uint32(0)

// ResolveCgroup finds the cgroup of process pid from /proc/PID/cgroup and
// this process's mountinfo; both hooks run in the host's mount namespace.
func ResolveCgroup(pid int, hierarchy uint32) (Cgroup, error) {
	procCgroup, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		return Cgroup{}, fmt.Errorf("reading the container's cgroup: %w", err)
	}
	mountinfo, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return Cgroup{}, fmt.Errorf("reading mountinfo: %w", err)
	}
	hier, dir, err := locateCgroup(procCgroup, mountinfo, hierarchy)
	if err != nil {
		return Cgroup{}, fmt.Errorf("process %d: %w", pid, err)
	}
	id, err := kmod.CgroupID(dir)
	if err != nil {
		return Cgroup{}, fmt.Errorf("process %d: %w", pid, err)
	}
	return Cgroup{Hierarchy: hier, ID: id, Path: dir}, nil
}

// locateCgroup returns the hierarchy and host directory of the cgroup named
// in procCgroup (the content of /proc/PID/cgroup), given mountinfo.
func locateCgroup(procCgroup, mountinfo []byte, hierarchy uint32) (uint32, string, error) {
	var v2Path, memPath string
	haveV2, haveMem := false, false
	for _, line := range strings.Split(strings.TrimSpace(string(procCgroup)), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		if parts[0] == "0" && parts[1] == "" {
			v2Path, haveV2 = parts[2], true
		} else if slices.Contains(strings.Split(parts[1], ","), "memory") {
			memPath, haveMem = parts[2], true
		}
	}
	if hierarchy == HierarchyAuto {
		hierarchy = kmod.HierarchyV2
		if haveMem {
			hierarchy = kmod.HierarchyV1Memory
		}
	}
	mounts := parseMountinfo(mountinfo)
	switch hierarchy {
	case kmod.HierarchyV2:
		if !haveV2 {
			return 0, "", fmt.Errorf("no cgroup v2 entry in /proc/PID/cgroup")
		}
		dir, err := hostDir(mounts, v2Path, func(m mount) bool { return m.fstype == "cgroup2" })
		return hierarchy, dir, err
	case kmod.HierarchyV1Memory:
		if !haveMem {
			return 0, "", fmt.Errorf("no cgroup v1 memory entry in /proc/PID/cgroup")
		}
		dir, err := hostDir(mounts, memPath, func(m mount) bool {
			return m.fstype == "cgroup" && slices.Contains(strings.Split(m.superOptions, ","), "memory")
		})
		return hierarchy, dir, err
	}
	return 0, "", fmt.Errorf("unknown cgroup hierarchy %d", hierarchy)
}

type mount struct {
	root, point, fstype, superOptions string
}

// parseMountinfo reads the fields of proc(5) mountinfo that matter here.
func parseMountinfo(data []byte) []mount {
	var mounts []mount
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		sep := slices.Index(fields, "-")
		if sep < 5 || len(fields) < sep+4 {
			continue
		}
		mounts = append(mounts, mount{
			root:         unescapeMountinfo(fields[3]),
			point:        unescapeMountinfo(fields[4]),
			fstype:       fields[sep+1],
			superOptions: fields[sep+3],
		})
	}
	return mounts
}

// unescapeMountinfo undoes the octal escapes (\040 for space and so on).
func unescapeMountinfo(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			var v byte
			if _, err := fmt.Sscanf(s[i+1:i+4], "%03o", &v); err == nil {
				b.WriteByte(v)
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// hostDir maps a cgroup path to a directory under the mount of that hierarchy
// whose root contains it (the deepest such root wins).
func hostDir(mounts []mount, cgPath string, match func(mount) bool) (string, error) {
	best := -1
	for i, m := range mounts {
		if !match(m) || !underRoot(cgPath, m.root) {
			continue
		}
		if best < 0 || len(m.root) > len(mounts[best].root) {
			best = i
		}
	}
	if best < 0 {
		return "", fmt.Errorf("no mount of the cgroup hierarchy holds %s", cgPath)
	}
	m := mounts[best]
	rel := strings.TrimPrefix(cgPath, m.root)
	return filepath.Join(m.point, rel), nil
}

func underRoot(path, root string) bool {
	if root == "/" {
		return true
	}
	return path == root || strings.HasPrefix(path, root+"/")
}
