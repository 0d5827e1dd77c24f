package hook

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
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
	mountinfo, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return Cgroup{}, fmt.Errorf("reading mountinfo: %w", err)
	}
	defer mountinfo.Close()
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
func locateCgroup(procCgroup []byte, mountinfo io.Reader, hierarchy uint32) (uint32, string, error) {
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
	mounts, err := cgroupMounts(mountinfo)
	if err != nil {
		return 0, "", err
	}
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

// maxMountinfoLine bounds one mountinfo line (an overlay mount with many
// layers can take tens of KiB); a longer one is an error, not a skipped line.
const maxMountinfoLine = 1 << 20

// cgroupMounts reads the cgroup and cgroup2 mounts from proc(5) mountinfo,
// line by line: a Kubernetes node has thousands of mounts, few of them
// cgroups, and a hook must not allocate for the others.
func cgroupMounts(mountinfo io.Reader) ([]mount, error) {
	var mounts []mount
	sc := bufio.NewScanner(mountinfo)
	sc.Buffer(make([]byte, 0, 4096), maxMountinfoLine)
	for sc.Scan() {
		// Fields are separated by one space and hold none (escaped as
		// \040); the optional ones end at a lone "-", followed by the
		// type, the source (which may be empty) and the super options.
		pre, post, ok := bytes.Cut(sc.Bytes(), []byte(" - "))
		if !ok {
			continue
		}
		fstype, post, _ := bytes.Cut(post, []byte(" "))
		if string(fstype) != "cgroup" && string(fstype) != "cgroup2" {
			continue
		}
		_, superOptions, ok := bytes.Cut(post, []byte(" "))
		fields := bytes.Fields(pre)
		if !ok || len(fields) < 5 {
			continue
		}
		mounts = append(mounts, mount{
			root:         unescapeMountinfo(string(fields[3])),
			point:        unescapeMountinfo(string(fields[4])),
			fstype:       string(fstype),
			superOptions: string(superOptions),
		})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading mountinfo: %w", err)
	}
	return mounts, nil
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
	// The kernel shows a cgroup outside the reader's cgroup namespace
	// relative to the namespace's root, with ".." components: joined to a
	// mount point, such a path names another directory.
	if slices.Contains(strings.Split(cgPath, "/"), "..") {
		return "", fmt.Errorf("the container's cgroup %s is outside the hook's cgroup namespace: the hook must run in the host's cgroup namespace (or one that holds the container's cgroup)", cgPath)
	}
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
