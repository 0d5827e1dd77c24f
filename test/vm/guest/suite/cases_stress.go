package suite

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/rand"
	"os"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/greenboost/greenboost-container-toolkit/kmod"
)

func init() {
	register(210, ModeTest, "stress", 6*time.Minute, testStress)
	register(215, ModeTest, "release-stress", 3*time.Minute, testReleaseStress)
	register(220, ModeTest, "all-zero", time.Minute, testAllZero)
	register(230, ModeTest, "reload", 2*time.Minute, testReload)
}

type stressResult struct {
	Ops, EDQUOT, Other int64
	Errors             []string
	Elapsed            time.Duration
}

// stressCycles is the default number of cycles per thread; gb.stress= on the
// kernel command line overrides it.
const stressCycles = 2000

// testStress: 2 cgroups × 16 threads × N alloc/mmap/touch/munmap/close
// cycles, under a limited parent, while the test process keeps changing the
// limits and reading usage; afterwards every counter is back to zero.
func testStress(t *T) {
	cycles := stressCycles
	if v, err := strconv.Atoi(cmdline()["stress"]); err == nil && v > 0 {
		cycles = v
	}
	const threads = 16
	d := device(t)
	p := mkcg(t, "gbt-stress")
	a, b := mkcg(t, "gbt-stress/a"), mkcg(t, "gbt-stress/b")
	setLimit(t, p, 32*miB, kmod.Unlimited)
	setLimit(t, a, 8*miB, kmod.Unlimited)
	setLimit(t, b, kmod.Unlimited, kmod.Unlimited)
	before := moduleInfo(t)

	args := []string{"stress", itoa(threads), itoa(cycles)}
	ca := startChild(t, "stress-a", childOpts{cgroupDir: a.dir, args: append(args, "1")})
	cb := startChild(t, "stress-b", childOpts{cgroupDir: b.dir, args: append(args, "2")})

	stop := make(chan struct{})
	var changes, reads atomic.Int64
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		limits := []uint64{4 * miB, 8 * miB, 16 * miB, 32 * miB, kmod.Unlimited}
		rng := rand.New(rand.NewSource(3))
		for {
			select {
			case <-stop:
				return
			default:
			}
			c := []cgroup{p, a, b}[rng.Intn(3)]
			limit := limits[rng.Intn(len(limits))]
			if c == p {
				limit = max(limit, 24*miB) // the parent bounds both: keep it roomier
			}
			if _, err := d.SetLimit(c.cg, limit, kmod.Unlimited); err != nil {
				t.Errorf("SET_LIMIT during the stress: %v", err)
				return
			}
			changes.Add(1)
			if _, err := d.Usage(c.cg, false); err != nil {
				t.Errorf("GET_USAGE during the stress: %v", err)
				return
			}
			if rng.Intn(8) == 0 {
				if _, err := d.List(); err != nil {
					t.Errorf("CG_LIST during the stress: %v", err)
					return
				}
			}
			reads.Add(1)
			time.Sleep(2 * time.Millisecond)
		}
	}()
	var results [2]stressResult
	for i, ch := range []*child{ca, cb} {
		out, err := ch.wait()
		if err != nil {
			t.Errorf("stress helper %d: %v", i, err)
			continue
		}
		if err := json.Unmarshal([]byte(out), &results[i]); err != nil {
			t.Errorf("stress helper %d: %v: %q", i, err, out)
		}
	}
	close(stop)
	wg.Wait()
	for i, r := range results {
		t.Logf("cgroup %c: %d cycles (%d EDQUOT) in %v; %d other errors %v", 'a'+i, r.Ops, r.EDQUOT, r.Elapsed.Round(time.Millisecond), r.Other, r.Errors)
		if r.Other != 0 {
			t.Errorf("cgroup %c: %d errors other than EDQUOT: %v", 'a'+i, r.Other, r.Errors)
		}
		if r.Ops != int64(threads*cycles) {
			t.Errorf("cgroup %c: %d cycles, want %d", 'a'+i, r.Ops, threads*cycles)
		}
	}
	t.Logf("%d limit changes, %d usage reads meanwhile", changes.Load(), reads.Load())
	for i, r := range results {
		if r.EDQUOT == 0 || r.Ops-r.EDQUOT < r.Ops/5 {
			t.Errorf("cgroup %c: %d of %d cycles hit EDQUOT; want some, and at least a fifth allocating", 'a'+i, r.EDQUOT, r.Ops)
		}
	}
	for _, c := range []cgroup{p, a, b} {
		expectUsage(t, c, 0, 0, "after the stress")
	}
	after := moduleInfo(t)
	if after.ActiveBuffers != before.ActiveBuffers || after.AllocatedMB != before.AllocatedMB {
		t.Errorf("module-wide after the stress: %d buffers, %d MiB; before %d, %d",
			after.ActiveBuffers, after.AllocatedMB, before.ActiveBuffers, before.AllocatedMB)
	}
}

// testReleaseStress: allocations race CG_RELEASE (plain, FAIL_IF_BUSY,
// recursive from the parent) and SET_LIMIT taking the nodes back. The race
// of a release with a buffer that has looked its nodes up but not yet taken
// them cannot be forced from user space; this runs it often, and afterwards
// every node is freed and nothing is left charged.
func testReleaseStress(t *T) {
	const threads, cycles = 4, 400
	d := device(t)
	p := mkcg(t, "gbt-relstress")
	a := mkcg(t, "gbt-relstress/a")
	before := moduleInfo(t)
	ch := startChild(t, "relstress", childOpts{cgroupDir: a.dir, args: []string{"stress", itoa(threads), itoa(cycles), "5"}})
	stop := make(chan struct{})
	var releases, busy atomic.Int64
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		rng := rand.New(rand.NewSource(5))
		for {
			select {
			case <-stop:
				return
			default:
			}
			for _, c := range []cgroup{p, a} {
				if _, err := d.SetLimit(c.cg, 16*miB, kmod.Unlimited); err != nil {
					t.Errorf("SET_LIMIT during the stress: %v", err)
					return
				}
			}
			time.Sleep(time.Duration(rng.Intn(2000)) * time.Microsecond)
			c, flags := a, uint32(0)
			if rng.Intn(3) == 0 {
				c, flags = p, kmod.CgFlagRecursive
			}
			if rng.Intn(2) == 0 {
				flags |= kmod.CgFlagFailIfBusy
			}
			_, err := d.Release(c.cg, flags)
			switch {
			case errors.Is(err, unix.EBUSY) || errors.Is(err, unix.ENOENT):
				busy.Add(1)
			case err != nil:
				t.Errorf("CG_RELEASE during the stress: %v", err)
				return
			}
			releases.Add(1)
		}
	}()
	out, err := ch.wait()
	close(stop)
	wg.Wait()
	var res stressResult
	if err == nil {
		err = json.Unmarshal([]byte(out), &res)
	}
	t.Check(err, "stress helper")
	t.Logf("%d cycles (%d EDQUOT) in %v, %d releases (%d EBUSY or ENOENT)",
		res.Ops, res.EDQUOT, res.Elapsed.Round(time.Millisecond), releases.Load(), busy.Load())
	if res.Other != 0 || res.Ops != threads*cycles {
		t.Errorf("%d of %d cycles, %d errors other than EDQUOT: %v", res.Ops, threads*cycles, res.Other, res.Errors)
	}
	for _, c := range []cgroup{a, p} {
		expectUsage(t, c, 0, 0, "after the stress")
		expectNodeFreed(t, c, "a released node after the stress", true)
		if _, err := d.Release(c.cg, 0); err != nil && !errors.Is(err, unix.ENOENT) {
			t.Errorf("final release of %s: %v", shortcg(c), err)
		}
	}
	after := moduleInfo(t)
	if after.ActiveBuffers != before.ActiveBuffers || after.AllocatedMB != before.AllocatedMB {
		t.Errorf("module-wide after the stress: %d buffers, %d MiB; before %d, %d",
			after.ActiveBuffers, after.AllocatedMB, before.ActiveBuffers, before.AllocatedMB)
	}
}

// childStress: THREADS goroutines (each on its own OS thread) × CYCLES.
func childStress(args []string) int {
	if len(args) < 3 {
		fmt.Fprintln(os.Stderr, "stress THREADS CYCLES SEED")
		return 2
	}
	threads, _ := strconv.Atoi(args[0])
	cycles, _ := strconv.Atoi(args[1])
	seed, _ := strconv.Atoi(args[2])
	d, err := kmod.Open("")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	// mostly small buffers: zeroing megabytes is slow under TCG
	sizes := []uint64{4 << 10, 4 << 10, 8 << 10, 16 << 10, 16 << 10, 64 << 10, 64 << 10, 128 << 10,
		256 << 10, 256 << 10, 512 << 10, 1 << 20, 2 << 20, 2<<20 + 1}
	var res stressResult
	var mu sync.Mutex
	start := time.Now()
	var wg sync.WaitGroup
	for w := 0; w < threads; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			runtime.LockOSThread()
			rng := rand.New(rand.NewSource(int64(seed*1000 + w)))
			var ops, edquot, other int64
			var errs []string
			fail := func(err error) {
				other++
				if len(errs) < 5 {
					errs = append(errs, err.Error())
				}
			}
			for i := 0; i < cycles; i++ {
				ops++
				size := sizes[rng.Intn(len(sizes))]
				var flags uint32
				if rng.Intn(4) == 0 {
					flags = kmod.AllocNoHugepage
				}
				fd, err := d.Alloc(size, flags)
				if errors.Is(err, unix.EDQUOT) {
					edquot++
					time.Sleep(100 * time.Microsecond)
					continue
				}
				if err != nil {
					fail(err)
					continue
				}
				n := int(size+4095) &^ 4095
				m, err := mmapRW(fd, 0, n)
				if err != nil {
					fail(fmt.Errorf("mmap %d: %w", n, err))
					unix.Close(fd)
					continue
				}
				if rng.Intn(8) == 0 {
					if err := kmod.DMABufSyncIoctl(fd, kmod.DMABufSyncStart|kmod.DMABufSyncRW); err != nil {
						fail(err)
					}
				}
				tag := byte(w + i)
				m[0], m[n-1] = tag, tag
				if m[0] != tag || m[n-1] != tag {
					fail(errors.New("mapping did not keep a byte"))
				}
				if err := unix.Munmap(m); err != nil {
					fail(err)
				}
				if err := unix.Close(fd); err != nil {
					fail(err)
				}
			}
			mu.Lock()
			res.Ops += ops
			res.EDQUOT += edquot
			res.Other += other
			res.Errors = append(res.Errors, errs...)
			mu.Unlock()
		}(w)
	}
	wg.Wait()
	res.Elapsed = time.Since(start)
	json.NewEncoder(os.Stdout).Encode(res)
	return 0
}

// testAllZero: after every case, no node has anything charged.
func testAllZero(t *T) {
	d := device(t)
	list, err := d.List()
	t.Check(err, "CG_LIST")
	for _, e := range list {
		if e.T2Usage != 0 || e.T3Usage != 0 || e.NrBuffers != 0 {
			t.Errorf("node %d (level %d, flags %#x): %d bytes in %d buffers still charged", e.CgroupID, e.Level, e.NodeFlags, e.T2Usage, e.NrBuffers)
		}
	}
	info, err := d.Info()
	t.Check(err, "GET_INFO")
	if info.ActiveBuffers != 0 || info.AllocatedMB != 0 {
		t.Errorf("module-wide: %d buffers, %d MiB still allocated", info.ActiveBuffers, info.AllocatedMB)
	}
	t.Logf("%d nodes left, none charged", len(list))
}

// testReload: rmmod refuses while a buffer lives, works when none does, and
// the module loads again (by name, from /lib/modules/$(uname -r)) with
// parameters and works.
func testReload(t *T) {
	d := device(t)
	fd, err := d.Alloc(2*miB, 0)
	t.Check(err, "ALLOC")
	closeDevice()
	err = unix.DeleteModule(kmod.ModuleName, unix.O_NONBLOCK)
	if err == nil {
		t.Fatalf("rmmod with a live buffer succeeded")
	}
	if !errors.Is(err, unix.EWOULDBLOCK) && !errors.Is(err, unix.EBUSY) {
		t.Errorf("rmmod with a live buffer: %v, want EBUSY/EWOULDBLOCK", err)
	}
	unix.Close(fd)
	for i := 0; i < 100; i++ {
		if err = unix.DeleteModule(kmod.ModuleName, unix.O_NONBLOCK); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Check(err, "rmmod")
	if _, err := os.Stat("/sys/module/greenboost"); err == nil {
		t.Errorf("/sys/module/greenboost still there after rmmod")
	}
	if _, err := os.Stat(devPath); err == nil {
		t.Errorf("%s still there after rmmod", devPath)
	}
	t.Check(kmod.Ensure(kmod.LoadOptions{Module: kmod.ModuleName, Params: "pool_mb=256 safety_reserve_mb=64"}), "Ensure(greenboost) by name")
	if p, r := paramU(t, "pool_mb"), paramU(t, "safety_reserve_mb"); p != 256 || r != 64 {
		t.Errorf("parameters after reload: pool_mb %d safety_reserve_mb %d, want 256, 64", p, r)
	}
	d = device(t)
	list, err := d.List()
	t.Check(err, "CG_LIST")
	if len(list) != 0 {
		t.Errorf("a fresh module lists %d nodes", len(list))
	}
	c := mkcg(t, "gbt-reload")
	setLimit(t, c, 4*miB, kmod.Unlimited)
	ch := startChild(t, "reload", childOpts{cgroupDir: c.dir})
	n, r := allocUntil(t, ch, 2*miB, 10)
	if n != 2 || r.Errno != int(unix.EDQUOT) {
		t.Errorf("after reload: %d × 2 MiB then %q; want 2 then EDQUOT", n, r.Err)
	}
	ch.exit()
	expectUsage(t, c, 0, 0, "after reload and exit")
	_, err = d.Alloc(512*miB, 0)
	isErrno(t, err, unix.ENOSPC, "ALLOC past pool_mb=256")
}
