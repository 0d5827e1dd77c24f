package shim

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	"github.com/opencontainers/runtime-spec/specs-go"
	cdispec "tags.cncf.io/container-device-interface/specs-go"
)

// userNSDevices gives a container in a user namespace each device node whose
// host path is not its container path as a bind mount of the host path.
// There, runc and crun cannot make device nodes and bind-mount the host's
// node at the container's path instead, which is not ours (a stand-in, or a
// [device] host-path elsewhere).
type userNSDevices struct {
	nodes []*cdispec.DeviceNode
}

var _ Modifier = userNSDevices{}

func (m userNSDevices) Modify(s *specs.Spec) error {
	if !hasUserNS(s) {
		return nil
	}
	for _, n := range m.nodes {
		if n.HostPath == "" || filepath.Clean(n.HostPath) == n.Path {
			continue
		}
		// The device cgroup rule stays: it is what grants access.
		s.Linux.Devices = slices.DeleteFunc(s.Linux.Devices, func(d specs.LinuxDevice) bool { return d.Path == n.Path })
		bind := specs.Mount{Destination: n.Path, Type: "bind", Source: n.HostPath, Options: []string{"bind"}}
		if !slices.ContainsFunc(s.Mounts, func(m specs.Mount) bool { return m.Destination == bind.Destination }) {
			s.Mounts = append(s.Mounts, bind)
		}
	}
	return nil
}

// makeMountPoint creates the mount point dest (an absolute path in the
// container) in the rootfs of a container in a user namespace. runc and crun
// create a missing mount point as the container's root, which cannot write
// a rootfs that belongs to the host's root (runtime-tools'
// linux_uid_mappings); a mount needs only that it exists. Each missing part
// gets the owner of the directory it is made in: the host's root in such a
// rootfs, the container's root in one an engine remapped (as the runtime
// would have made it there). What exists is left alone, and os.Root never
// leaves the rootfs: a symlink that points out of it, or an absolute one,
// stops the work, and the runtime goes on as without it.
func makeMountPoint(s *specs.Spec, bundle, dest string) error {
	if !hasUserNS(s) || s.Root == nil || s.Root.Path == "" {
		return nil // no rootfs to make it in: the runtime says so
	}
	rootfs := s.Root.Path
	if !filepath.IsAbs(rootfs) {
		rootfs = filepath.Join(bundle, rootfs)
	}
	root, err := os.OpenRoot(rootfs)
	if err != nil {
		return fmt.Errorf("opening the rootfs to make the mount point %s: %w", dest, err)
	}
	defer root.Close()

	parent := "."
	parts := strings.Split(strings.Trim(filepath.Clean(dest), "/"), "/")
	for i := range parts {
		path := filepath.Join(parts[:i+1]...)
		if err := makeMountPointPart(root, parent, path, i == len(parts)-1); err != nil {
			return fmt.Errorf("making the mount point %s in %s: %w", dest, rootfs, err)
		}
		parent = path
	}
	return nil
}

// makeMountPointPart makes path in root, a file if last, else a directory,
// owned as its parent directory, unless it exists (or another create made
// it meanwhile).
func makeMountPointPart(root *os.Root, parent, path string, last bool) error {
	if _, err := root.Lstat(path); !errors.Is(err, fs.ErrNotExist) {
		return err // nil: it exists
	}
	fi, err := root.Stat(parent)
	if err != nil {
		return err
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fmt.Errorf("no owner for %s", parent)
	}
	if !last {
		err = root.Mkdir(path, 0o755)
		if err == nil {
			err = root.Lchown(path, int(st.Uid), int(st.Gid))
		}
	} else {
		var f *os.File
		if f, err = root.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644); err == nil {
			err = f.Chown(int(st.Uid), int(st.Gid))
			if cerr := f.Close(); err == nil {
				err = cerr
			}
		}
	}
	if errors.Is(err, fs.ErrExist) {
		return nil
	}
	return err
}

// hasUserNS reports whether the container runs in a user namespace of its
// own or one it joins.
func hasUserNS(s *specs.Spec) bool {
	return s.Linux != nil && slices.ContainsFunc(s.Linux.Namespaces, func(ns specs.LinuxNamespace) bool {
		return ns.Type == specs.UserNamespace
	})
}
