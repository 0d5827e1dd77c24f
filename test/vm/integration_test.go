//go:build vm

package vm

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/greenboost/greenboost-container-toolkit/test/vm/guest/integration"
)

// The integration tests and the demo boot the VM with the whole product
// inside: runc (Debian's, with its shared libraries), greenboost-runtime,
// greenboost-hook, greenboost-ctk, the module as a file (not loaded), a
// fixture preload library and a busybox container root file system. The
// guest program (test/vm/guest/integration) drives it like a user and
// reports on the console. Knobs (besides the harness's GB_VM_KERNEL,
// GB_VM_KDIR, GB_VM_MODULE, GB_VM_TIMEOUT, GB_VM_KEEP, GB_VM_MEM):
//
//	GB_VM_INTEG_SMP   qemu -smp for these runs (default 2)

// integStage1 is /init: the kernel's rootfs cannot be pivot_root'ed out of,
// which runc needs, so move everything to a tmpfs and switch_root there.
const integStage1 = `#!/bin/busybox sh
/bin/busybox mount -t devtmpfs devtmpfs /dev
exec </dev/console >/dev/console 2>&1
echo GB-STAGE1
/bin/busybox mount -t tmpfs -o mode=0755 tmpfs /newroot
for e in /*; do
	case "$e" in
	/newroot|/dev|/proc|/sys) ;;
	*) /bin/busybox cp -a "$e" /newroot/ || echo "GB-STAGE1 copy $e failed" ;;
	esac
done
/bin/busybox mkdir -p /newroot/dev /newroot/proc /newroot/sys /newroot/run /newroot/tmp
/bin/busybox mount --move /dev /newroot/dev
exec /bin/busybox switch_root /newroot /init2
echo "GB-STAGE1 switch_root failed"
`

// integStage2 is /init2 in the tmpfs root: mounts, then the guest program.
const integStage2 = `#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t cgroup2 cgroup2 /sys/fs/cgroup
mount -t tmpfs -o mode=0755 tmpfs /run
mount -t tmpfs -o mode=1777 tmpfs /tmp
mkdir -p /dev/pts /dev/shm /var/log
echo "GB-BOOTED root=$(stat -f -c %T /)"
` + integration.GuestBin + `
echo "GB-GUEST-EXIT $?"
echo GB-DMESG-BEGIN
dmesg
echo GB-DMESG-END
echo GB-DONE
sync
poweroff -f
`

// goBuildStatic builds Go packages as static binaries into dir.
func goBuildStatic(t *testing.T, root, dir string, pkgs ...string) {
	t.Helper()
	ldflags := "-s -w -X github.com/greenboost/greenboost-container-toolkit/internal/version.Version=vm-test"
	args := append([]string{"build", "-trimpath", "-buildvcs=false", "-ldflags=" + ldflags, "-o", dir + "/"}, pkgs...)
	run(t, root, []string{"CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64"}, "go", args...)
}

var lddLine = regexp.MustCompile(`(\S+)\s+=>\s+(/\S+)|^\s*(/\S+)\s+\(`)

// sharedLibs returns the shared libraries bin needs, as ldd names them (the
// path a loader looks up) mapped to the file to copy.
func sharedLibs(t *testing.T, bin string) map[string]string {
	t.Helper()
	out, err := exec.Command("ldd", bin).CombinedOutput()
	if err != nil {
		t.Fatalf("ldd %s: %v\n%s", bin, err, out)
	}
	libs := map[string]string{}
	for _, l := range strings.Split(string(out), "\n") {
		m := lddLine.FindStringSubmatch(l)
		switch {
		case m == nil:
		case m[2] != "":
			libs[m[2]] = m[2]
		case m[3] != "":
			libs[m[3]] = m[3] // the loader, by its absolute name
		}
	}
	if len(libs) == 0 {
		t.Fatalf("ldd %s found no libraries:\n%s", bin, out)
	}
	return libs
}

// integArtifacts are the host-built pieces of the guest.
type integArtifacts struct {
	ko, binDir, gballoc, gbinteg, preload, gbdyn, runc string
}

func buildIntegArtifacts(t *testing.T, root, work, kdir string) integArtifacts {
	t.Helper()
	a := integArtifacts{binDir: filepath.Join(work, "bin")}
	a.ko = buildModule(t, root, kdir, work)
	goBuildStatic(t, root, a.binDir, "./cmd/greenboost-runtime", "./cmd/greenboost-hook", "./cmd/greenboost-ctk",
		"./test/vm/guest/gballoc", "./test/vm/guest/integration/cmd/gbinteg")
	a.gballoc = filepath.Join(a.binDir, "gballoc")
	a.gbinteg = filepath.Join(a.binDir, "gbinteg")
	if _, err := exec.LookPath("gcc"); err != nil {
		t.Fatal("gcc not found (for the fixture preload library): apt-get install gcc")
	}
	native := filepath.Join(root, "test", "vm", "guest", "integration", "native")
	a.preload = filepath.Join(work, "libgreenboost_cuda.so")
	a.gbdyn = filepath.Join(work, "gbdyn")
	run(t, work, nil, "gcc", "-shared", "-fPIC", "-O2", "-Wall", "-o", a.preload, filepath.Join(native, "preload.c"))
	run(t, work, nil, "gcc", "-O2", "-Wall", "-o", a.gbdyn, filepath.Join(native, "gbdyn.c"))
	runc, err := exec.LookPath("runc")
	if err != nil {
		if _, err2 := os.Stat("/usr/sbin/runc"); err2 == nil {
			runc = "/usr/sbin/runc"
		} else {
			t.Fatal("runc not found: apt-get install runc")
		}
	}
	a.runc = runc
	return a
}

// buildIntegInitramfs packs the guest; withPodman adds the host's podman and
// conmon (with their libraries and configs) for the CDI case.
func buildIntegInitramfs(t *testing.T, work string, a integArtifacts, withPodman bool) string {
	t.Helper()
	r := NewInitramfs()
	for _, d := range []string{"dev", "proc", "sys", "run", "tmp", "newroot", "root", "var/log", "etc/greenboost"} {
		r.Dir(d)
	}
	busybox := staticBusybox(t)
	copyTo := func(dst, src string) {
		t.Helper()
		if err := r.CopyFile(dst, src); err != nil {
			t.Fatal(err)
		}
	}
	copyTo("bin/busybox", busybox)
	r.File("init", []byte(integStage1), 0o755)
	r.File("init2", []byte(integStage2), 0o755)
	r.File("etc/passwd", []byte("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n"), 0o644)
	r.File("etc/group", []byte("root:x:0:\nnogroup:x:65534:\n"), 0o644)
	r.File(integration.ConfigPath, []byte(integration.Config), 0o644)

	copyTo(integration.RuncBin, a.runc)
	for name, src := range sharedLibs(t, a.runc) {
		copyTo(name, src)
	}
	copyTo(integration.RuntimeBin, filepath.Join(a.binDir, "greenboost-runtime"))
	copyTo(integration.HookBin, filepath.Join(a.binDir, "greenboost-hook"))
	copyTo(integration.CtkBin, filepath.Join(a.binDir, "greenboost-ctk"))
	copyTo(integration.GuestBin, a.gbinteg)
	copyTo(integration.ModulePath, a.ko)
	copyTo(integration.LibraryPath, a.preload)

	// Podman for the CDI path, when the host has it (else the guest case
	// fails saying so).
	podman, perr := exec.LookPath("podman")
	conmon, cerr := exec.LookPath("conmon")
	if cerr != nil {
		conmon, cerr = "/usr/libexec/podman/conmon", nil
		if _, err := os.Stat(conmon); err != nil {
			cerr = err
		}
	}
	if withPodman && perr == nil && cerr == nil {
		for dst, src := range map[string]string{integration.PodmanBin: podman, integration.ConmonBin: conmon} {
			copyTo(dst, src)
			for name, lib := range sharedLibs(t, src) {
				copyTo(name, lib)
			}
		}
		for path, data := range integration.PodmanConfigs {
			r.File(path, []byte(data), 0o644)
		}
	}
	r.Symlink("var/run", "/run")

	// The containers' root: busybox, the dynamic launcher with its libc,
	// gballoc, and every mount point (in a user namespace runc cannot
	// create them in a root-owned tree).
	rootfs := strings.TrimPrefix(integration.RootfsDir, "/")
	copyTo(rootfs+"/bin/busybox", busybox)
	for _, applet := range []string{"sh", "ls", "cat", "echo", "grep", "sleep", "id"} {
		r.Symlink(rootfs+"/bin/"+applet, "busybox")
	}
	copyTo(rootfs+"/bin/gballoc", a.gballoc)
	copyTo(rootfs+"/bin/gbdyn", a.gbdyn)
	libs := sharedLibs(t, a.gbdyn)
	for name, src := range sharedLibs(t, a.preload) {
		libs[name] = src
	}
	for name, src := range libs {
		copyTo(rootfs+name, src)
	}
	for _, d := range []string{"proc", "sys", "dev", "tmp", "etc", "root"} {
		r.Dir(rootfs + "/" + d)
	}
	r.File(rootfs+"/etc/passwd", []byte("root:x:0:0:root:/root:/bin/sh\n"), 0o644)
	r.File(rootfs+"/usr/lib/greenboost/libgreenboost_cuda.so", nil, 0o644)

	out := filepath.Join(work, "initramfs.cpio.gz")
	if err := r.WriteFile(out); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(out); err == nil {
		t.Logf("initramfs %s: %d MiB", out, st.Size()>>20)
	}
	return out
}

// runIntegVM builds everything, boots the VM in mode and checks the guest's
// verdicts (one subtest per case), its dmesg and its end.
func runIntegVM(t *testing.T, mode string, timeout time.Duration, onLine func(string)) *Console {
	root := repoRoot(t)
	kernel, kver := findKernel(t)
	kdir := os.Getenv("GB_VM_KDIR")
	if kdir == "" {
		kdir = "/usr/src/linux-headers-" + kver
	}
	expected := integration.Names(mode)
	work := t.TempDir()
	t.Logf("kernel %s, headers %s", kernel, kdir)
	buildStart := time.Now()
	a := buildIntegArtifacts(t, root, work, kdir)
	initrd := buildIntegInitramfs(t, work, a, mode == integration.ModeIntegration)
	t.Logf("built in %v", time.Since(buildStart).Round(time.Second))

	res := vmBoot{kernel: kernel, initrd: initrd, mode: mode, smp: envInt("GB_VM_INTEG_SMP", 2),
		timeout: timeout, onLine: onLine, keepAs: mode + "-"}.run(t, work)
	c := res.console
	if len(c.Listed) == 0 {
		t.Errorf("the guest never listed its cases")
	}
	reportRun(t, c, expected, res.err, res.logPath)
	return c
}

// TestIntegration is the product end to end in the VM (DESIGN.md §2, §6):
// from a boot without the module, containers started through
// greenboost-runtime and runc get the module loaded, the device, the
// preload library and their budgets enforced by the kernel; their budgets
// are released on delete, and gc cleans up after a crashed runtime.
func TestIntegration(t *testing.T) {
	runIntegVM(t, integration.ModeIntegration, 8*time.Minute, nil)
}
