package suite

import (
	"time"

	"golang.org/x/sys/unix"

	"github.com/greenboost/greenboost-container-toolkit/kmod"
)

func init() {
	register(50, ModeBench, "bench-t3", 5*time.Minute, benchT3)
}

// benchT3: an evict + promote cycle against a plain sequential write + read
// of the same bytes to a file beside the store (O_DIRECT, as the module's
// store I/O). Two buffers share a T2 budget that holds one: each
// begin_cpu_access of the evicted one writes the other out and reads it back
// in. The detail line gives the same through mmap, whose page mapping costs
// what mapping any resident buffer does. a and b are charged to two child
// cgroups of the one with the budget, so that their T3 usage says which one
// each step moved out: every step is checked (outside the time measured) to
// have evicted and promoted.
var sink byte

func benchT3(t *T) {
	t3Module(t)
	for _, size := range []int{4 << 20, 32 << 20} {
		parent := "gbt-bench-t3-" + itoa(size>>20)
		setLimit(t, mkcg(t, parent), uint64(size), kmod.Unlimited)
		ca, cb := mkcg(t, parent+"/a"), mkcg(t, parent+"/b")
		setLimit(t, ca, kmod.Unlimited, kmod.Unlimited) // nodes, for their usage
		setLimit(t, cb, kmod.Unlimited, kmod.Unlimited)
		enterCg(t, ca)
		a, err := allocFill(t, uint64(size), 0, 1)
		t.Check(err, "ALLOC a")
		enterCg(t, cb)
		b, err := allocFill(t, uint64(size), 0, 2)
		t.Check(err, "ALLOC b")
		if _, t3 := tiers(t, ca); t3 != uint64(size) {
			t.Fatalf("a: T3 %s after b came, want %s", human(t3), human(uint64(size)))
		}
		iters := max(4, (256<<20)/size)
		// begin_cpu_access (DMA_BUF_IOCTL_SYNC) promotes, or with viaMmap
		// an mmap, which adds the cost of mapping the pages
		cycle := func(viaMmap bool) time.Duration {
			var took time.Duration
			for i := 0; i < iters; i++ {
				fd, out := a.fd, cb // a comes in, b goes out
				if i%2 == 1 {
					fd, out = b.fd, ca
				}
				start := time.Now()
				if viaMmap {
					m, err := mmapRW(fd, 0, size)
					t.Check(err, "mmap")
					sink += m[len(m)-1]
					unix.Munmap(m)
				} else {
					t.Check(kmod.DMABufSyncIoctl(fd, kmod.DMABufSyncStart|kmod.DMABufSyncRead), "DMA_BUF_IOCTL_SYNC start")
					t.Check(kmod.DMABufSyncIoctl(fd, kmod.DMABufSyncEnd|kmod.DMABufSyncRead), "DMA_BUF_IOCTL_SYNC end")
				}
				took += time.Since(start)
				if _, t3 := tiers(t, out); t3 != uint64(size) {
					t.Fatalf("step %d (mmap %v): %s has T3 %s, want %s: the step moved nothing", i, viaMmap, shortcg(out), human(t3), human(uint64(size)))
				}
			}
			return took
		}
		path := t3Mount + "/bench.dat"
		f, err := unix.Open(path, unix.O_RDWR|unix.O_CREAT|unix.O_TRUNC|unix.O_DIRECT, 0o600)
		t.Check(err, "open "+path)
		mem, err := unix.Mmap(-1, 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
		t.Check(err, "mmap")
		fill(mem, 3)
		plain := func() time.Duration {
			start := time.Now()
			for i := 0; i < iters; i++ {
				off := int64(i%2) * int64(size)
				if n, err := unix.Pwrite(f, mem, off); err != nil || n != size {
					t.Fatalf("pwrite: %d %v", n, err)
				}
				if n, err := unix.Pread(f, mem, int64((i+1)%2)*int64(size)); err != nil || n != size {
					t.Fatalf("pread: %d %v", n, err)
				}
			}
			return time.Since(start)
		}
		for _, off := range []int64{0, int64(size)} { // both halves exist
			if n, err := unix.Pwrite(f, mem, off); err != nil || n != size {
				t.Fatalf("pwrite: %d %v", n, err)
			}
		}
		plain()
		cycle(false)
		const reps = 5
		var tg, tm, tp time.Duration
		for r := 0; r < reps; r++ { // interleaved to share the noise
			tg += cycle(false)
			tp += plain()
			tm += cycle(true)
		}
		// the part that is not I/O: mapping a resident buffer
		start := time.Now()
		for i := 0; i < iters; i++ {
			m, err := mmapRW(b.fd, 0, size)
			t.Check(err, "mmap")
			sink += m[len(m)-1]
			unix.Munmap(m)
		}
		mapOnly := time.Since(start)
		per := func(d time.Duration, n int) time.Duration { return (d / time.Duration(n)).Round(time.Microsecond) }
		bench("t3-evict-promote size=%s detail: per cycle: evict+promote by DMA_BUF_IOCTL_SYNC %v, by mmap+munmap %v (ratio %.2f); plain write+read %v; mmap+munmap of a resident buffer %v",
			human(uint64(size)), per(tg, reps*iters), per(tm, reps*iters), float64(tp)/float64(tm),
			per(tp, reps*iters), per(mapOnly, iters))
		unix.Munmap(mem)
		unix.Close(f)
		unix.Unlink(path)
		mb := float64(size) * 2 * float64(iters) * reps / (1 << 20)
		gbRate, plainRate := mb/tg.Seconds(), mb/tp.Seconds()
		ratio := gbRate / plainRate
		bench("t3-evict-promote size=%s cycles=%d evict+promote=%.0fMB/s plain-write+read=%.0fMB/s ratio=%.2f target>=0.80 %s",
			human(uint64(size)), iters*reps, gbRate, plainRate, ratio, verdict(ratio >= 0.8))
		a.check(t, "a after the bench")
		b.check(t, "b after the bench")
		closeAll([]gbuf{a, b})
	}
	expectStoreEmpty(t, "after the bench")
}
