package suite

import (
	"fmt"
	"strings"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/greenboost/greenboost-container-toolkit/kmod"
)

func init() {
	register(160, ModeTest, "mmap", time.Minute, testMmap)
	register(170, ModeTest, "dma-buf-sync", time.Minute, testDMABufSync)
	register(180, ModeTest, "fork-sharing", time.Minute, testForkSharing)
	register(190, ModeTest, "pool-cap", time.Minute, testPoolCap)
	register(200, ModeTest, "release-pid", time.Minute, testReleasePID)
}

func mmapRW(fd int, off int64, n int) ([]byte, error) {
	return unix.Mmap(fd, off, n, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
}

// testMmap: pattern write/read through normal cached mappings, mapping at an
// offset, zeroed memory, rejected oversize and private mappings.
func testMmap(t *T) {
	d := device(t)
	for _, tc := range []struct {
		size  uint64
		flags uint32
	}{{4 * miB, 0}, {3*miB + 5*page, kmod.AllocNoHugepage}, {64 * kiB, 0}} {
		size := int(tc.size)
		fd, err := d.Alloc(tc.size, tc.flags)
		t.Check(err, "ALLOC")
		func() {
			defer unix.Close(fd)
			m, err := mmapRW(fd, 0, size)
			t.Check(err, "mmap")
			for i := 0; i < size; i += 4096 {
				if m[i] != 0 || m[i+4095] != 0 {
					t.Errorf("size %d: fresh buffer not zeroed at %d", size, i)
					break
				}
			}
			fill(m, 0x11)
			t.Check(unix.Munmap(m), "munmap")
			m, err = mmapRW(fd, 0, size)
			t.Check(err, "mmap again")
			defer unix.Munmap(m)
			if i := firstMismatch(m, 0x11, 0); i >= 0 {
				t.Errorf("size %d: pattern lost at byte %d after remapping", size, i)
			}
			// at an offset: the right bytes, and writes land in the same pages
			for _, off := range []int{page4(1), size / 2 &^ 4095, size - 4096} {
				n := min(3*4096, size-off)
				mo, err := mmapRW(fd, int64(off), n)
				if err != nil {
					t.Errorf("size %d: mmap at offset %d: %v", size, off, err)
					continue
				}
				if i := firstMismatch(mo, 0x11, off); i >= 0 {
					t.Errorf("size %d: mapping at offset %d shows the wrong bytes from %d", size, off, i)
				}
				mo[0] ^= 0xff
				if m[off] != mo[0] {
					t.Errorf("size %d: write at offset %d not seen in the full mapping", size, off)
				}
				mo[0] ^= 0xff
				unix.Munmap(mo)
			}
			// oversize, past the end, private
			for _, bad := range []struct {
				off, n int
				flags  int
				what   string
			}{
				{0, size + 4096, unix.MAP_SHARED, "one page longer than the buffer"},
				{size - 4096, 2 * 4096, unix.MAP_SHARED, "crossing the end"},
				{size, 4096, unix.MAP_SHARED, "at the end"},
				{0, 4096, unix.MAP_PRIVATE, "private"},
			} {
				mb, err := unix.Mmap(fd, int64(bad.off), bad.n, unix.PROT_READ|unix.PROT_WRITE, bad.flags)
				if err == nil {
					unix.Munmap(mb)
					t.Errorf("size %d: mmap %s succeeded", size, bad.what)
				} else if err != unix.EINVAL {
					t.Errorf("size %d: mmap %s: %v, want EINVAL", size, bad.what, err)
				}
			}
		}()
	}
	// a mapping keeps the buffer (and its charge) after the fd is closed
	before := moduleInfo(t)
	fd, err := d.Alloc(2*miB, 0)
	t.Check(err, "ALLOC")
	m, err := mmapRW(fd, 0, int(2*miB))
	t.Check(err, "mmap")
	fill(m, 0x33)
	unix.Close(fd)
	mid := moduleInfo(t)
	if mid.ActiveBuffers != before.ActiveBuffers+1 {
		t.Errorf("closing the fd of a mapped buffer freed it")
	}
	if i := firstMismatch(m, 0x33, 0); i >= 0 {
		t.Errorf("mapping after close: mismatch at %d", i)
	}
	unix.Munmap(m)
	after := moduleInfo(t)
	if after.ActiveBuffers != before.ActiveBuffers {
		t.Errorf("munmap of the last reference: %d buffers, want %d", after.ActiveBuffers, before.ActiveBuffers)
	}
}

func page4(n int) int { return n * 4096 }

// testDMABufSync: DMA_BUF_IOCTL_SYNC brackets CPU access; bad flags are
// refused by the dma-buf core.
func testDMABufSync(t *T) {
	d := device(t)
	fd, err := d.Alloc(2*miB, 0)
	t.Check(err, "ALLOC")
	defer unix.Close(fd)
	m, err := mmapRW(fd, 0, int(2*miB))
	t.Check(err, "mmap")
	defer unix.Munmap(m)
	for _, dir := range []uint64{kmod.DMABufSyncRW, kmod.DMABufSyncRead, kmod.DMABufSyncWrite} {
		t.Check(kmod.DMABufSyncIoctl(fd, kmod.DMABufSyncStart|dir), "SYNC_START")
		fill(m[:8192], byte(dir))
		t.Check(kmod.DMABufSyncIoctl(fd, kmod.DMABufSyncEnd|dir), "SYNC_END")
		if i := firstMismatch(m[:8192], byte(dir), 0); i >= 0 {
			t.Errorf("after sync %#x: mismatch at %d", dir, i)
		}
	}
	if err := kmod.DMABufSyncIoctl(fd, kmod.DMABufSyncStart); err == nil || !strings.Contains(err.Error(), "invalid argument") {
		t.Errorf("SYNC without a direction: %v, want EINVAL", err)
	}
	if err := kmod.DMABufSyncIoctl(fd, 1<<3|kmod.DMABufSyncRW); err == nil {
		t.Errorf("SYNC with an unknown flag succeeded")
	}
	// the DMA-BUF is named and sized in fdinfo
	b, _ := readTrim(fmt.Sprintf("/proc/self/fdinfo/%d", fd))
	if !strings.Contains(b, "size:\t2097152") || !strings.Contains(b, "exp_name:\tgreenboost") {
		t.Errorf("fdinfo of the DMA-BUF:\n%s\nwant size 2097152 and exp_name greenboost", b)
	}
}

// testForkSharing: a MAP_SHARED mapping is the same memory in a forked
// child (run in a helper, which forks raw).
func testForkSharing(t *T) {
	ch := startChild(t, "fork", childOpts{args: []string{"forkwrite"}})
	out, err := ch.wait()
	if err != nil {
		t.Fatalf("forkwrite helper: %v\n%s", err, out)
	}
	if strings.TrimSpace(out) != "ok" {
		t.Errorf("forkwrite helper: %s", out)
	}
}

// childForkWrite maps a buffer, forks, lets the child check the parent's
// bytes and write its own, and checks them after the child exits.
func childForkWrite(args []string) int {
	d, err := kmod.Open("")
	if err != nil {
		fmt.Println(err)
		return 1
	}
	const size = 4 << 20
	const half = size / 2
	fd, err := d.Alloc(size, 0)
	if err != nil {
		fmt.Println(err)
		return 1
	}
	m, err := mmapRW(fd, 0, size)
	if err != nil {
		fmt.Println(err)
		return 1
	}
	for i := 0; i < half; i++ {
		m[i] = byte(i*5 + 1)
	}
	// raw fork: the child runs only the loops below and exits (no Go runtime)
	pid, _, errno := syscall.RawSyscall6(syscall.SYS_CLONE, uintptr(syscall.SIGCHLD), 0, 0, 0, 0, 0)
	if errno != 0 {
		fmt.Println("fork:", errno)
		return 1
	}
	if pid == 0 {
		code := uintptr(0)
		for i := 0; i < half; i++ {
			if m[i] != byte(i*5+1) {
				code = 3
				break
			}
		}
		for i := half; i < size; i++ {
			m[i] = byte(i*3 + 7)
		}
		syscall.RawSyscall(syscall.SYS_EXIT_GROUP, code, 0, 0)
	}
	var ws syscall.WaitStatus
	if _, err := syscall.Wait4(int(pid), &ws, 0, nil); err != nil {
		fmt.Println("wait4:", err)
		return 1
	}
	if !ws.Exited() || ws.ExitStatus() != 0 {
		fmt.Printf("forked child did not see the parent's bytes (status %v)\n", ws)
		return 0
	}
	for i := half; i < size; i++ {
		if m[i] != byte(i*3+7) {
			fmt.Printf("parent does not see the forked child's byte %d\n", i)
			return 0
		}
	}
	fmt.Println("ok")
	return 0
}

// testPoolCap: SET_POOL_CAP and SET_T3_CAP with their mirrors; the pool
// cap refuses with ENOSPC, the RAM guard with ENOMEM.
func testPoolCap(t *T) {
	d := device(t)
	pool := paramU(t, "pool_mb")
	prev, err := d.SetPoolCap(64)
	t.Check(err, "SET_POOL_CAP 64")
	t.Cleanup(func() { d.SetPoolCap(pool) })
	if prev != pool {
		t.Errorf("SET_POOL_CAP prev %d, want %d", prev, pool)
	}
	if p, g := paramU(t, "pool_mb"), paramU(t, "virtual_vram_gb"); p != 64 || g != 0 {
		t.Errorf("after SET_POOL_CAP 64: pool_mb %d virtual_vram_gb %d", p, g)
	}
	fd, err := d.Alloc(48*miB, 0)
	t.Check(err, "ALLOC 48 MiB of 64")
	_, err = d.Alloc(32*miB, 0)
	isErrno(t, err, unix.ENOSPC, "ALLOC past the pool cap")
	unix.Close(fd)
	_, err = d.SetPoolCap(0)
	isErrno(t, err, unix.EINVAL, "SET_POOL_CAP 0")
	// the cap is clamped to what leaves the safety reserve
	_, err = d.SetPoolCap(1 << 30)
	t.Check(err, "SET_POOL_CAP huge")
	info, err := d.Info()
	t.Check(err, "GET_INFO")
	if info.MaxPoolMB+info.SafetyReserveMB > info.TotalRAMMB {
		t.Errorf("pool cap %d + reserve %d > RAM %d MiB", info.MaxPoolMB, info.SafetyReserveMB, info.TotalRAMMB)
	}
	// RAM guard: more than what is available above the reserve
	size := (info.AvailableMB + 64) * miB
	if info.AvailableMB+64 < info.MaxPoolMB {
		_, err = d.Alloc(size, 0)
		isErrno(t, err, unix.ENOMEM, fmt.Sprintf("ALLOC %d MiB with %d MiB available above the reserve", size/miB, info.AvailableMB))
		if i := moduleInfo(t); i.OOMActive != 1 {
			t.Errorf("oom_active %d after the RAM guard refused, want 1", i.OOMActive)
		}
		fd, err := d.Alloc(page, 0)
		t.Check(err, "small ALLOC after the RAM guard")
		unix.Close(fd)
		if i := moduleInfo(t); i.OOMActive != 0 {
			t.Errorf("oom_active %d after a successful ALLOC, want 0", i.OOMActive)
		}
	} else {
		t.Errorf("cannot reach the RAM guard: available %d MiB, pool %d MiB", info.AvailableMB, info.MaxPoolMB)
	}
	_, err = d.SetPoolCap(pool)
	t.Check(err, "restore the pool cap")

	t3 := paramU(t, "t3_mb")
	prev, err = d.SetT3Cap(3072)
	t.Check(err, "SET_T3_CAP")
	if prev != t3 || paramU(t, "t3_mb") != 3072 || paramU(t, "nvme_pool_gb") != 3 {
		t.Errorf("SET_T3_CAP 3072: prev %d (want %d), t3_mb %d, nvme_pool_gb %d", prev, t3, paramU(t, "t3_mb"), paramU(t, "nvme_pool_gb"))
	}
	if i := moduleInfo(t); i.NVMeSwapTotalMB != 3072 {
		t.Errorf("GET_INFO nvme_swap_total_mb %d, want 3072", i.NVMeSwapTotalMB)
	}
	_, err = d.SetT3Cap(t3)
	t.Check(err, "restore the T3 cap")
}

// testReleasePID: RELEASE_PID drops ownership records, never the buffers.
func testReleasePID(t *T) {
	d := device(t)
	_, err := d.ReleasePID(0)
	t.Check(err, "RELEASE_PID 0")
	var fds []int
	for i := 0; i < 3; i++ {
		fd, err := d.Alloc(64*kiB, 0)
		t.Check(err, "ALLOC")
		fds = append(fds, fd)
	}
	n, err := d.ReleasePID(0)
	t.Check(err, "RELEASE_PID 0")
	if n != 3 {
		t.Errorf("RELEASE_PID of the caller: %d buffers, want 3", n)
	}
	if n, _ := d.ReleasePID(0); n != 0 {
		t.Errorf("RELEASE_PID again: %d, want 0", n)
	}
	m, err := mmapRW(fds[0], 0, int(64*kiB))
	t.Check(err, "mmap after RELEASE_PID")
	m[0] = 1
	unix.Munmap(m)
	for _, fd := range fds {
		unix.Close(fd)
	}
	err = func() error {
		r := kmod.ReleasePIDReq{PID: 0, Pad: 1}
		_, _, errno := syscall.Syscall(syscall.SYS_IOCTL, uintptr(d.Fd()), kmod.IoctlReleasePID, uintptr(unsafe.Pointer(&r)))
		if errno != 0 {
			return errno
		}
		return nil
	}()
	isErrno(t, err, unix.EINVAL, "RELEASE_PID with _pad set")
}
