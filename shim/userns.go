package shim

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

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

// makeMountPoint creates the library's mount point dest (an absolute path
// in the container) in the rootfs of a container with its own user
// namespace, owned by the host user and group its root maps to: what runc
// and crun would make themselves, had they the right. They create a missing
// mount point as the container's root, which cannot write a rootfs that
// belongs to the host's root (runtime-tools' linux_uid_mappings); engines
// that remap users give the container a rootfs it owns, and there nothing
// changes. Only missing parts are created, and only through os.Root, which
// never leaves the rootfs (a symlink that points out of it stops the work).
// Without a user namespace, or with one joined by path (its mappings are
// not in the spec), it does nothing.
func makeMountPoint(s *specs.Spec, bundle, dest string) error {
	uid, gid, ok := mappedRoot(s)
	if !ok || s.Root == nil || s.Root.Path == "" {
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

	parts := strings.Split(strings.Trim(filepath.Clean(dest), "/"), "/")
	for i := range parts {
		path := filepath.Join(parts[:i+1]...)
		if _, err := root.Lstat(path); err == nil {
			continue
		} else if !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("making the mount point %s in %s: %w", dest, rootfs, err)
		}
		if i < len(parts)-1 {
			err = root.Mkdir(path, 0o755)
		} else {
			var f *os.File
			if f, err = root.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644); err == nil {
				err = f.Close()
			}
		}
		if err == nil {
			err = root.Lchown(path, uid, gid)
		}
		if err != nil {
			return fmt.Errorf("making the mount point %s in %s: %w", dest, rootfs, err)
		}
	}
	return nil
}

// hasUserNS reports whether the container runs in a user namespace of its
// own or one it joins.
func hasUserNS(s *specs.Spec) bool {
	return s.Linux != nil && slices.ContainsFunc(s.Linux.Namespaces, func(ns specs.LinuxNamespace) bool {
		return ns.Type == specs.UserNamespace
	})
}

// mappedRoot returns the host user and group that the container's root is,
// when the container gets a new user namespace whose mappings the spec
// gives.
func mappedRoot(s *specs.Spec) (uid, gid int, ok bool) {
	if !hasUserNS(s) || slices.ContainsFunc(s.Linux.Namespaces, func(ns specs.LinuxNamespace) bool {
		return ns.Type == specs.UserNamespace && ns.Path != ""
	}) {
		return 0, 0, false
	}
	uid, uidOK := hostIDOfRoot(s.Linux.UIDMappings)
	gid, gidOK := hostIDOfRoot(s.Linux.GIDMappings)
	return uid, gid, uidOK && gidOK
}

// hostIDOfRoot returns the host id that container id 0 maps to.
func hostIDOfRoot(mappings []specs.LinuxIDMapping) (int, bool) {
	for _, m := range mappings {
		if m.ContainerID == 0 && m.Size > 0 {
			return int(m.HostID), true
		}
	}
	return 0, false
}
