//go:build vm

package vm

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// Environment knobs of the VM tests:
//
//	GB_VM_KERNEL   kernel image (default: the newest /boot/vmlinuz-6.1.*-cloud-amd64)
//	GB_VM_KDIR     headers to build the module against (default: /usr/src/linux-headers-<its version>)
//	GB_VM_MODULE   a prebuilt greenboost.ko to use instead of building kmod/module
//	GB_VM_RUN      regular expression selecting guest cases
//	GB_VM_TIMEOUT  qemu wall-clock limit (Go duration)
//	GB_VM_SMP, GB_VM_MEM   qemu -smp and -m (default 4 and 2048)
//	GB_VM_STRESS   cycles per thread of the stress case (default 2000)
//	GB_VM_KEEP     a directory to copy the console log and initramfs to
func repoRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("go.mod not found above the test directory")
		}
		dir = parent
	}
}

// findKernel returns the kernel image and its version (6.1 cloud kernel:
// the one without 9p that the harness is written for).
func findKernel(t *testing.T) (image, version string) {
	t.Helper()
	if k := os.Getenv("GB_VM_KERNEL"); k != "" {
		return k, strings.TrimPrefix(filepath.Base(k), "vmlinuz-")
	}
	matches, _ := filepath.Glob("/boot/vmlinuz-6.1.*-cloud-amd64")
	if len(matches) == 0 {
		t.Fatal("no /boot/vmlinuz-6.1.*-cloud-amd64: apt-get install linux-image-cloud-amd64 linux-headers-cloud-amd64 (Debian 12), or set GB_VM_KERNEL")
	}
	sort.Slice(matches, func(i, j int) bool { return versionLess(matches[i], matches[j]) })
	image = matches[len(matches)-1]
	return image, strings.TrimPrefix(filepath.Base(image), "vmlinuz-")
}

var numRE = regexp.MustCompile(`\d+|\D+`)

func versionLess(a, b string) bool {
	pa, pb := numRE.FindAllString(a, -1), numRE.FindAllString(b, -1)
	for i := 0; i < len(pa) && i < len(pb); i++ {
		if pa[i] == pb[i] {
			continue
		}
		na, ea := strconv.Atoi(pa[i])
		nb, eb := strconv.Atoi(pb[i])
		if ea == nil && eb == nil {
			return na < nb
		}
		return pa[i] < pb[i]
	}
	return len(pa) < len(pb)
}

func run(t *testing.T, dir string, env []string, name string, args ...string) {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	start := time.Now()
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	t.Logf("%s %s (%v)", filepath.Base(name), strings.Join(args, " "), time.Since(start).Round(time.Millisecond))
}

// buildModule builds kmod/module against kdir in a copy of the sources (the
// checkout stays clean) and returns the .ko.
func buildModule(t *testing.T, root, kdir, work string) string {
	t.Helper()
	if ko := os.Getenv("GB_VM_MODULE"); ko != "" {
		return ko
	}
	src := filepath.Join(root, "kmod", "module")
	if _, err := os.Stat(filepath.Join(kdir, "Makefile")); err != nil {
		t.Fatalf("kernel headers %s missing (%v): apt-get install linux-headers-%s", kdir, err, filepath.Base(kdir)[len("linux-headers-"):])
	}
	dst := filepath.Join(work, "module")
	if err := os.MkdirAll(dst, 0o755); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(src)
	if err != nil {
		t.Fatalf("module sources: %v", err)
	}
	n := 0
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || !(strings.HasSuffix(name, ".c") || strings.HasSuffix(name, ".h") ||
			name == "Kbuild" || name == "Makefile" || name == "dkms.conf") {
			continue
		}
		data, err := os.ReadFile(filepath.Join(src, name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
		n++
	}
	if _, err := os.Stat(filepath.Join(dst, "Makefile")); err != nil {
		t.Fatalf("kmod/module has no Makefile (module not written yet?)")
	}
	run(t, dst, nil, "make", "-C", dst, "KDIR="+kdir)
	ko := filepath.Join(dst, "greenboost.ko")
	if _, err := os.Stat(ko); err != nil {
		t.Fatalf("make -C kmod/module KDIR=%s made no greenboost.ko", kdir)
	}
	return ko
}

func buildGuest(t *testing.T, root, work string) string {
	t.Helper()
	bin := filepath.Join(work, "gbguest")
	run(t, root, []string{"CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64"},
		"go", "build", "-trimpath", "-ldflags=-s -w", "-o", bin, "./test/vm/guest/gbguest")
	return bin
}

const initScript = `#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
mount -t cgroup2 cgroup2 /sys/fs/cgroup
mount -t tmpfs tmpfs /tmp
mount -t tmpfs tmpfs /run
echo GB-BOOTED
/bin/gbguest run
echo "GB-GUEST-EXIT $?"
echo GB-DMESG-BEGIN
dmesg
echo GB-DMESG-END
echo GB-DONE
sync
poweroff -f
`

// staticBusybox is the host's busybox, which must be static to run in the
// initramfs.
func staticBusybox(t *testing.T) string {
	t.Helper()
	busybox, err := exec.LookPath("busybox")
	if err != nil {
		t.Fatal("busybox not found: apt-get install busybox-static")
	}
	if out, _ := exec.Command("file", "-L", busybox).Output(); len(out) > 0 && !strings.Contains(string(out), "statically linked") {
		t.Fatalf("%s is not static: apt-get install busybox-static", busybox)
	}
	return busybox
}

func buildInitramfs(t *testing.T, work, kver, ko, guest string) string {
	t.Helper()
	r := NewInitramfs()
	for _, d := range []string{"bin", "proc", "sys", "dev", "tmp", "run", "etc", "root"} {
		r.Dir(d)
	}
	busybox := staticBusybox(t)
	if err := r.CopyFile("bin/busybox", busybox); err != nil {
		t.Fatal(err)
	}
	r.File("init", []byte(initScript), 0o755)
	r.File("etc/passwd", []byte("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n"), 0o644)
	r.File("etc/group", []byte("root:x:0:\nnogroup:x:65534:\n"), 0o644)
	if err := r.CopyFile("bin/gbguest", guest); err != nil {
		t.Fatal(err)
	}
	if ko != "" {
		// a path for the first load, and the modules tree for load-by-name
		if err := r.CopyFile("greenboost.ko", ko); err != nil {
			t.Fatal(err)
		}
		if err := r.CopyFile("lib/modules/"+kver+"/extra/greenboost.ko", ko); err != nil {
			t.Fatal(err)
		}
	}
	// virtio-blk for the T3 store disk (the cloud kernel has it as modules)
	for _, m := range t3Modules {
		src := filepath.Join("/lib/modules", kver, "kernel", m)
		if _, err := os.Stat(src); err != nil {
			continue // the T3 cases say what is missing
		}
		if err := r.CopyFile("t3mods/"+filepath.Base(m), src); err != nil {
			t.Fatal(err)
		}
	}
	out := filepath.Join(work, "initramfs.cpio.gz")
	if err := r.WriteFile(out); err != nil {
		t.Fatal(err)
	}
	return out
}

// t3Modules are loaded, in this order, by the guest's T3 cases
// (test/vm/guest/suite/cases_t3.go) to see the T3 disk as /dev/vda.
var t3Modules = []string{
	"drivers/virtio/virtio_ring.ko",
	"drivers/virtio/virtio.ko",
	"drivers/virtio/virtio_pci_modern_dev.ko",
	"drivers/virtio/virtio_pci_legacy_dev.ko",
	"drivers/virtio/virtio_pci.ko",
	"drivers/block/virtio_blk.ko",
}

// makeT3Disk makes the T3 store's disk: a sparse raw image formatted ext4
// (no mkfs.ext4: no disk, and the T3 cases fail saying so).
func makeT3Disk(t *testing.T, work string) string {
	t.Helper()
	mkfs, err := exec.LookPath("mkfs.ext4")
	if err != nil {
		if mkfs, err = exec.LookPath("/usr/sbin/mkfs.ext4"); err != nil {
			t.Logf("no mkfs.ext4 (apt-get install e2fsprogs): the VM gets no T3 disk")
			return ""
		}
	}
	img := filepath.Join(work, "t3.img")
	f, err := os.Create(img)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(1 << 30); err != nil {
		t.Fatal(err)
	}
	f.Close()
	run(t, work, nil, mkfs, "-q", "-F", "-b", "4096", "-L", "gbt3",
		"-E", "lazy_itable_init=0,lazy_journal_init=0", img)
	return img
}

// bootResult is a finished qemu run.
type bootResult struct {
	console *Console
	logPath string
	err     error // qemu failure or timeout
	elapsed time.Duration
	silent  bool // killed after silentBoot without a single console line
}

// silentBoot is how long a VM may print nothing at all. Every guest prints
// within seconds; total silence (not even a kernel error) is a boot stuck in
// qemu before any of our code ran, seen once in CI, so run boots once more.
const silentBoot = 2 * time.Minute

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// vmBoot is one qemu run of a kernel and an initramfs.
type vmBoot struct {
	kernel, initrd string
	disk           string   // a raw image for a virtio disk ("" = none)
	mode           string   // the guest's gb.mode=
	params         []string // more kernel parameters
	smp            int
	timeout        time.Duration // GB_VM_TIMEOUT overrides it
	onLine         func(string)  // each console line (nil: none)
	keepAs         string        // name prefix of the files GB_VM_KEEP keeps
}

// run boots the VM and parses its console while it runs. With GB_VM_KEEP
// set, the console log and the initramfs are copied to that directory.
func (b vmBoot) run(t *testing.T, work string) bootResult {
	t.Helper()
	timeout := b.timeout
	if d, err := time.ParseDuration(os.Getenv("GB_VM_TIMEOUT")); err == nil {
		timeout = d
	}
	qemu, err := exec.LookPath("qemu-system-x86_64")
	if err != nil {
		t.Fatal("qemu-system-x86_64 not found: apt-get install qemu-system-x86")
	}
	// loglevel=5 puts warnings and backtraces on the console (about ten
	// lines a boot): a hung guest never prints its dmesg block.
	// softlockup_panic ends a locked-up guest at once, with every CPU's
	// stack, instead of at the timeout.
	appendLine := strings.Join(append([]string{"console=ttyS0 panic=-1 loglevel=5 softlockup_panic=1 softlockup_all_cpu_backtrace=1 log_buf_len=4M rdinit=/init gb.mode=" + b.mode}, b.params...), " ")
	args := []string{
		"-accel", "tcg", "-cpu", "max",
		"-smp", strconv.Itoa(b.smp), "-m", strconv.Itoa(envInt("GB_VM_MEM", 2048)),
		"-nodefaults", "-display", "none", "-serial", "stdio", "-no-reboot",
		"-kernel", b.kernel, "-initrd", b.initrd, "-append", appendLine,
	}
	if b.disk != "" {
		args = append(args, "-drive", "file="+b.disk+",if=virtio,format=raw")
	}
	res := runQemu(t, work, qemu, args, timeout, b.onLine)
	if res.silent {
		t.Logf("qemu printed nothing in %v: a boot stuck before the guest ran; booting once more", silentBoot)
		res = runQemu(t, work, qemu, args, timeout, b.onLine)
	}
	t.Logf("VM run took %v", res.elapsed.Round(time.Second))
	if keep := os.Getenv("GB_VM_KEEP"); keep != "" {
		os.MkdirAll(keep, 0o755)
		for _, f := range []string{res.logPath, b.initrd} {
			if data, err := os.ReadFile(f); err == nil {
				os.WriteFile(filepath.Join(keep, b.keepAs+filepath.Base(f)), data, 0o644)
			}
		}
	}
	return res
}

// runQemu runs qemu with args, writes its console to work/console.log and
// parses it while it runs. Each line also goes to onLine; without one, the
// verdicts and the GB-/BENCH lines are logged as they come.
func runQemu(t *testing.T, work, qemu string, args []string, timeout time.Duration, onLine func(string)) bootResult {
	t.Helper()
	logPath := filepath.Join(work, "console.log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, qemu, args...)
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	t.Logf("qemu-system-x86_64 %s", strings.Join(args, " "))
	t.Logf("console log: %s", logPath)
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatalf("start qemu: %v", err)
	}
	waitErr := make(chan error, 1)
	go func() {
		err := cmd.Wait()
		pw.Close()
		waitErr <- err
	}()
	var printed, silent atomic.Bool
	watchdog := time.AfterFunc(silentBoot, func() {
		if !printed.Load() {
			silent.Store(true)
			cancel()
		}
	})
	defer watchdog.Stop()
	c := &Console{Cases: map[string]*CaseResult{}}
	sc := bufio.NewScanner(pr)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		printed.Store(true)
		line := sc.Text()
		fmt.Fprintln(logf, line)
		r := c.Line(line)
		switch {
		case onLine != nil:
			onLine(line) // the caller shows what it wants
		case r != nil:
			verdict := "PASS"
			if !r.Pass {
				verdict = "FAIL"
			}
			t.Logf("[%6.1fs] %s %s %s", time.Since(start).Seconds(), verdict, r.Name, r.Reason)
		case strings.HasPrefix(line, "BENCH ") || strings.HasPrefix(line, "GB-"):
			t.Logf("[%6.1fs] %s", time.Since(start).Seconds(), strings.TrimSpace(line))
		}
	}
	err = <-waitErr
	switch {
	case silent.Load():
		err = fmt.Errorf("qemu killed after %v without a console line", silentBoot)
	case ctx.Err() != nil:
		err = fmt.Errorf("qemu killed after %v: %w", timeout, ctx.Err())
	}
	return bootResult{console: c, logPath: logPath, err: err, elapsed: time.Since(start), silent: silent.Load()}
}

// runSuite builds everything, boots the VM in mode and turns the guest's
// verdicts into subtests.
func runSuite(t *testing.T, mode string, timeout time.Duration) *Console {
	root := repoRoot(t)
	kernel, kver := findKernel(t)
	kdir := os.Getenv("GB_VM_KDIR")
	if kdir == "" {
		kdir = "/usr/src/linux-headers-" + kver
	}
	filter := os.Getenv("GB_VM_RUN")
	expected, err := guestCases(mode, filter)
	if err != nil {
		t.Fatal(err)
	}
	work := t.TempDir()
	t.Logf("kernel %s, headers %s", kernel, kdir)
	ko := ""
	if !onlyBoot(expected) {
		ko = buildModule(t, root, kdir, work)
	}
	guest := buildGuest(t, root, work)
	initrd := buildInitramfs(t, work, kver, ko, guest)
	disk := ""
	if !onlyBoot(expected) {
		disk = makeT3Disk(t, work)
	}

	var params []string
	if filter != "" {
		params = append(params, "gb.run="+filter)
	}
	if v := os.Getenv("GB_VM_STRESS"); v != "" {
		params = append(params, "gb.stress="+v)
	}
	res := vmBoot{kernel: kernel, initrd: initrd, disk: disk, mode: mode, params: params,
		smp: envInt("GB_VM_SMP", 4), timeout: timeout}.run(t, work)
	reportRun(t, res.console, expected, res.err, res.logPath)
	return res.console
}

// reportRun turns a VM run into subtests: one per expected case, its
// listing, the kernel log, qemu's exit and the guest's end; on failure it
// logs the tail of the console.
func reportRun(t *testing.T, c *Console, expected []string, qemuErr error, logPath string) {
	t.Helper()
	for _, name := range expected {
		r := c.Cases[name]
		t.Run(name, func(t *testing.T) {
			switch {
			case r == nil || !c.reported(name):
				why := "never reported (the guest hung, crashed or timed out before it)"
				if c.Running == name {
					why = "started but never reported (hang or crash in this case)"
				}
				t.Errorf("%s", why)
			case !r.Pass:
				t.Errorf("FAIL: %s", r.Reason)
			}
			if t.Failed() && r != nil && len(r.Log) > 0 {
				t.Logf("guest log:\n%s", strings.Join(r.Log, "\n"))
			}
		})
	}
	if len(c.Listed) > 0 && strings.Join(c.Listed, " ") != strings.Join(expected, " ") {
		t.Errorf("guest listed cases %v, host expected %v", c.Listed, expected)
	}
	for _, n := range c.Order {
		if !contains(expected, n) {
			t.Errorf("guest reported unexpected case %q (verdict pass=%v %s)", n, c.Cases[n].Pass, c.Cases[n].Reason)
		}
	}
	t.Run("dmesg", func(t *testing.T) {
		if !c.DmesgComplete {
			t.Errorf("the guest never printed its dmesg (it crashed, hung or was killed)")
		}
		for _, p := range c.KernelProblems() {
			t.Errorf("kernel log: %s", p)
		}
	})
	if qemuErr != nil {
		t.Errorf("qemu: %v", qemuErr)
	}
	if c.GuestExit != "0" {
		t.Errorf("the guest program exited with status %q, want 0 (a crash outside the cases?)", c.GuestExit)
	}
	if !c.Done {
		t.Errorf("the guest never finished (no GB-DONE)")
	}
	if t.Failed() {
		data, _ := os.ReadFile(logPath)
		lines := strings.Split(string(data), "\n")
		if len(lines) > 400 {
			lines = append([]string{"... (console log shortened to its last 400 lines)"}, lines[len(lines)-400:]...)
		}
		t.Logf("console log %s:\n%s", logPath, strings.Join(lines, "\n"))
	}
}

func onlyBoot(cases []string) bool {
	return len(cases) == 1 && cases[0] == "boot"
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

var errNoCases = errors.New("no guest cases selected")
