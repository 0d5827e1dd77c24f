package shim

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"syscall"
	"testing"

	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
	cdispec "tags.cncf.io/container-device-interface/specs-go"

	"github.com/greenboost/greenboost-container-toolkit/internal/ocispec"
)

// usernsBundle writes a bundle whose spec is testdata/plain with rootfs
// "rootfs" (made, with usr/ owned by the host's root) and the given user
// namespace and root mappings (none when uid < 0), and returns it.
func usernsBundle(t *testing.T, ns specs.LinuxNamespace, uid, gid int) (bundle, rootfs string) {
	t.Helper()
	data, err := os.ReadFile("testdata/plain/in.json")
	if err != nil {
		t.Fatal(err)
	}
	var s specs.Spec
	if err := json.Unmarshal(data, &s); err != nil {
		t.Fatal(err)
	}
	if ns.Type != "" {
		s.Linux.Namespaces = append(s.Linux.Namespaces, ns)
	}
	if uid >= 0 {
		s.Linux.UIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: uint32(uid), Size: 65536}}
		s.Linux.GIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: uint32(gid), Size: 65536}}
	}
	bundle = t.TempDir()
	rootfs = filepath.Join(bundle, "rootfs")
	if err := os.MkdirAll(filepath.Join(rootfs, "usr"), 0o755); err != nil {
		t.Fatal(err)
	}
	if data, err = json.Marshal(&s); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(ocispec.Path(bundle), data, 0o644); err != nil {
		t.Fatal(err)
	}
	return bundle, rootfs
}

func owner(t *testing.T, path string) (mode os.FileMode, uid, gid uint32) {
	t.Helper()
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	return fi.Mode(), st.Uid, st.Gid
}

// In a user namespace, runc and crun make a missing mount point as the
// container's root, who may not write the rootfs; the wrapper makes it
// first, each part owned as the directory it is made in.
func TestMountPointForUserNamespace(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("this test gives files to other users: run it as root, as make test does")
	}
	for _, tt := range []struct {
		name     string
		ns       specs.LinuxNamespace
		usrOwner [2]int // the image's usr/, which the new parts take after
	}{
		{"rootfs of the host's root", specs.LinuxNamespace{Type: specs.UserNamespace}, [2]int{0, 0}},
		{"rootfs remapped by the engine", specs.LinuxNamespace{Type: specs.UserNamespace}, [2]int{100000, 200000}},
		{"user namespace joined", specs.LinuxNamespace{Type: specs.UserNamespace, Path: "/proc/1/ns/user"}, [2]int{100000, 200000}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg, _ := testConfig(t)
			bundle, rootfs := usernsBundle(t, tt.ns, 100000, 200000)
			if err := os.Chown(filepath.Join(rootfs, "usr"), tt.usrOwner[0], tt.usrOwner[1]); err != nil {
				t.Fatal(err)
			}
			if err := editBundle(cfg, "c1", bundle, ocispec.Path(bundle), discard); err != nil {
				t.Fatal(err)
			}
			uid, gid := uint32(tt.usrOwner[0]), uint32(tt.usrOwner[1])
			for _, c := range []struct {
				path string
				mode os.FileMode
			}{
				{"usr", os.ModeDir | 0o755}, // the image's, left alone
				{"usr/lib", os.ModeDir | 0o755},
				{"usr/lib/greenboost", os.ModeDir | 0o755},
				{"usr/lib/greenboost/libgreenboost_cuda.so", 0o644},
			} {
				mode, u, g := owner(t, filepath.Join(rootfs, c.path))
				if mode != c.mode || u != uid || g != gid {
					t.Errorf("%s: mode %v, owner %d:%d; want %v, %d:%d", c.path, mode, u, g, c.mode, uid, gid)
				}
			}
		})
	}
}

// A container's root is "others" to a mount point of the host's root: it
// must be able to pass through it whatever the wrapper's umask.
func TestMountPointModeIgnoresTheUmask(t *testing.T) {
	old := syscall.Umask(0o077)
	defer syscall.Umask(old)
	cfg, _ := testConfig(t)
	bundle, rootfs := usernsBundle(t, specs.LinuxNamespace{Type: specs.UserNamespace}, 100000, 100000)
	if err := editBundle(cfg, "c1", bundle, ocispec.Path(bundle), discard); err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]os.FileMode{
		"usr/lib":            os.ModeDir | 0o755,
		"usr/lib/greenboost": os.ModeDir | 0o755,
		"usr/lib/greenboost/libgreenboost_cuda.so": 0o644,
	} {
		if mode, _, _ := owner(t, filepath.Join(rootfs, path)); mode != want {
			t.Errorf("%s: mode %v, want %v", path, mode, want)
		}
	}
}

func TestNoMountPointWithoutUserNamespace(t *testing.T) {
	cfg, _ := testConfig(t)
	bundle, rootfs := usernsBundle(t, specs.LinuxNamespace{}, -1, -1)
	if err := editBundle(cfg, "c1", bundle, ocispec.Path(bundle), discard); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(filepath.Join(rootfs, "usr/lib")); !os.IsNotExist(err) {
		t.Errorf("usr/lib: %v, want it not made", err)
	}
}

// The path to the mount point resolves inside the rootfs, as the runtime
// resolves it: a symlink that is absolute or climbs with ".." stays in the
// rootfs, and nothing is made outside it.
func TestMountPointStaysInTheRootfs(t *testing.T) {
	for _, tt := range []struct {
		name   string
		target func(outside string) string // of the symlink usr/lib
		made   func(outside string) string // where the mount point is made, in the rootfs
	}{
		{"absolute", func(o string) string { return o }, func(o string) string { return o }},
		{"relative out", func(o string) string { return "../../../../../../../../.." + o }, func(o string) string { return o }},
		{"dot-dot", func(string) string { return "../.." }, func(string) string { return "/" }},
		{"absolute inside", func(string) string { return "/usr/lib64" }, func(string) string { return "/usr/lib64" }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg, _ := testConfig(t)
			bundle, rootfs := usernsBundle(t, specs.LinuxNamespace{Type: specs.UserNamespace}, 100000, 100000)
			outside := t.TempDir()
			if err := os.Symlink(tt.target(outside), filepath.Join(rootfs, "usr/lib")); err != nil {
				t.Fatal(err)
			}
			made := filepath.Join(rootfs, tt.made(outside))
			if err := os.MkdirAll(made, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := editBundle(cfg, "c1", bundle, ocispec.Path(bundle), discard); err != nil {
				t.Fatal(err)
			}
			if fi, err := os.Lstat(filepath.Join(made, "greenboost/libgreenboost_cuda.so")); err != nil || !fi.Mode().IsRegular() {
				t.Errorf("mount point in the rootfs at %s: %v, want a file", tt.made(outside), err)
			}
			for _, dir := range []string{outside, bundle} {
				if _, err := os.Lstat(filepath.Join(dir, "greenboost")); !os.IsNotExist(err) {
					t.Errorf("%s/greenboost: %v, want nothing made outside the rootfs", dir, err)
				}
			}
		})
	}
}

// A mount inside the rootfs (a bind of a host directory) is not crossed: the
// runtime, not the wrapper, decides what to make there.
func TestMountPointDoesNotCrossAMount(t *testing.T) {
	cfg, _ := testConfig(t)
	bundle, rootfs := usernsBundle(t, specs.LinuxNamespace{Type: specs.UserNamespace}, 100000, 100000)
	host := t.TempDir()
	target := filepath.Join(rootfs, "usr/lib")
	if err := os.Mkdir(target, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount(host, target, "", unix.MS_BIND, ""); err != nil {
		t.Fatalf("bind-mounting %s (needs root): %v", host, err)
	}
	t.Cleanup(func() { unix.Unmount(target, unix.MNT_DETACH) })
	if err := editBundle(cfg, "c1", bundle, ocispec.Path(bundle), discard); err != nil {
		t.Fatal(err)
	}
	if entries, _ := os.ReadDir(host); len(entries) != 0 {
		t.Errorf("made %v in the host directory bound into the rootfs", entries)
	}
}

func TestMountPointLeavesWhatExists(t *testing.T) {
	cfg, _ := testConfig(t)
	bundle, rootfs := usernsBundle(t, specs.LinuxNamespace{Type: specs.UserNamespace}, 100000, 100000)
	lib := filepath.Join(rootfs, "usr/lib/greenboost/libgreenboost_cuda.so")
	if err := os.MkdirAll(filepath.Dir(lib), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(lib, []byte("image's"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{filepath.Dir(lib), lib} {
		if err := os.Chown(p, 4242, 4242); err != nil {
			t.Fatal(err)
		}
	}
	if err := editBundle(cfg, "c1", bundle, ocispec.Path(bundle), discard); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{filepath.Dir(lib), lib} {
		if _, uid, gid := owner(t, p); uid != 4242 || gid != 4242 {
			t.Errorf("%s: owner %d:%d, want the image's 4242:4242", p, uid, gid)
		}
	}
	if data, _ := os.ReadFile(lib); string(data) != "image's" {
		t.Errorf("the image's file became %q", data)
	}
}

// In a user namespace, runc and crun bind-mount a device node from the
// host's path of the same name; the wrapper binds the configured node.
func TestUserNSDeviceIsBoundFromItsHostPath(t *testing.T) {
	for name, ns := range map[string]specs.LinuxNamespace{
		"new":    {Type: specs.UserNamespace},
		"joined": {Type: specs.UserNamespace, Path: "/proc/1/ns/user"},
	} {
		t.Run(name, func(t *testing.T) {
			cfg, _ := testConfig(t) // the device is /dev/null, 1:3
			bundle, _ := usernsBundle(t, ns, 100000, 100000)
			if err := editBundle(cfg, "c1", bundle, ocispec.Path(bundle), discard); err != nil {
				t.Fatal(err)
			}
			var s specs.Spec
			if err := ocispec.Decode(ocispec.Path(bundle), &s); err != nil {
				t.Fatal(err)
			}
			for _, d := range s.Linux.Devices {
				if d.Path == "/dev/greenboost" {
					t.Errorf("device node %+v in a user namespace, want a bind mount", d)
				}
			}
			want := specs.Mount{Destination: "/dev/greenboost", Type: "bind", Source: "/dev/null", Options: []string{"bind", "nosuid", "noexec"}}
			if got := s.Mounts[len(s.Mounts)-1]; !reflect.DeepEqual(got, want) {
				t.Errorf("last mount %+v, want %+v", got, want)
			}
			rule := specs.LinuxDeviceCgroup{Allow: true, Type: "c", Major: new(int64(1)), Minor: new(int64(3)), Access: "rw"}
			if !slices.ContainsFunc(s.Linux.Resources.Devices, func(r specs.LinuxDeviceCgroup) bool { return reflect.DeepEqual(r, rule) }) {
				t.Errorf("device cgroup rules %+v lack rw for 1:3", s.Linux.Resources.Devices)
			}
		})
	}
}

func TestUserNSDevicesTwiceChangesNothing(t *testing.T) {
	s := &specs.Spec{
		Linux: &specs.Linux{
			Namespaces: []specs.LinuxNamespace{{Type: specs.UserNamespace}},
			Devices:    []specs.LinuxDevice{{Path: "/dev/greenboost", Type: "c", Major: 1, Minor: 3}},
		},
	}
	m := userNSDevices{nodes: []*cdispec.DeviceNode{{Path: "/dev/greenboost", HostPath: "/dev/null"}}}
	if err := m.Modify(s); err != nil {
		t.Fatal(err)
	}
	once, _ := json.Marshal(s)
	if err := m.Modify(s); err != nil {
		t.Fatal(err)
	}
	if twice, _ := json.Marshal(s); string(twice) != string(once) {
		t.Errorf("a second application changed the spec:\n%s\n%s", once, twice)
	}
	if len(s.Mounts) != 1 || len(s.Linux.Devices) != 0 {
		t.Errorf("mounts %+v devices %+v, want one bind mount and no node", s.Mounts, s.Linux.Devices)
	}
}

// With the node at /dev/greenboost on the host, the runtime's own bind of
// it is right: the node stays.
func TestUserNSDeviceAtItsOwnPathStays(t *testing.T) {
	s := &specs.Spec{
		Linux: &specs.Linux{
			Namespaces: []specs.LinuxNamespace{{Type: specs.UserNamespace}},
			Devices:    []specs.LinuxDevice{{Path: "/dev/greenboost", Type: "c", Major: 240, Minor: 0}},
		},
	}
	for _, hostPath := range []string{"", "/dev/greenboost", "/dev/../dev/greenboost"} {
		m := userNSDevices{nodes: []*cdispec.DeviceNode{{Path: "/dev/greenboost", HostPath: hostPath}}}
		if err := m.Modify(s); err != nil {
			t.Fatal(err)
		}
		if len(s.Mounts) != 0 || len(s.Linux.Devices) != 1 {
			t.Errorf("host path %q: mounts %+v devices %+v, want the node and no mount", hostPath, s.Mounts, s.Linux.Devices)
		}
	}
}

// A reused bundle keeps its edited spec but may get a fresh rootfs: the
// mount point is made again, and the spec is not written again. A spec with
// only the hooks (no device, enforce = false) has no library mount to make
// one for.
func TestMountPointForAnAlreadyEditedSpec(t *testing.T) {
	for _, tt := range []struct {
		name      string
		device    string
		wantMount bool
	}{
		{"with the library mount", "/dev/null", true},
		{"hooks only", "/nonexistent/greenboost", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg, _ := testConfig(t)
			cfg.Device.HostPath = tt.device
			bundle, rootfs := usernsBundle(t, specs.LinuxNamespace{Type: specs.UserNamespace}, 100000, 100000)
			if err := editBundle(cfg, "c1", bundle, ocispec.Path(bundle), discard); err != nil {
				t.Fatal(err)
			}
			// the rootfs made afresh from the image
			if err := os.RemoveAll(filepath.Join(rootfs, "usr/lib")); err != nil {
				t.Fatal(err)
			}
			before, err := os.Stat(ocispec.Path(bundle))
			if err != nil {
				t.Fatal(err)
			}
			if err := editBundle(cfg, "c1", bundle, ocispec.Path(bundle), discard); err != nil {
				t.Fatal(err)
			}
			fi, err := os.Lstat(filepath.Join(rootfs, "usr/lib/greenboost/libgreenboost_cuda.so"))
			if made := err == nil && fi.Mode().IsRegular(); made != tt.wantMount {
				t.Errorf("mount point made: %v (%v), want %v", made, err, tt.wantMount)
			}
			if after, err := os.Stat(ocispec.Path(bundle)); err != nil || !os.SameFile(before, after) || !after.ModTime().Equal(before.ModTime()) {
				t.Errorf("the edited spec was written again (%v)", err)
			}
		})
	}
}
