package suite

import (
	"fmt"
	"os"
	"strconv"
	"time"

	"golang.org/x/sys/unix"

	"github.com/greenboost/greenboost-container-toolkit/kmod"
	"github.com/greenboost/greenboost-container-toolkit/test/vm/guest/guesttest"
)

func init() {
	register(30, ModeBench, "bench-alloc-vs-anon", 5*time.Minute, benchAllocVsAnon)
	register(40, ModeBench, "bench-charge-depth", 3*time.Minute, benchChargeDepth)
}

func bench(format string, args ...any) {
	guesttest.Out("BENCH " + fmt.Sprintf(format, args...))
}

// touch writes one byte per page.
func touch(m []byte) {
	for i := 0; i < len(m); i += 4096 {
		m[i] = 1
	}
}

// benchAllocVsAnon: ALLOC + mmap + touch + munmap + close against an
// anonymous mmap + touch + munmap of the same size.
func benchAllocVsAnon(t *T) {
	d := device(t)
	for _, size := range []int{64 << 10, 2 << 20, 16 << 20, 64 << 20} {
		iters := max(8, (256<<20)/size)
		iters = min(iters, 2000)
		run := func(gb bool) time.Duration {
			start := time.Now()
			for i := 0; i < iters; i++ {
				var m []byte
				var err error
				fd := -1
				if gb {
					fd, err = d.Alloc(uint64(size), 0)
					t.Check(err, "ALLOC")
					m, err = mmapRW(fd, 0, size)
				} else {
					m, err = unix.Mmap(-1, 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
				}
				t.Check(err, "mmap")
				touch(m)
				unix.Munmap(m)
				if fd >= 0 {
					unix.Close(fd)
				}
			}
			return time.Since(start)
		}
		run(true) // warm up
		run(false)
		var tg, ta time.Duration
		for r := 0; r < 3; r++ { // interleave to share the noise
			tg += run(true)
			ta += run(false)
		}
		mb := float64(size) * float64(iters) * 3 / (1 << 20)
		gbRate, anonRate := mb/tg.Seconds(), mb/ta.Seconds()
		ratio := gbRate / anonRate
		bench("alloc-mmap-touch size=%s iters=%d greenboost=%.0fMB/s anon=%.0fMB/s ratio=%.2f target>=0.90 %s",
			human(uint64(size)), iters*3, gbRate, anonRate, ratio, verdict(ratio >= 0.9))
	}
}

func verdict(ok bool) string {
	if ok {
		return "ok"
	}
	return "BELOW-TARGET"
}

// benchChargeDepth: ns per ALLOC(4 KiB)+close charged to 1 limited level vs
// 3 limited levels (and no limited level), measured in helpers in those
// cgroups.
func benchChargeDepth(t *T) {
	none := mkcg(t, "gbb-none")
	one := mkcg(t, "gbb-one")
	l1 := mkcg(t, "gbb-l1")
	l2 := mkcg(t, "gbb-l1/l2")
	l3 := mkcg(t, "gbb-l1/l2/l3")
	setLimit(t, one, 1<<40, kmod.Unlimited)
	for _, c := range []cgroup{l1, l2, l3} {
		setLimit(t, c, 1<<40, kmod.Unlimited)
	}
	const iters = 10000
	res := map[string]float64{}
	for round := 0; round < 5; round++ { // interleaved; round 0 warms up; best of the rest
		for _, tc := range []struct {
			name string
			c    cgroup
		}{{"0-levels", none}, {"1-level", one}, {"3-levels", l3}} {
			ch := startChild(t, tc.name, childOpts{cgroupDir: tc.c.dir, args: []string{"bench", itoa(iters)}})
			out, err := ch.wait()
			t.Check(err, "bench helper "+tc.name)
			ns, err := strconv.ParseFloat(trimNL(out), 64)
			t.Check(err, "bench helper output "+out)
			if round > 0 && (res[tc.name] == 0 || ns < res[tc.name]) {
				res[tc.name] = ns
			}
		}
	}
	bench("charge-depth alloc4k+close (best of 4 × %d) 0-levels=%.0fns/op 1-level=%.0fns/op 3-levels=%.0fns/op 3-vs-1=%+.0fns/op (%.2fx)",
		iters, res["0-levels"], res["1-level"], res["3-levels"], res["3-levels"]-res["1-level"], res["3-levels"]/res["1-level"])
	for _, c := range []cgroup{one, l1, l2, l3} {
		expectUsage(t, c, 0, 0, "after the benchmark")
	}
}

func trimNL(s string) string {
	for len(s) > 0 && (s[len(s)-1] == '\n' || s[len(s)-1] == ' ') {
		s = s[:len(s)-1]
	}
	return s
}

// childBench prints ns per ALLOC(4 KiB)+close.
func childBench(args []string) int {
	iters := 10000
	if len(args) > 0 {
		iters, _ = strconv.Atoi(args[0])
	}
	d, err := kmod.Open("")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	start := time.Now()
	for i := 0; i < iters; i++ {
		fd, err := d.Alloc(4096, 0)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		unix.Close(fd)
	}
	fmt.Println(float64(time.Since(start).Nanoseconds()) / float64(iters))
	return 0
}
