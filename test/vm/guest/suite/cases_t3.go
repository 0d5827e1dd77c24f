package suite

import (
	"errors"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/greenboost/greenboost-container-toolkit/kmod"
)

// The T3 cases run after the reload case, against the module reloaded with a
// store on an ext4 file system on the VM's virtio disk (the harness makes
// the image with mkfs.ext4 and packs the virtio modules under /t3mods).
func init() {
	register(300, ModeTest, "t3-setup", 2*time.Minute, testT3Setup)
	register(310, ModeTest, "t3-evict-promote", 2*time.Minute, testT3EvictPromote)
	register(320, ModeTest, "t3-edquot", time.Minute, testT3EDQUOT)
	register(322, ModeTest, "t3-failcnt", time.Minute, testT3Failcnt)
	register(325, ModeTest, "t3-pool-evict", time.Minute, testT3PoolEvict)
	register(327, ModeTest, "t3-fsize-limit", time.Minute, testT3FileSizeLimit)
	register(330, ModeTest, "t3-mapped-stay", time.Minute, testT3MappedStay)
	register(332, ModeTest, "t3-frozen-stay", time.Minute, testT3FrozenStay)
	register(333, ModeTest, "t3-never-fits", time.Minute, testT3NeverFits)
	register(335, ModeTest, "t3-siblings", time.Minute, testT3Siblings)
	register(340, ModeTest, "t3-store-reuse", 2*time.Minute, testT3StoreReuse)
	register(350, ModeTest, "t3-stress", 3*time.Minute, testT3Stress)
}

const (
	t3Mount = "/mnt/t3"
	t3Store = t3Mount + "/gb.store"
	// what the T3 cases load the module with
	t3Params = "t3_path=" + t3Store + " pool_mb=256 safety_reserve_mb=64"
)

// in the order they depend on each other (harness_test.go: t3Modules)
var t3Modules = []string{"virtio_ring.ko", "virtio.ko", "virtio_pci_modern_dev.ko",
	"virtio_pci_legacy_dev.ko", "virtio_pci.ko", "virtio_blk.ko"}

var t3DiskOnce struct {
	sync.Mutex
	done bool
}

// t3Disk loads virtio-blk and mounts the T3 disk (ext4) on /mnt/t3, once.
func t3Disk(t *T) {
	t3DiskOnce.Lock()
	defer t3DiskOnce.Unlock()
	if t3DiskOnce.done {
		return
	}
	for _, m := range t3Modules {
		f, err := os.Open(filepath.Join("/t3mods", m))
		if err != nil {
			t.Fatalf("virtio module for the T3 disk: %v (the harness packs them from /lib/modules/<kernel>)", err)
		}
		err = unix.FinitModule(int(f.Fd()), "", 0)
		f.Close()
		if err != nil && !errors.Is(err, unix.EEXIST) {
			t.Fatalf("load %s: %v", m, err)
		}
	}
	var err error
	for i := 0; i < 200; i++ {
		if _, err = os.Stat("/dev/vda"); err == nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("no /dev/vda after loading virtio_blk (did the harness attach the T3 disk? it needs mkfs.ext4): %v", err)
	}
	t.Check(os.MkdirAll(t3Mount, 0o755), "mkdir "+t3Mount)
	t.Check(unix.Mount("/dev/vda", t3Mount, "ext4", 0, ""), "mount /dev/vda (ext4) on "+t3Mount)
	t3DiskOnce.done = true
}

// reloadModule unloads greenboost (no buffer may be alive) and loads it
// again from /greenboost.ko with params.
func reloadModule(t *T, params string) error {
	closeDevice()
	var err error
	if _, serr := os.Stat("/sys/module/greenboost"); serr == nil {
		for i := 0; i < 100; i++ {
			if err = unix.DeleteModule(kmod.ModuleName, unix.O_NONBLOCK); err == nil {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		if err != nil {
			t.Fatalf("rmmod greenboost: %v", err)
		}
	}
	return kmod.Ensure(kmod.LoadOptions{Module: "/greenboost.ko", Params: params, DevicePath: devPath})
}

// t3Module makes sure the module runs with the T3 store of the T3 cases.
func t3Module(t *T) {
	t3Disk(t)
	if v, err := readTrim("/sys/module/greenboost/parameters/t3_path"); err == nil && v == t3Store {
		return
	}
	t.Check(reloadModule(t, t3Params), "load with "+t3Params)
}

// t3Cgroup makes cgroup name with budgets t2 and t3 on the module with the
// T3 store, and moves the test process into it until the case ends.
func t3Cgroup(t *T, name string, t2, t3 uint64) cgroup {
	t3Module(t)
	c := mkcg(t, name)
	setLimit(t, c, t2, t3)
	enterCg(t, c)
	return c
}

// enterCg moves the test process into c until the case ends, so that its
// allocations are charged there.
func enterCg(t *T, c cgroup) {
	pid := []byte(itoa(os.Getpid()))
	t.Check(os.WriteFile(filepath.Join(c.dir, "cgroup.procs"), pid, 0o644), "enter "+c.dir)
	t.Cleanup(func() {
		if err := os.WriteFile(filepath.Join(cgLayout.root, "cgroup.procs"), pid, 0o644); err != nil {
			t.Errorf("cleanup: back to the root cgroup: %v", err)
		}
	})
}

// storeBytes is the space the store file holds on disk, and its size.
func storeBytes(t *T) (blocks, size uint64) {
	var st unix.Stat_t
	t.Check(unix.Stat(t3Store, &st), "stat "+t3Store)
	return uint64(st.Blocks) * 512, uint64(st.Size)
}

// tiers returns the T2 and T3 usage of c.
func tiers(t *T, c cgroup) (uint64, uint64) {
	u := usage(t, c)
	return u.T2Usage, u.T3Usage
}

func expectTiers(t *T, c cgroup, t2, t3 uint64, what string) {
	if a, b := tiers(t, c); a != t2 || b != t3 {
		t.Errorf("%s: %s T2 %s T3 %s; want T2 %s T3 %s", what, shortcg(c), human(a), human(b), human(t2), human(t3))
	}
}

// expectStoreEmpty: nothing in T3 module-wide, and the store file's blocks
// punched out (slack for file system metadata such as extent tree blocks).
func expectStoreEmpty(t *T, what string) {
	d := device(t)
	info, err := d.Info()
	t.Check(err, "GET_INFO")
	pi, err := d.PoolInfoV3()
	t.Check(err, "GET_POOL_INFO_V3")
	if info.NVMeSwapUsedMB != 0 || info.NVMeT3AllocatedMB != 0 || pi.T3UsedMB != 0 {
		t.Errorf("%s: GET_INFO nvme used %d MiB, T3 allocated %d MiB, V3 t3_used %d MiB; want 0",
			what, info.NVMeSwapUsedMB, info.NVMeT3AllocatedMB, pi.T3UsedMB)
	}
	if blocks, size := storeBytes(t); blocks > 64*kiB {
		t.Errorf("%s: the store still holds %s on disk (size %s); want its blocks punched out",
			what, human(blocks), human(size))
	}
}

// gbuf is a buffer the test process allocated.
type gbuf struct {
	fd   int
	size int
	seed byte
}

func allocFill(t *T, size uint64, flags uint32, seed byte) (gbuf, error) {
	fd, err := device(t).Alloc(size, flags)
	if err != nil {
		return gbuf{fd: -1}, err
	}
	n := int(size+page-1) &^ int(page-1)
	if flags&kmod.AllocNoHugepage == 0 && size >= 2*miB {
		n = int(size+2*miB-1) &^ int(2*miB-1)
	}
	b := gbuf{fd: fd, size: n, seed: seed}
	m, err := mmapRW(fd, 0, n)
	if err != nil {
		unix.Close(fd)
		return b, fmt.Errorf("mmap: %w", err)
	}
	fill(m, seed)
	unix.Munmap(m)
	return b, nil
}

// check maps b (promoting it) and compares its pattern.
func (b gbuf) check(t *T, what string) {
	m, err := mmapRW(b.fd, 0, b.size)
	if err != nil {
		t.Errorf("%s: mmap %s buffer: %v", what, human(uint64(b.size)), err)
		return
	}
	if i := firstMismatch(m, b.seed, 0); i >= 0 {
		t.Errorf("%s: %s buffer (seed %d) differs at byte %d", what, human(uint64(b.size)), b.seed, i)
	}
	unix.Munmap(m)
}

func closeAll(bufs []gbuf) {
	for _, b := range bufs {
		if b.fd >= 0 {
			unix.Close(b.fd)
		}
	}
}

// testT3Setup: a store on tmpfs is refused unless t3_allow_tmpfs=1; the
// module then runs with its store on ext4 and reports it.
func testT3Setup(t *T) {
	t3Disk(t)
	err := reloadModule(t, "t3_path=/tmp/gb.store")
	if err == nil {
		t.Errorf("t3_path on tmpfs was accepted")
	}
	if _, serr := os.Stat("/sys/module/greenboost"); serr == nil {
		t.Errorf("the module is loaded with its store on tmpfs")
	}
	t.Logf("tmpfs store refused: %v", err)
	t.Check(reloadModule(t, "t3_path=/tmp/gb.store t3_allow_tmpfs=1"), "load with a tmpfs store and t3_allow_tmpfs=1")
	os.Remove("/tmp/gb.store")

	t.Check(reloadModule(t, t3Params), "load with "+t3Params)
	if _, err := os.Stat(t3Store); err != nil {
		t.Errorf("the store file was not created: %v", err)
	}
	d := device(t)
	q, err := d.Query()
	t.Check(err, "CG_QUERY")
	if q.Features&kmod.CgFeatT3 == 0 {
		t.Errorf("CG_QUERY features %#x: no T3 bit with a store", q.Features)
	}
	pi, err := d.PoolInfoV3()
	t.Check(err, "GET_POOL_INFO_V3")
	info, err := d.Info()
	t.Check(err, "GET_INFO")
	// no cap: the store's size is what the 1 GiB file system has free
	if pi.T3TotalMB < 512 || pi.T3TotalMB > 1024 || info.NVMeSwapTotalMB != pi.T3TotalMB ||
		info.NVMeSwapFreeMB != info.NVMeSwapTotalMB || info.TotalCombinedMB != info.MaxPoolMB+info.NVMeSwapTotalMB {
		t.Errorf("T3 store reported as V3 total %d MiB, info %+v", pi.T3TotalMB, info)
	}
	prev, err := d.SetT3Cap(100)
	t.Check(err, "SET_T3_CAP 100")
	pi2 := poolInfoV3(t)
	if prev != 0 || pi2.T3TotalMB != 100 || paramU(t, "t3_mb") != 100 {
		t.Errorf("SET_T3_CAP 100: prev %d, V3 total %d, t3_mb %d", prev, pi2.T3TotalMB, paramU(t, "t3_mb"))
	}
	_, err = d.SetT3Cap(0)
	t.Check(err, "SET_T3_CAP 0")
	expectStoreEmpty(t, "fresh store")
}

// testT3EvictPromote: a cgroup allocates three times its T2 budget; the
// coldest buffers move to T3 (usage moves with them), every buffer reads
// back intact through mmap, round after round, and it all goes on close.
func testT3EvictPromote(t *T) {
	c := t3Cgroup(t, "gbt-t3-evict", 8*miB, 64*miB)
	d := device(t)

	sizes := []uint64{2 * miB, 64 * kiB, miB + 4*kiB, 4 * miB, 256 * kiB, 2 * miB}
	var bufs []gbuf
	t.Cleanup(func() { closeAll(bufs) })
	var total uint64
	for i := 0; total < 24*miB; i++ {
		size := sizes[i%len(sizes)]
		flags := uint32(0)
		if i%3 == 1 {
			flags = kmod.AllocNoHugepage
		}
		b, err := allocFill(t, size, flags, byte(i*11+1))
		if err != nil {
			t.Fatalf("buffer %d (%s) with %s in T2+T3: %v", i, human(size), human(total), err)
		}
		bufs = append(bufs, b)
		total += uint64(b.size)
		if t2, t3 := tiers(t, c); t2+t3 != total || t2 > 8*miB {
			t.Errorf("after buffer %d: T2 %s + T3 %s, want %s in all, T2 at most 8 MiB", i, human(t2), human(t3), human(total))
		}
	}
	t2, t3 := tiers(t, c)
	t.Logf("%d buffers, %s: T2 %s, T3 %s", len(bufs), human(total), human(t2), human(t3))
	if t3 < total-8*miB {
		t.Errorf("T3 holds %s of %s with an 8 MiB T2 budget", human(t3), human(total))
	}
	info := moduleInfo(t)
	pi := poolInfoV3(t)
	if info.NVMeSwapUsedMB != t3>>20 || info.NVMeT3AllocatedMB != t3>>20 || pi.T3UsedMB != t3>>20 {
		t.Errorf("module-wide T3: GET_INFO used %d allocated %d MiB, V3 used %d MiB; the cgroup has %s",
			info.NVMeSwapUsedMB, info.NVMeT3AllocatedMB, pi.T3UsedMB, human(t3))
	}
	list, err := d.List()
	t.Check(err, "CG_LIST")
	if e := findEntry(list, c.cg.ID); e == nil {
		t.Errorf("CG_LIST has no node for %s", shortcg(c))
	} else if e.T3Usage != t3 || e.T2Usage != t2 {
		t.Errorf("CG_LIST: T2 %s T3 %s, GET_USAGE T2 %s T3 %s", human(e.T2Usage), human(e.T3Usage), human(t2), human(t3))
	}
	if blocks, size := storeBytes(t); blocks < t3 || blocks > t3+miB {
		t.Errorf("store file holds %s on disk (size %s) for %s in T3", human(blocks), human(size), human(t3))
	}
	for round := 0; round < 3; round++ {
		for i, b := range bufs {
			b.check(t, fmt.Sprintf("round %d buffer %d", round, i))
		}
		if a, b := tiers(t, c); a+b != total || a > 8*miB {
			t.Errorf("after round %d: T2 %s + T3 %s, want %s", round, human(a), human(b), human(total))
		}
		if t.Failed() {
			return
		}
	}
	// begin_cpu_access (DMA_BUF_IOCTL_SYNC) brings an evicted buffer back
	// too, without a map (which would promote it itself): with room in T2,
	// a sync of each moves all of T3 back before anything is mapped
	if _, t3 := tiers(t, c); t3 == 0 {
		t.Fatalf("nothing in T3 after the rounds")
	}
	setLimit(t, c, 64*miB, 64*miB)
	for _, b := range bufs {
		t.Check(kmod.DMABufSyncIoctl(b.fd, kmod.DMABufSyncStart|kmod.DMABufSyncRW), "DMA_BUF_IOCTL_SYNC start")
		t.Check(kmod.DMABufSyncIoctl(b.fd, kmod.DMABufSyncEnd|kmod.DMABufSyncRW), "DMA_BUF_IOCTL_SYNC end")
	}
	expectTiers(t, c, total, 0, "after a sync of each buffer")
	for i, b := range bufs {
		b.check(t, fmt.Sprintf("after sync, buffer %d", i))
	}
	closeAll(bufs)
	bufs = nil
	expectTiers(t, c, 0, 0, "after closing all")
	expectStoreEmpty(t, "after closing all")
}

// testT3EDQUOT: a full T3 budget skips the eviction and the allocation gets
// EDQUOT; so does a full store (SET_T3_CAP), the cgroup budget being what
// needed room.
func testT3EDQUOT(t *T) {
	c := t3Cgroup(t, "gbt-t3-edquot", 4*miB, 4*miB)
	d := device(t)
	var bufs []gbuf
	t.Cleanup(func() { closeAll(bufs) })
	for i := 0; i < 4; i++ {
		b, err := allocFill(t, 2*miB, 0, byte(i))
		if err != nil {
			t.Fatalf("2 MiB buffer %d of T2 4 MiB + T3 4 MiB: %v", i, err)
		}
		bufs = append(bufs, b)
	}
	expectTiers(t, c, 4*miB, 4*miB, "both budgets full")
	_, err := d.Alloc(2*miB, 0)
	isErrno(t, err, unix.EDQUOT, "ALLOC with both budgets full")
	if u := usage(t, c); u.T3Failcnt == 0 {
		t.Errorf("T3 failcnt 0 after a refused eviction")
	}
	expectTiers(t, c, 4*miB, 4*miB, "after the refused ALLOC")
	// promoted although neither budget has room (it never fails a map):
	// charged to T2 past its limit, its store space freed
	bufs[0].check(t, "buffer 0")
	if t2, t3 := tiers(t, c); t2 != 6*miB || t3 != 2*miB {
		t.Errorf("after promoting one with no room: T2 %s, T3 %s; want 6 MiB (past the 4 MiB limit), 2 MiB", human(t2), human(t3))
	}
	if info := moduleInfo(t); info.NVMeSwapUsedMB != 2 || info.NVMeT3AllocatedMB != 2 {
		t.Errorf("after promoting one with no room: store holds %d MiB for %d MiB evicted; want 2, 2",
			info.NVMeSwapUsedMB, info.NVMeT3AllocatedMB)
	}

	// the store's cap: T3 budget unlimited, but only 4 MiB of store
	setLimit(t, c, 4*miB, kmod.Unlimited)
	_, err = d.SetT3Cap(4)
	t.Check(err, "SET_T3_CAP 4")
	t.Cleanup(func() { d.SetT3Cap(0) })
	_, err = d.Alloc(2*miB, 0)
	isErrno(t, err, unix.EDQUOT, "ALLOC with T2 full and the store at its cap")
	// a cap too large for bytes caps nothing (2^44+1 MiB once wrapped to
	// 1 MiB, below what the store holds)
	_, err = d.SetT3Cap(1<<44 + 1)
	t.Check(err, "SET_T3_CAP 2^44+1")
	b, err := allocFill(t, 2*miB, 0, 9)
	t.Check(err, "ALLOC under a cap of 2^44+1 MiB")
	bufs = append(bufs, b)
	expectTiers(t, c, 4*miB, 6*miB, "after evicting past the old cap")
	for i, b := range bufs {
		b.check(t, fmt.Sprintf("buffer %d", i))
	}
	closeAll(bufs)
	bufs = nil
	expectTiers(t, c, 0, 0, "after closing all")
	expectStoreEmpty(t, "after closing all")
}

// testT3Failcnt: with a store, an ALLOC the T2 budget refuses counts once in
// t2_failcnt (the probes for room are not refusals), one that made its room
// by evicting counts nothing, and evictions the T3 budget refuses count in
// t3_failcnt.
func testT3Failcnt(t *T) {
	c := t3Cgroup(t, "gbt-t3-failcnt", 4*miB, kmod.Unlimited)
	d := device(t)
	var bufs []gbuf
	t.Cleanup(func() { closeAll(bufs) })
	failcnt := func(t2 uint64, t3 bool, what string) {
		if u := usage(t, c); u.T2Failcnt != t2 || (u.T3Failcnt > 0) != t3 {
			t.Errorf("%s: failcnt T2 %d, T3 %d; want T2 %d, T3 above 0: %v", what, u.T2Failcnt, u.T3Failcnt, t2, t3)
		}
	}

	// nothing idle to evict: a KV-cache buffer fills the budget
	kv, err := allocFill(t, 4*miB, kmod.AllocKVCache, 1)
	t.Check(err, "ALLOC 4 MiB of KV cache")
	for i := uint64(1); i <= 3; i++ {
		_, err = d.Alloc(2*miB, 0)
		isErrno(t, err, unix.EDQUOT, "ALLOC with the budget full of KV cache")
		failcnt(i, false, fmt.Sprintf("after %d refused ALLOCs", i))
	}
	unix.Close(kv.fd)
	expectTiers(t, c, 0, 0, "after closing the KV cache")

	// room made by evicting: no refusal
	for i := 0; i < 3; i++ {
		b, err := allocFill(t, 2*miB, 0, byte(10+i))
		t.Check(err, "ALLOC 2 MiB")
		bufs = append(bufs, b)
	}
	expectTiers(t, c, 4*miB, 2*miB, "6 MiB over a 4 MiB T2 budget")
	failcnt(3, false, "after an ALLOC that evicted")

	// every eviction refused by the T3 budget: one T2 refusal
	setLimit(t, c, 4*miB, 2*miB)
	_, err = d.Alloc(2*miB, 0)
	isErrno(t, err, unix.EDQUOT, "ALLOC with T2 full and no T3 budget left")
	failcnt(4, true, "after an ALLOC whose evictions the T3 budget refused")
	closeAll(bufs)
	bufs = nil
	expectTiers(t, c, 0, 0, "after closing all")
	expectStoreEmpty(t, "after closing all")
}

// testT3NeverFits: a request that no eviction can make room for (over its
// cgroup's T2 budget, or over the pool's cap) fails at once: evicting idle
// buffers, the caller's or other tenants', would only push them to T3.
func testT3NeverFits(t *T) {
	c := t3Cgroup(t, "gbt-t3-never", 4*miB, kmod.Unlimited)
	d := device(t)
	var bufs []gbuf
	t.Cleanup(func() { closeAll(bufs) })
	idle, err := allocFill(t, 2*miB, 0, 70)
	t.Check(err, "ALLOC 2 MiB")
	bufs = append(bufs, idle)

	_, err = d.Alloc(8*miB, 0)
	isErrno(t, err, unix.EDQUOT, "ALLOC 8 MiB over a 4 MiB T2 budget")
	expectTiers(t, c, 2*miB, 0, "after an ALLOC over the T2 budget")
	closeAll(bufs) // a fresh idle buffer for the pool's case
	idle, err = allocFill(t, 2*miB, 0, 71)
	t.Check(err, "ALLOC 2 MiB")
	bufs = []gbuf{idle}

	prev, err := d.SetPoolCap(8)
	t.Check(err, "SET_POOL_CAP 8")
	t.Cleanup(func() { d.SetPoolCap(prev) })
	setLimit(t, c, kmod.Unlimited, kmod.Unlimited)
	_, err = d.Alloc(16*miB, 0)
	isErrno(t, err, unix.ENOSPC, "ALLOC 16 MiB over an 8 MiB pool")
	expectTiers(t, c, 2*miB, 0, "after an ALLOC over the pool's cap")
	closeAll(bufs)
	bufs = nil
	expectStoreEmpty(t, "after closing all")
}

// testT3PoolEvict: the global pool cap, not a cgroup, makes the room.
func testT3PoolEvict(t *T) {
	t3Module(t)
	d := device(t)
	info := moduleInfo(t)
	if info.AllocatedMB != 0 {
		t.Fatalf("%d MiB already allocated", info.AllocatedMB)
	}
	prev, err := d.SetPoolCap(8)
	t.Check(err, "SET_POOL_CAP 8")
	t.Cleanup(func() { d.SetPoolCap(prev) })
	var bufs []gbuf
	t.Cleanup(func() { closeAll(bufs) })
	for i := 0; i < 8; i++ {
		b, err := allocFill(t, 2*miB, 0, byte(40+i))
		if err != nil {
			t.Fatalf("2 MiB buffer %d with an 8 MiB pool: %v", i, err)
		}
		bufs = append(bufs, b)
		if info := moduleInfo(t); info.AllocatedMB > 8 {
			t.Errorf("pool at %d MiB, cap 8", info.AllocatedMB)
		}
	}
	info = moduleInfo(t)
	if info.AllocatedMB != 8 || info.NVMeT3AllocatedMB != 8 {
		t.Errorf("16 MiB over an 8 MiB pool: T2 %d MiB, T3 %d MiB", info.AllocatedMB, info.NVMeT3AllocatedMB)
	}
	// with the store at its cap, nothing can make room: the pool's ENOSPC
	_, err = d.SetT3Cap(8)
	t.Check(err, "SET_T3_CAP 8")
	_, err = d.Alloc(2*miB, 0)
	isErrno(t, err, unix.ENOSPC, "ALLOC with the pool full and the store at its cap")
	_, err = d.SetT3Cap(0)
	t.Check(err, "SET_T3_CAP 0")
	for i, b := range bufs {
		b.check(t, fmt.Sprintf("buffer %d", i))
	}
	closeAll(bufs)
	bufs = nil
	expectStoreEmpty(t, "after closing all")
}

// testT3FileSizeLimit: the store is the module's file, so a process with a
// small file size limit (ulimit -f) still evicts to it: its limit would fail
// the store's writes with EFBIG (and SIGXFSZ, fatal to a C program).
func testT3FileSizeLimit(t *T) {
	t3Module(t)
	c := mkcg(t, "gbt-t3-fsize")
	setLimit(t, c, 4*miB, 64*miB)
	ch := startChild(t, "fsize", childOpts{cgroupDir: c.dir})
	ch.must(request{Op: "fsize", Size: page})
	var fds []int
	for i := 0; i < 6; i++ {
		r := ch.do(request{Op: "alloc", Size: 2 * miB})
		if r.Errno != 0 {
			t.Fatalf("2 MiB buffer %d over a 4 MiB T2 budget, with a 4 KiB file size limit: %s", i, r.Err)
		}
		fds = append(fds, r.FD)
	}
	if t2, t3 := tiers(t, c); t2 != 4*miB || t3 != 8*miB {
		t.Errorf("12 MiB over a 4 MiB T2 budget: T2 %s, T3 %s; want 4 MiB, 8 MiB", human(t2), human(t3))
	}
	for _, fd := range fds[:2] { // evicted first: mapping reads them back
		ch.must(request{Op: "mmap", FD: fd, Size: 2 * miB})
	}
	ch.exit()
	expectTiers(t, c, 0, 0, "after the helper exited")
	expectStoreEmpty(t, "after the helper exited")
}

// testT3MappedStay: mmapped, KV-cache and pinned user buffers are never
// evicted; with nothing idle the allocation gets EDQUOT.
func testT3MappedStay(t *T) {
	c := t3Cgroup(t, "gbt-t3-mapped", 10*miB, kmod.Unlimited)
	d := device(t)
	var bufs []gbuf
	var maps [][]byte
	t.Cleanup(func() {
		for _, m := range maps {
			if m != nil {
				unix.Munmap(m)
			}
		}
		closeAll(bufs)
	})
	mapped := func(seed byte) int {
		b, err := allocFill(t, 2*miB, 0, seed)
		t.Check(err, "ALLOC")
		m, err := mmapRW(b.fd, 0, b.size)
		t.Check(err, "mmap")
		bufs = append(bufs, b)
		maps = append(maps, m)
		return len(bufs) - 1
	}
	a, bm := mapped(1), mapped(2)
	kv, err := allocFill(t, 2*miB, kmod.AllocKVCache, 3)
	t.Check(err, "ALLOC KV cache")
	bufs = append(bufs, kv)
	maps = append(maps, nil)
	mem, err := unix.Mmap(-1, 0, int(2*miB), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	t.Check(err, "anonymous mmap")
	defer unix.Munmap(mem)
	fill(mem, 4)
	pfd, err := d.PinUserPtr(uint64(uintptrOf(mem)), 2*miB, 0)
	t.Check(err, "PIN_USER_PTR")
	bufs = append(bufs, gbuf{fd: pfd, size: int(2 * miB), seed: 4})
	maps = append(maps, nil)
	idle, err := allocFill(t, 2*miB, 0, 5)
	t.Check(err, "ALLOC idle")
	bufs = append(bufs, idle)
	maps = append(maps, nil)
	expectTiers(t, c, 10*miB, 0, "T2 full")

	e := mapped(6) // evicts the idle one, the only candidate
	expectTiers(t, c, 10*miB, 2*miB, "after one more")
	_, err = d.Alloc(2*miB, 0)
	isErrno(t, err, unix.EDQUOT, "ALLOC with every T2 buffer mapped, KV cache or pinned")
	expectTiers(t, c, 10*miB, 2*miB, "after the refused ALLOC")
	for _, i := range []int{a, bm, e} {
		if j := firstMismatch(maps[i], bufs[i].seed, 0); j >= 0 {
			t.Errorf("mapped buffer %d changed at byte %d", i, j)
		}
	}
	if j := firstMismatch(mem, 4, 0); j >= 0 {
		t.Errorf("pinned memory changed at byte %d", j)
	}
	// Mapping the evicted buffer finds nothing else to evict: a map never
	// fails, so T2 is charged by force past the limit and T3 let go.
	im, err := mmapRW(idle.fd, 0, idle.size)
	t.Check(err, "mmap of the evicted buffer with T2 full of unevictable buffers")
	if j := firstMismatch(im, idle.seed, 0); j >= 0 {
		t.Errorf("forced promotion: data differs at byte %d", j)
	}
	expectTiers(t, c, 12*miB, 0, "after a forced promotion")
	unix.Munmap(im)
	// unmapped, a becomes the one to go (with the promoted one: the next
	// allocation evicts until the cgroup is back under its limit)
	unix.Munmap(maps[a])
	maps[a] = nil
	f, err := allocFill(t, 2*miB, 0, 7)
	t.Check(err, "ALLOC once a buffer is unmapped")
	bufs = append(bufs, f)
	maps = append(maps, nil)
	expectTiers(t, c, 10*miB, 4*miB, "after unmapping one")
	for i, b := range bufs {
		if maps[i] == nil && i != 3 { // not the pinned one (its fd maps too, but skip)
			b.check(t, fmt.Sprintf("buffer %d", i))
		}
	}
	for i, m := range maps {
		if m != nil {
			unix.Munmap(m)
			maps[i] = nil
		}
	}
	closeAll(bufs)
	bufs = nil
	expectTiers(t, c, 0, 0, "after closing all")
	expectStoreEmpty(t, "after closing all")
}

// testT3FrozenStay: a GB_ALLOC_FROZEN buffer is never evicted: alone in a
// full budget it leaves nothing to evict (EDQUOT), and beside an idle buffer
// it is not the one to go, though it is the coldest.
func testT3FrozenStay(t *T) {
	c := t3Cgroup(t, "gbt-t3-frozen", 4*miB, kmod.Unlimited)
	d := device(t)
	var bufs []gbuf
	t.Cleanup(func() { closeAll(bufs) })

	frozen, err := allocFill(t, 4*miB, kmod.AllocFrozen, 60)
	t.Check(err, "ALLOC 4 MiB frozen")
	bufs = append(bufs, frozen)
	fd, err := d.Alloc(2*miB, 0)
	isErrno(t, err, unix.EDQUOT, "ALLOC with the budget full of a frozen buffer")
	if err == nil {
		bufs = append(bufs, gbuf{fd: fd})
	}
	expectTiers(t, c, 4*miB, 0, "after the refused ALLOC")

	setLimit(t, c, 6*miB, kmod.Unlimited)
	idle, err := allocFill(t, 2*miB, 0, 61)
	t.Check(err, "ALLOC 2 MiB idle")
	bufs = append(bufs, idle)
	fd, err = d.Alloc(2*miB, 0)
	t.Check(err, "ALLOC 2 MiB with an idle buffer to evict")
	bufs = append(bufs, gbuf{fd: fd, size: int(2 * miB)})
	expectTiers(t, c, 6*miB, 2*miB, "after evicting the idle buffer, not the frozen one")
	if pi := poolInfoV3(t); pi.T3UsedMB != 2 {
		t.Errorf("the store holds %d MiB; want 2 (the idle buffer)", pi.T3UsedMB)
	}
	frozen.check(t, "frozen buffer")
	idle.check(t, "idle buffer")
	closeAll(bufs)
	bufs = nil
	expectTiers(t, c, 0, 0, "after closing all")
	expectStoreEmpty(t, "after closing all")
}

// testT3Siblings: a cgroup at its own limit evicts only its own buffers,
// never its siblings'; a parent at its limit evicts from the whole subtree.
func testT3Siblings(t *T) {
	t3Module(t)
	d := device(t)
	p := mkcg(t, "gbt-t3-sib")
	a, b := mkcg(t, "gbt-t3-sib/a"), mkcg(t, "gbt-t3-sib/b")
	setLimit(t, p, 8*miB, kmod.Unlimited)
	setLimit(t, a, 4*miB, kmod.Unlimited)
	setLimit(t, b, kmod.Unlimited, kmod.Unlimited)
	var bufs []gbuf
	var maps [][]byte
	t.Cleanup(func() {
		for _, m := range maps {
			unix.Munmap(m)
		}
		closeAll(bufs)
	})
	alloc := func(seed byte, mapIt bool) gbuf {
		g, err := allocFill(t, 2*miB, 0, seed)
		t.Check(err, "ALLOC")
		bufs = append(bufs, g)
		if mapIt {
			m, err := mmapRW(g.fd, 0, g.size)
			t.Check(err, "mmap")
			maps = append(maps, m)
		}
		return g
	}
	enterCg(t, b)
	alloc(1, false) // b: two idle buffers, the coldest of all
	alloc(2, false)
	enterCg(t, a)
	alloc(3, true) // a: full, all mapped
	alloc(4, true)
	_, err := d.Alloc(2*miB, 0)
	isErrno(t, err, unix.EDQUOT, "ALLOC in a full cgroup with nothing idle")
	expectTiers(t, b, 4*miB, 0, "b after a's refused ALLOC")
	expectTiers(t, a, 4*miB, 0, "a after its refused ALLOC")
	// the parent is full now: b's next buffer evicts the coldest of the subtree
	enterCg(t, b)
	alloc(5, false)
	expectTiers(t, p, 8*miB, 2*miB, "parent after b's third buffer")
	expectTiers(t, b, 4*miB, 2*miB, "b after its third buffer")
	expectTiers(t, a, 4*miB, 0, "a (mapped) after b's third buffer")
	for i, g := range bufs {
		g.check(t, fmt.Sprintf("buffer %d", i))
	}
	for _, m := range maps {
		unix.Munmap(m)
	}
	maps = nil
	closeAll(bufs)
	bufs = nil
	for _, c := range []cgroup{p, a, b} {
		expectTiers(t, c, 0, 0, "after closing all")
	}
	expectStoreEmpty(t, "after closing all")
}

// testT3StoreReuse: many cycles of allocating, evicting, promoting and
// freeing; the store file never holds more blocks than the peak of live T3
// bytes, and nothing at the end. The peak seen from here misses one moment:
// a promotion writes its victims out before it frees its own extent, so the
// true peak can be one buffer (at most 4 MiB here) above the sampled one.
func testT3StoreReuse(t *T) {
	c := t3Cgroup(t, "gbt-t3-reuse", 4*miB, kmod.Unlimited)
	rng := rand.New(rand.NewSource(7))
	sizes := []uint64{64 * kiB, 256 * kiB, miB, 2 * miB, 3 * miB}
	var bufs []gbuf
	t.Cleanup(func() { closeAll(bufs) })
	var peak, maxBlocks, maxSize uint64
	for cycle := 0; cycle < 60; cycle++ {
		for n := rng.Intn(4) + 1; n > 0; n-- {
			b, err := allocFill(t, sizes[rng.Intn(len(sizes))], 0, byte(cycle))
			if err != nil {
				t.Fatalf("cycle %d: %v", cycle, err)
			}
			bufs = append(bufs, b)
		}
		if _, t3 := tiers(t, c); t3 > peak {
			peak = t3
		}
		if len(bufs) > 2 {
			bufs[rng.Intn(len(bufs))].check(t, fmt.Sprintf("cycle %d", cycle))
		}
		for len(bufs) > 6 {
			i := rng.Intn(len(bufs))
			unix.Close(bufs[i].fd)
			bufs = append(bufs[:i], bufs[i+1:]...)
		}
		blocks, size := storeBytes(t)
		maxBlocks, maxSize = max(maxBlocks, blocks), max(maxSize, size)
		if _, t3 := tiers(t, c); t3 > peak {
			peak = t3
		}
		if blocks > peak+4*miB+256*kiB {
			t.Fatalf("cycle %d: the store holds %s on disk, the peak of live T3 bytes is %s (+ one 4 MiB buffer in flight)",
				cycle, human(blocks), human(peak))
		}
	}
	t.Logf("peak live T3 %s; store at most %s on disk, size at most %s", human(peak), human(maxBlocks), human(maxSize))
	if peak == 0 {
		t.Errorf("nothing ever went to T3")
	}
	closeAll(bufs)
	bufs = nil
	expectTiers(t, c, 0, 0, "after closing all")
	expectStoreEmpty(t, "after closing all")
}

// testT3Stress: threads allocate, map, check, sync and free buffers in a
// cgroup whose T2 budget is far below what they hold, so evictions and
// promotions race with mappings; data stays intact and everything ends at
// zero with an empty store.
func testT3Stress(t *T) {
	c := t3Cgroup(t, "gbt-t3-stress", 12*miB, kmod.Unlimited)
	d := device(t)
	before := moduleInfo(t)
	const threads, cycles, keep = 8, 250, 4
	sizes := []uint64{16 * kiB, 64 * kiB, 64 * kiB, 256 * kiB, miB, 2 * miB}
	var ops, edquot, remaps atomic.Int64
	var peakT3 atomic.Uint64
	stop := make(chan struct{})
	var mon sync.WaitGroup
	mon.Add(1)
	go func() {
		defer mon.Done()
		for {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			if u, err := d.Usage(c.cg, false); err == nil && u.T3Usage > peakT3.Load() {
				peakT3.Store(u.T3Usage)
			}
		}
	}()
	var wg sync.WaitGroup
	var errMu sync.Mutex
	var errs []string
	fail := func(format string, args ...any) {
		errMu.Lock()
		if len(errs) < 8 {
			errs = append(errs, fmt.Sprintf(format, args...))
		}
		errMu.Unlock()
	}
	for w := 0; w < threads; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			rng := rand.New(rand.NewSource(int64(100 + w)))
			type tb struct {
				fd, n int
				tag   byte
			}
			var ring []tb
			stamp := func(m []byte, tag byte) {
				for p := 0; p < len(m); p += int(page) {
					m[p] = tag + byte(p>>12)
				}
			}
			verify := func(m []byte, tag byte) bool {
				for p := 0; p < len(m); p += int(page) {
					if m[p] != tag+byte(p>>12) {
						return false
					}
				}
				return true
			}
			for i := 0; i < cycles; i++ {
				ops.Add(1)
				switch op := rng.Intn(10); {
				case op < 4 && len(ring) < keep:
					size := sizes[rng.Intn(len(sizes))]
					fd, err := d.Alloc(size, 0)
					if errors.Is(err, unix.EDQUOT) {
						edquot.Add(1)
						continue
					}
					if err != nil {
						fail("ALLOC %d: %v", size, err)
						continue
					}
					n := int(size)
					m, err := mmapRW(fd, 0, n)
					if err != nil {
						fail("mmap new: %v", err)
						unix.Close(fd)
						continue
					}
					tag := byte(rng.Intn(256))
					stamp(m, tag)
					unix.Munmap(m)
					ring = append(ring, tb{fd, n, tag})
				case op < 8 && len(ring) > 0:
					b := &ring[rng.Intn(len(ring))]
					if op == 7 {
						if err := kmod.DMABufSyncIoctl(b.fd, kmod.DMABufSyncStart|kmod.DMABufSyncRW); err != nil {
							fail("sync: %v", err)
						}
						kmod.DMABufSyncIoctl(b.fd, kmod.DMABufSyncEnd|kmod.DMABufSyncRW)
					}
					m, err := mmapRW(b.fd, 0, b.n)
					if err != nil {
						fail("mmap again: %v", err)
						continue
					}
					remaps.Add(1)
					if !verify(m, b.tag) {
						fail("buffer of %d bytes lost its data", b.n)
					}
					b.tag++
					stamp(m, b.tag)
					unix.Munmap(m)
				case len(ring) > 0:
					j := rng.Intn(len(ring))
					unix.Close(ring[j].fd)
					ring = append(ring[:j], ring[j+1:]...)
				}
			}
			for _, b := range ring {
				unix.Close(b.fd)
			}
		}(w)
	}
	wg.Wait()
	close(stop)
	mon.Wait()
	t.Logf("%d ops, %d remaps, %d EDQUOT; peak T3 %s", ops.Load(), remaps.Load(), edquot.Load(), human(peakT3.Load()))
	if len(errs) > 0 {
		t.Errorf("errors: %s", strings.Join(errs, "; "))
	}
	if peakT3.Load() == 0 {
		t.Errorf("nothing went to T3 during the stress")
	}
	expectTiers(t, c, 0, 0, "after the stress")
	if u := usage(t, c); u.NrBuffers != 0 {
		t.Errorf("%d buffers still charged", u.NrBuffers)
	}
	after := moduleInfo(t)
	if after.ActiveBuffers != before.ActiveBuffers || after.AllocatedMB != before.AllocatedMB {
		t.Errorf("module-wide after the stress: %d buffers, %d MiB; before %d, %d",
			after.ActiveBuffers, after.AllocatedMB, before.ActiveBuffers, before.AllocatedMB)
	}
	expectStoreEmpty(t, "after the stress")
}
