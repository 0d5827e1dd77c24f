package suite

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"golang.org/x/sys/unix"

	"github.com/greenboost/greenboost-container-toolkit/kmod"
)

func init() {
	alwaysRun["load"] = true
	alwaysRun["boot"] = true
	alwaysRun["bench-load"] = true
	register(20, ModeTest, "load", time.Minute, testLoad)
	register(20, ModeBench, "bench-load", time.Minute, testLoad)
	register(30, ModeTest, "sysfs", time.Minute, testSysfs)
}

// testLoad loads the module the way greenboost-runtime and the hook do,
// through kmod.Ensure with a path to the .ko, and checks Ensure's other paths.
func testLoad(t *T) {
	if _, err := os.Stat("/sys/module/greenboost"); err == nil {
		t.Fatalf("the module is loaded before the load case")
	}
	err := kmod.Ensure(kmod.LoadOptions{Load: kmod.LoadNever})
	if !errors.Is(err, kmod.ErrNotLoaded) {
		t.Errorf("Ensure with load=never and no module: %v, want ErrNotLoaded", err)
	}
	err = kmod.Ensure(kmod.LoadOptions{Module: "/nonexistent/greenboost.ko"})
	if !errors.Is(err, kmod.ErrModuleNotFound) {
		t.Errorf("Ensure with a missing module file: %v, want ErrModuleNotFound", err)
	}
	start := time.Now()
	t.Check(kmod.Ensure(kmod.LoadOptions{Module: "/greenboost.ko", DevicePath: devPath}), "Ensure(/greenboost.ko)")
	t.Logf("loaded in %v", time.Since(start).Round(time.Millisecond))
	if _, err := os.Stat("/sys/module/greenboost"); err != nil {
		t.Fatalf("after Ensure: %v", err)
	}
	// loaded: idempotent, even with load=never
	t.Check(kmod.Ensure(kmod.LoadOptions{Load: kmod.LoadNever, Module: "/nonexistent.ko"}), "Ensure again")

	// a node where no devtmpfs or udev makes one: Ensure creates it
	alt := "/run/gbtest/greenboost"
	t.Check(kmod.Ensure(kmod.LoadOptions{Load: kmod.LoadNever, DevicePath: alt}), "Ensure with DevicePath "+alt)
	checkNode(t, alt)
	// a stale file there is replaced
	t.Check(os.Remove(alt), "remove "+alt)
	t.Check(os.WriteFile(alt, []byte("stale"), 0o644), "a stale file at "+alt)
	t.Check(kmod.Ensure(kmod.LoadOptions{Load: kmod.LoadNever, DevicePath: alt}), "Ensure over a stale file")
	checkNode(t, alt)
	d, err := kmod.Open(alt)
	t.Check(err, "open "+alt)
	_, err = d.Query()
	t.Check(err, "CG_QUERY through "+alt)
	d.Close()
	os.RemoveAll("/run/gbtest")
	device(t)
}

// checkNode: path is the module's character device, mode 0666.
func checkNode(t *T, path string) {
	ma, mi, err := kmod.DeviceNumber()
	t.Check(err, "device number")
	var st unix.Stat_t
	t.Check(unix.Stat(path, &st), "stat "+path)
	if st.Mode&unix.S_IFMT != unix.S_IFCHR || st.Rdev != unix.Mkdev(ma, mi) {
		t.Errorf("%s: mode %o rdev %d:%d, want character device %d:%d", path, st.Mode, unix.Major(st.Rdev), unix.Minor(st.Rdev), ma, mi)
	}
	if st.Mode&0o777 != 0o666 {
		t.Errorf("%s: permissions %o, want 666", path, st.Mode&0o777)
	}
}

func param(t *T, name string) string {
	v, err := readTrim(filepath.Join("/sys/module/greenboost/parameters", name))
	t.Check(err, "module parameter")
	return v
}

func paramU(t *T, name string) uint64 {
	v := param(t, name)
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		t.Fatalf("parameter %s = %q: %v", name, v, err)
	}
	return uint64(n)
}

// testSysfs: the device node, the class attribute and the parameters
// (with the GiB mirrors GreenBoost's CUDA library reads).
func testSysfs(t *T) {
	dev, err := readTrim("/sys/class/greenboost/greenboost/dev")
	t.Check(err, "class attribute")
	t.Logf("/sys/class/greenboost/greenboost/dev = %s", dev)
	checkNode(t, devPath)
	if _, err := os.Stat(fmt.Sprintf("/dev/char/%s", dev)); err != nil {
		t.Logf("no /dev/char/%s (made by udev, which this VM does not run)", dev)
	}
	for _, p := range []string{"pool_mb", "safety_reserve_mb", "t3_path", "t3_mb", "cgroup_mode",
		"virtual_vram_gb", "safety_reserve_gb", "nvme_pool_gb"} {
		t.Logf("%s = %q", p, param(t, p))
	}
	pool, reserve, t3 := paramU(t, "pool_mb"), paramU(t, "safety_reserve_mb"), paramU(t, "t3_mb")
	if pool == 0 {
		t.Errorf("pool_mb is 0 in a %d MiB VM: small machines must get a pool", totalRAMMB())
	}
	if g := paramU(t, "virtual_vram_gb"); g != pool>>10 {
		t.Errorf("virtual_vram_gb = %d, want pool_mb/1024 = %d", g, pool>>10)
	}
	if g := paramU(t, "safety_reserve_gb"); g != reserve>>10 {
		t.Errorf("safety_reserve_gb = %d, want safety_reserve_mb/1024 = %d", g, reserve>>10)
	}
	if g := paramU(t, "nvme_pool_gb"); g != t3>>10 {
		t.Errorf("nvme_pool_gb = %d, want t3_mb/1024 = %d", g, t3>>10)
	}
	if m := param(t, "cgroup_mode"); m != "auto" {
		t.Errorf("cgroup_mode = %q, want the default auto", m)
	}
	info, err := device(t).Info()
	t.Check(err, "GET_INFO")
	if info.MaxPoolMB != pool || info.SafetyReserveMB != reserve || info.TotalRAMMB == 0 || info.AvailableMB == 0 {
		t.Errorf("GET_INFO %+v: want max_pool_mb %d, safety_reserve_mb %d, RAM and availability", info, pool, reserve)
	}
	pi, err := device(t).PoolInfoV3()
	t.Check(err, "GET_POOL_INFO_V3")
	if pi.T2TotalMB != pool || pi.T2AvailableMB == 0 {
		t.Errorf("GET_POOL_INFO_V3 %+v: want t2_total_mb %d and availability", pi, pool)
	}
	// GET_INFO follows allocations
	fd, err := device(t).Alloc(8*miB, 0)
	t.Check(err, "ALLOC 8 MiB")
	info2, _ := device(t).Info()
	pi2, _ := device(t).PoolInfoV3()
	unix.Close(fd)
	if info2.AllocatedMB != info.AllocatedMB+8 || info2.ActiveBuffers != info.ActiveBuffers+1 ||
		pi2.T2UsedMB != pi.T2UsedMB+8 || pi2.ActiveBuffers != pi.ActiveBuffers+1 {
		t.Errorf("after an 8 MiB ALLOC: info allocated_mb %d→%d buffers %d→%d, v3 t2_used_mb %d→%d buffers %d→%d",
			info.AllocatedMB, info2.AllocatedMB, info.ActiveBuffers, info2.ActiveBuffers,
			pi.T2UsedMB, pi2.T2UsedMB, pi.ActiveBuffers, pi2.ActiveBuffers)
	}
}

func totalRAMMB() uint64 {
	var si unix.Sysinfo_t
	unix.Sysinfo(&si)
	return uint64(si.Totalram) * uint64(si.Unit) >> 20
}
