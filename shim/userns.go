package shim

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
	cdispec "tags.cncf.io/container-device-interface/specs-go"
)

// userNSDevices gives a container in a user namespace a bind mount of each
// device node's host path where that is not its container path. There runc
// and crun cannot make device nodes: they bind the host's node at the
// container's path instead (/dev/greenboost), which is not ours where
// [device] host-path is elsewhere.
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
		// No nodev: that would block the device itself.
		bind := specs.Mount{Destination: n.Path, Type: "bind", Source: n.HostPath, Options: []string{"bind", "nosuid", "noexec"}}
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
// would have made it). What exists is left alone. Paths resolve as the
// runtime resolves them, inside the rootfs (RESOLVE_IN_ROOT: an absolute
// symlink or ".." stays in it).
func makeMountPoint(s *specs.Spec, bundle, dest string) error {
	if !hasUserNS(s) || s.Root == nil || s.Root.Path == "" {
		return nil // no rootfs to make it in: the runtime says so
	}
	rootfs := s.Root.Path
	if !filepath.IsAbs(rootfs) {
		rootfs = filepath.Join(bundle, rootfs)
	}
	root, err := unix.Open(rootfs, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("opening the rootfs %s to make the mount point %s: %w", rootfs, dest, err)
	}
	defer unix.Close(root)

	parts := strings.Split(strings.Trim(filepath.Clean(dest), "/"), "/")
	for i := range parts {
		parent := "/" + filepath.Join(parts[:i]...)
		if err := makeMountPointPart(root, parent, parts[i], i == len(parts)-1); err != nil {
			return fmt.Errorf("making the mount point %s in %s: %w", dest, rootfs, err)
		}
	}
	return nil
}

// makeMountPointPart makes name in the directory parent of root, a file if
// last, else a directory, owned as parent, unless it exists (or another
// create made it meanwhile).
func makeMountPointPart(root int, parent, name string, last bool) error {
	path := filepath.Join(parent, name)
	dir, err := openInRoot(root, parent)
	if err != nil {
		return fmt.Errorf("opening %s: %w", parent, err)
	}
	defer unix.Close(dir)
	var st unix.Stat_t
	if err := unix.Fstat(dir, &st); err != nil {
		return fmt.Errorf("reading the owner of %s: %w", parent, err)
	}
	fd, err := makeEntry(dir, name, last)
	if errors.Is(err, unix.EEXIST) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("making %s: %w", path, err)
	}
	defer unix.Close(fd)
	mode := uint32(0o644)
	if !last {
		mode = 0o755 | st.Mode&unix.S_ISGID // as mkdir under a setgid directory
	}
	// Through the descriptor of what was made, not its name: the umask does
	// not narrow the mode, and nothing put in its place is changed.
	if err := unix.Fchown(fd, int(st.Uid), int(st.Gid)); err != nil {
		return fmt.Errorf("giving %s the owner of %s: %w", path, parent, err)
	}
	if err := unix.Fchmod(fd, mode); err != nil {
		return fmt.Errorf("setting the mode of %s: %w", path, err)
	}
	return nil
}

// openInRoot opens directory path of root as the runtime resolves it: in
// the rootfs, and without crossing into a mount (a bind of a host
// directory). openat2 fails with EAGAIN when a rename or mount elsewhere
// races a ".." lookup; that is tried again, as runc's securejoin does.
func openInRoot(root int, path string) (fd int, err error) {
	how := &unix.OpenHow{
		Flags:   unix.O_PATH | unix.O_DIRECTORY | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS | unix.RESOLVE_NO_XDEV,
	}
	for range 32 {
		if fd, err = unix.Openat2(root, path, how); !errors.Is(err, unix.EAGAIN) {
			break
		}
	}
	return fd, err
}

// makeEntry makes name in dir, a file if file, else a directory, and opens
// it; EEXIST where name exists, or where the directory opened is not the
// empty one it made (another swapped in).
func makeEntry(dir int, name string, file bool) (fd int, err error) {
	if file {
		return unix.Openat(dir, name, unix.O_CREAT|unix.O_EXCL|unix.O_WRONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o644)
	}
	if err := unix.Mkdirat(dir, name, 0o755); err != nil {
		return -1, err
	}
	if fd, err = unix.Openat(dir, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0); err != nil {
		return -1, err
	}
	var st unix.Stat_t
	// An empty directory has 2 links, or 1 where the file system does not
	// count them (btrfs); more means subdirectories: not the one we made.
	if err := unix.Fstat(fd, &st); err != nil || int(st.Uid) != os.Geteuid() || st.Nlink > 2 {
		unix.Close(fd)
		return -1, unix.EEXIST
	}
	return fd, nil
}

// hasUserNS reports whether the container runs in a user namespace of its
// own or one it joins.
func hasUserNS(s *specs.Spec) bool {
	return s.Linux != nil && slices.ContainsFunc(s.Linux.Namespaces, func(ns specs.LinuxNamespace) bool {
		return ns.Type == specs.UserNamespace
	})
}
