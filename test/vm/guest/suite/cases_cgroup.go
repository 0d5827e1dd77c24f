package suite

import (
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/greenboost/greenboost-container-toolkit/hook"
	"github.com/greenboost/greenboost-container-toolkit/kmod"
)

// The cgroup cases run in both layouts: on cgroup v2 (ModeTest) and, named
// v1-*, in the v1 memory hierarchy of a hybrid host (ModeV1).
func init() {
	registerBoth(40, "cgroup-id", time.Minute, testCgroupID)
	registerBoth(50, "limits-edquot", time.Minute, testLimits)
	registerBoth(60, "parent-limit", time.Minute, testParentLimit)
	register(70, ModeTest, "rounding", time.Minute, testRounding)
	registerBoth(80, "pin-charged", time.Minute, testPin)
	register(90, ModeTest, "exit-uncharge", time.Minute, testExitUncharge)
	register(100, ModeTest, "scm-rights", time.Minute, testSCMRights)
	registerBoth(110, "release", time.Minute, testRelease)
	register(115, ModeTest, "release-during-alloc", 2*time.Minute, testReleaseDuringAlloc)
	registerBoth(120, "list-dead", time.Minute, testListDead)
	registerBoth(125, "setlimit-dead", time.Minute, testSetLimitDead)
	register(130, ModeTest, "eperm-userns", time.Minute, func(t *T) { testEPERM(t, childOpts{userns: true}) })
	registerBoth(140, "eperm-nobody", time.Minute, func(t *T) { testEPERM(t, childOpts{uid: 65534}) })
	register(145, ModeTest, "cgroup-namespace", time.Minute, testCgroupNamespace)
	register(150, ModeTest, "bad-args", time.Minute, testBadArgs)
}

func registerBoth(order int, name string, timeout time.Duration, fn func(t *T)) {
	register(order, ModeTest, name, timeout, fn)
	register(order, ModeV1, "v1-"+name, timeout, fn)
}

// testCgroupID: kmod.CgroupID (the directory inode) is CG_QUERY's id, and
// the hook resolves a process to that directory and id.
func testCgroupID(t *T) {
	q, err := device(t).Query()
	t.Check(err, "CG_QUERY")
	rootID, err := kmod.CgroupID(cgLayout.root)
	t.Check(err, "CgroupID")
	if q.ABIVersion != kmod.CgABIVersion || q.Hierarchy != cgLayout.hierarchy || q.Level != 0 ||
		q.CgroupID != rootID || q.Features&kmod.CgFeatT2 == 0 || q.Size != 32 {
		t.Errorf("CG_QUERY in the root cgroup = %+v; want abi 1, hierarchy %d, level 0, id %d, T2 feature", q, cgLayout.hierarchy, rootID)
	}
	c := mkcg(t, "gbt-id/a/b")
	ch := startChild(t, "b", childOpts{cgroupDir: c.dir})
	r := ch.must(request{Op: "query"})
	if r.Query.CgroupID != c.cg.ID || r.Query.Level != 3 || r.Query.Hierarchy != cgLayout.hierarchy {
		t.Errorf("CG_QUERY in gbt-id/a/b = %+v; want id %d (CgroupID), level 3", r.Query, c.cg.ID)
	}
	out := ch.must(request{Op: "cgroup"}).Output
	if !slices.ContainsFunc(strings.Split(out, "\n"), func(l string) bool { return strings.HasSuffix(l, cgLayout.procLine("/gbt-id/a/b")) }) {
		t.Errorf("helper's /proc/self/cgroup has no %q line:\n%s", cgLayout.procLine("/gbt-id/a/b"), out)
	}
	// a usage report names the same id
	if u := ch.must(request{Op: "usage", Self: true}).Usage; u.CgroupID != c.cg.ID || u.Hierarchy != cgLayout.hierarchy {
		t.Errorf("GET_USAGE self in gbt-id/a/b names %d/%d, want %d", u.Hierarchy, u.CgroupID, c.cg.ID)
	}
	// what the hook computes for a container's process
	pid := ch.cmd.Process.Pid
	for _, h := range []uint32{cgLayout.hierarchy, hook.HierarchyAuto} {
		cg, err := hook.ResolveCgroup(pid, h)
		if err != nil {
			t.Errorf("hook.ResolveCgroup(%d, %#x): %v", pid, h, err)
			continue
		}
		if cg.Hierarchy != cgLayout.hierarchy || cg.ID != c.cg.ID || cg.Path != c.dir {
			t.Errorf("hook.ResolveCgroup(%d, %#x) = %+v; want hierarchy %d, id %d, path %s", pid, h, cg, cgLayout.hierarchy, c.cg.ID, c.dir)
		}
	}
	// an id of the other hierarchy, and one that no cgroup has
	_, err = device(t).SetLimit(kmod.Cgroup{Hierarchy: otherHierarchy(), ID: c.cg.ID}, miB, kmod.Unlimited)
	isErrno(t, err, unix.EINVAL, "SET_LIMIT in the other hierarchy")
	_, err = device(t).SetLimit(kmod.Cgroup{Hierarchy: cgLayout.hierarchy, ID: 1 << 40}, miB, kmod.Unlimited)
	isErrno(t, err, unix.ENOENT, "SET_LIMIT of an unknown id")
	ch.exit()
}

// allocUntil allocates chunk-sized buffers in ch until an error; it returns
// how many worked and the final answer.
func allocUntil(t *T, ch *child, chunk uint64, max int) (int, response) {
	for i := 0; i < max; i++ {
		r := ch.do(request{Op: "alloc", Size: chunk})
		if r.Errno != 0 {
			return i, r
		}
	}
	t.Fatalf("%d allocations of %s all worked", max, human(chunk))
	return 0, response{}
}

// testLimits: two sibling cgroups with their own budgets; EDQUOT at each
// budget, independent of the other; limit changes take effect at once.
func testLimits(t *T) {
	a, b := mkcg(t, "gbt-lim/a"), mkcg(t, "gbt-lim/b")
	setLimit(t, a, 8*miB, kmod.Unlimited)
	setLimit(t, b, 16*miB, kmod.Unlimited)
	ca := startChild(t, "a", childOpts{cgroupDir: a.dir})
	cb := startChild(t, "b", childOpts{cgroupDir: b.dir})

	n, r := allocUntil(t, ca, 2*miB, 100)
	if n != 4 || r.Errno != int(unix.EDQUOT) {
		t.Errorf("cgroup a (8 MiB): %d × 2 MiB then %q; want 4 then EDQUOT", n, r.Err)
	}
	n, r = allocUntil(t, cb, 2*miB, 100)
	if n != 8 || r.Errno != int(unix.EDQUOT) {
		t.Errorf("cgroup b (16 MiB): %d × 2 MiB then %q; want 8 then EDQUOT", n, r.Err)
	}
	ua := expectUsage(t, a, 8*miB, 4, "a full")
	expectUsage(t, b, 16*miB, 8, "b full")
	if ua.T2Max != 8*miB || ua.T2EffectiveMax != 8*miB || ua.T3Max != kmod.Unlimited || ua.T2Failcnt != 1 ||
		ua.NodeFlags&(kmod.CgNodeHasLimit|kmod.CgNodeAlive) != kmod.CgNodeHasLimit|kmod.CgNodeAlive {
		t.Errorf("usage of a = %+v; want max 8 MiB, effective 8 MiB, failcnt 1, HAS_LIMIT|ALIVE", ua)
	}
	// what the helper sees of itself
	if u := ca.must(request{Op: "usage", Self: true}).Usage; u.CgroupID != a.cg.ID || u.T2Usage != 8*miB {
		t.Errorf("GET_USAGE self in a = id %d usage %d; want %d, 8 MiB", u.CgroupID, u.T2Usage, a.cg.ID)
	}
	// raise: one more fits; prev reported
	l, err := device(t).SetLimit(a.cg, 10*miB, kmod.Unlimited)
	t.Check(err, "raise a to 10 MiB")
	if l.PrevT2Max != 8*miB || l.PrevT3Max != kmod.Unlimited {
		t.Errorf("SET_LIMIT prev = %s/%s, want 8 MiB/unlimited", human(l.PrevT2Max), human(l.PrevT3Max))
	}
	fd := ca.alloc(2 * miB)
	wantErrno(t, ca.do(request{Op: "alloc", Size: page}), unix.EDQUOT, "a at 10 MiB, one more page")
	// lower below usage: no allocation, even after freeing one buffer
	setLimit(t, a, 4*miB, kmod.Unlimited)
	ca.must(request{Op: "close", FD: fd})
	wantErrno(t, ca.do(request{Op: "alloc", Size: page}), unix.EDQUOT, "a over a lowered limit")
	// T2 only: the T3 limit stays
	_, err = device(t).SetLimits(a.cg, kmod.CgFlagT3, 0, 1*miB)
	t.Check(err, "set T3 only")
	if u := usage(t, a); u.T2Max != 4*miB || u.T3Max != 1*miB {
		t.Errorf("after a T3-only SET_LIMIT: T2 max %s, T3 max %s; want 4 MiB, 1 MiB", human(u.T2Max), human(u.T3Max))
	}
	// unlimited
	setLimit(t, a, kmod.Unlimited, kmod.Unlimited)
	ca.alloc(6 * miB)
	expectUsage(t, a, 14*miB, 5, "a unlimited")
	if u := usage(t, a); u.NodeFlags&kmod.CgNodeHasLimit != 0 {
		t.Errorf("a without limits still has HAS_LIMIT (%#x)", u.NodeFlags)
	}
	ca.exit()
	cb.exit()
	expectUsage(t, a, 0, 0, "a after its process exited")
	expectUsage(t, b, 0, 0, "b after its process exited")
}

// testParentLimit: a parent's budget bounds its children together, whether
// or not they have nodes of their own.
func testParentLimit(t *T) {
	p := mkcg(t, "gbt-par")
	a, b := mkcg(t, "gbt-par/a"), mkcg(t, "gbt-par/b")
	deep := mkcg(t, "gbt-par/b/c/d")
	setLimit(t, p, 8*miB, kmod.Unlimited)
	setLimit(t, a, kmod.Unlimited, kmod.Unlimited) // a has a node, b does not
	ca := startChild(t, "a", childOpts{cgroupDir: a.dir})
	cb := startChild(t, "b", childOpts{cgroupDir: b.dir})
	cd := startChild(t, "d", childOpts{cgroupDir: deep.dir})

	for i := 0; i < 3; i++ {
		ca.alloc(2 * miB)
	}
	cb.alloc(1 * miB)
	wantErrno(t, cb.do(request{Op: "alloc", Size: 2 * miB}), unix.EDQUOT, "b: 7 MiB used of the parent's 8, 2 MiB more")
	wantErrno(t, ca.do(request{Op: "alloc", Size: 2 * miB}), unix.EDQUOT, "a: 7 MiB used of the parent's 8, 2 MiB more")
	wantErrno(t, cd.do(request{Op: "alloc", Size: 2 * miB}), unix.EDQUOT, "b/c/d: 7 MiB used of the parent's 8, 2 MiB more")
	cd.alloc(1 * miB)
	expectUsage(t, p, 8*miB, 5, "parent")
	expectUsage(t, a, 6*miB, 3, "a")
	ua := usage(t, a)
	if ua.T2EffectiveMax != 8*miB || ua.T2Max != kmod.Unlimited {
		t.Errorf("a: max %s effective %s; want unlimited, 8 MiB (the parent's)", human(ua.T2Max), human(ua.T2EffectiveMax))
	}
	ub := usage(t, b) // no node: zero, but the effective limit is the parent's
	if ub.T2Usage != 0 || ub.T2EffectiveMax != 8*miB || ub.NodeFlags != kmod.CgNodeAlive {
		t.Errorf("b (no node): %+v; want usage 0, effective 8 MiB, flags ALIVE", ub)
	}
	if pu := usage(t, p); pu.T2Failcnt != 3 {
		t.Errorf("parent failcnt %d, want 3", pu.T2Failcnt)
	}
	if au := usage(t, a); au.T2Failcnt != 0 {
		t.Errorf("a failcnt %d, want 0 (the parent refused)", au.T2Failcnt)
	}
	ca.exit()
	cb.must(request{Op: "alloc", Size: 6 * miB})
	expectUsage(t, p, 8*miB, 3, "parent after a exited and b took 6 MiB")
	cb.exit()
	cd.exit()
	expectUsage(t, p, 0, 0, "parent at the end")
	expectUsage(t, a, 0, 0, "a at the end")
}

// testRounding: what is charged is what the DMA-BUF holds: pages below
// 2 MiB, whole 2 MiB chunks from 2 MiB on, pages with NO_HUGEPAGE.
func testRounding(t *T) {
	c := mkcg(t, "gbt-round")
	setLimit(t, c, kmod.Unlimited, kmod.Unlimited)
	ch := startChild(t, "r", childOpts{cgroupDir: c.dir})
	var total uint64
	for _, tc := range []struct {
		size, flags, want uint64
	}{
		{1, 0, page},
		{5000, 0, 2 * page},
		{2*miB - 1, 0, 2 * miB},
		{2 * miB, 0, 2 * miB},
		{2*miB + 1, 0, 4 * miB},
		{5 * miB, 0, 6 * miB},
		{2*miB + 1, uint64(kmod.AllocNoHugepage), 2*miB + page},
		{5 * miB, uint64(kmod.AllocNoHugepage | kmod.AllocWeights), 5 * miB},
	} {
		fd := ch.must(request{Op: "alloc", Size: tc.size, Flags: uint32(tc.flags)}).FD
		total += tc.want
		size := ch.must(request{Op: "size", FD: fd}).N
		u := usage(t, c)
		if uint64(size) != tc.want {
			t.Errorf("ALLOC %d (flags %#x): DMA-BUF size %d, want %d", tc.size, tc.flags, size, tc.want)
		}
		if u.T2Usage != total {
			t.Errorf("ALLOC %d (flags %#x): usage %d, want %d (+%d)", tc.size, tc.flags, u.T2Usage, total, tc.want)
			total = u.T2Usage
		}
	}
	// exactly at a limit: fits; one page more does not
	setLimit(t, c, total+2*miB, kmod.Unlimited)
	wantErrno(t, ch.do(request{Op: "alloc", Size: 2*miB + 1}), unix.EDQUOT, "2 MiB + 1 rounds to 4 MiB, over the limit")
	ch.must(request{Op: "alloc", Size: 2 * miB})
	wantErrno(t, ch.do(request{Op: "alloc", Size: 1}), unix.EDQUOT, "a page over a full limit")
	ch.exit()
	expectUsage(t, c, 0, 0, "after exit")
}

// testPin: PIN_USER_PTR is charged like ALLOC (page rounded) and uncharged
// on close; a budget refuses it.
func testPin(t *T) {
	c := mkcg(t, "gbt-pin")
	setLimit(t, c, 4*miB, kmod.Unlimited)
	ch := startChild(t, "pin", childOpts{cgroupDir: c.dir})
	fd := ch.must(request{Op: "pin", Size: 3 * miB}).FD
	expectUsage(t, c, 3*miB, 1, "3 MiB pinned")
	if n := ch.must(request{Op: "size", FD: fd}).N; n != int64(3*miB) {
		t.Errorf("pinned DMA-BUF size %d, want 3 MiB", n)
	}
	wantErrno(t, ch.do(request{Op: "pin", Size: 2 * miB}), unix.EDQUOT, "pin 2 MiB more with 1 MiB left")
	fd2 := ch.must(request{Op: "pin", Size: 1*miB - page + 1}).FD
	expectUsage(t, c, 4*miB, 2, "pinned 1 MiB - 4095 bytes (rounded to a page)")
	wantErrno(t, ch.do(request{Op: "pin", Size: 2 * page, Off: 100}), unix.EINVAL, "pin at an unaligned address")
	ch.must(request{Op: "close", FD: fd})
	expectUsage(t, c, 1*miB, 1, "after closing the 3 MiB pin")
	ch.must(request{Op: "close", FD: fd2})
	expectUsage(t, c, 0, 0, "after closing both")
	ch.pinThenExit(t)
	expectUsage(t, c, 0, 0, "after exit with a pin open")
}

func (c *child) pinThenExit(t *T) {
	c.must(request{Op: "pin", Size: 2 * miB})
	c.exit()
}

// testExitUncharge: processes that exit without closing anything, with
// buffers mapped, leave exactly zero behind.
func testExitUncharge(t *T) {
	c := mkcg(t, "gbt-exit")
	setLimit(t, c, 64*miB, kmod.Unlimited)
	before, err := device(t).Info()
	t.Check(err, "GET_INFO")
	for round := 0; round < 3; round++ {
		ch := startChild(t, "exit", childOpts{cgroupDir: c.dir})
		var want uint64
		for i, size := range []uint64{page, 64 * kiB, 2 * miB, 3 * miB, 8 * miB} {
			fd := ch.alloc(size)
			if i%2 == 0 {
				r := request{Op: "mmap", FD: fd, Size: size}
				if size > 2*miB {
					r.Size = 2 * miB
				}
				ch.must(r)
			}
			want += map[uint64]uint64{page: page, 64 * kiB: 64 * kiB, 2 * miB: 2 * miB, 3 * miB: 4 * miB, 8 * miB: 8 * miB}[size]
		}
		ch.must(request{Op: "pin", Size: 1 * miB})
		want += 1 * miB
		expectUsage(t, c, want, 6, "before exit")
		ch.exit()
		expectUsage(t, c, 0, 0, "after exit")
	}
	after, err := device(t).Info()
	t.Check(err, "GET_INFO")
	if after.ActiveBuffers != before.ActiveBuffers || after.AllocatedMB != before.AllocatedMB {
		t.Errorf("module-wide: %d buffers, %d MiB before; %d, %d after", before.ActiveBuffers, before.AllocatedMB, after.ActiveBuffers, after.AllocatedMB)
	}
}

// testSCMRights: a buffer handed to a process in another cgroup stays
// charged to the allocator's cgroup until the last holder closes it.
func testSCMRights(t *T) {
	a, b := mkcg(t, "gbt-scm-a"), mkcg(t, "gbt-scm-b")
	setLimit(t, a, 16*miB, kmod.Unlimited)
	setLimit(t, b, 16*miB, kmod.Unlimited)
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	t.Check(err, "socketpair")
	sa, sb := os.NewFile(uintptr(fds[0]), "sa"), os.NewFile(uintptr(fds[1]), "sb")
	defer sa.Close()
	defer sb.Close()
	ca := startChild(t, "sender", childOpts{cgroupDir: a.dir, sock: sa})
	cb := startChild(t, "receiver", childOpts{cgroupDir: b.dir, sock: sb})
	fd := ca.alloc(4 * miB)
	ca.must(request{Op: "sendfd", FD: fd})
	rfd := cb.must(request{Op: "recvfd"}).FD
	ca.must(request{Op: "close", FD: fd})
	ca.exit()
	expectUsage(t, a, 4*miB, 1, "a after the sender closed and exited, receiver holding it")
	expectUsage(t, b, 0, 0, "b (receiver's cgroup)")
	if n := cb.must(request{Op: "size", FD: rfd}).N; n != int64(4*miB) {
		t.Errorf("received DMA-BUF size %d", n)
	}
	cb.must(request{Op: "mmap", FD: rfd, Size: 4 * miB})
	// the receiver allocates against its own budget only
	cb.alloc(16 * miB)
	wantErrno(t, cb.do(request{Op: "alloc", Size: page}), unix.EDQUOT, "b full (the received buffer is not b's)")
	cb.must(request{Op: "close", FD: rfd})
	expectUsage(t, a, 4*miB, 1, "a while the receiver still maps it")
	cb.exit()
	expectUsage(t, a, 0, 0, "a after the receiver exited")
	expectUsage(t, b, 0, 0, "b after the receiver exited")
}

// testRelease: CG_RELEASE busy / not busy / unknown / recursive.
func testRelease(t *T) {
	d := device(t)
	c := mkcg(t, "gbt-rel")
	setLimit(t, c, 8*miB, kmod.Unlimited)
	ch := startChild(t, "rel", childOpts{cgroupDir: c.dir})
	fd := ch.alloc(2 * miB)
	ch.alloc(page)

	r, err := d.Release(c.cg, kmod.CgFlagFailIfBusy)
	isErrno(t, err, unix.EBUSY, "FAIL_IF_BUSY with live buffers")
	if r.T2Live != 2*miB+page || r.NrLiveBuffers != 2 || r.NrNodesReleased != 0 {
		t.Errorf("busy report %+v; want 2 MiB + 4 KiB live in 2 buffers, nothing released", r)
	}
	if u := usage(t, c); u.T2Max != 8*miB || u.NodeFlags&kmod.CgNodeReleased != 0 {
		t.Errorf("after EBUSY: max %s flags %#x; want the limit kept, not released", human(u.T2Max), u.NodeFlags)
	}
	r, err = d.Release(c.cg, 0)
	t.Check(err, "release a busy cgroup")
	if r.T2Live != 2*miB+page || r.NrLiveBuffers != 2 || r.NrNodesReleased != 1 {
		t.Errorf("release report %+v; want 2 MiB + 4 KiB live, 2 buffers, 1 node", r)
	}
	u := usage(t, c)
	if u.T2Max != kmod.Unlimited || u.NodeFlags&kmod.CgNodeReleased == 0 || u.T2Usage != 2*miB+page {
		t.Errorf("after release: %+v; want unlimited, RELEASED, usage kept", u)
	}
	// the buffers still work; new ones are not charged to the released node
	ch.must(request{Op: "mmap", FD: fd, Size: 2 * miB})
	ch.alloc(page)
	expectUsage(t, c, 2*miB+page, 2, "released node: new allocations not charged")
	ch.exit()
	expectNodeFreed(t, c, "a released node after its last buffer went", false)

	// not busy
	c2 := mkcg(t, "gbt-rel2")
	setLimit(t, c2, 8*miB, kmod.Unlimited)
	r, err = d.Release(c2.cg, kmod.CgFlagFailIfBusy)
	t.Check(err, "FAIL_IF_BUSY on an idle node")
	if r.T2Live != 0 || r.NrLiveBuffers != 0 || r.NrNodesReleased != 1 {
		t.Errorf("idle release %+v", r)
	}
	_, err = d.Release(c2.cg, 0)
	isErrno(t, err, unix.ENOENT, "release twice")

	// unknown ids
	_, err = d.Release(kmod.Cgroup{Hierarchy: cgLayout.hierarchy, ID: 1 << 40}, 0)
	isErrno(t, err, unix.ENOENT, "release of an unknown id")
	c3 := mkcg(t, "gbt-rel3")
	_, err = d.Release(c3.cg, 0)
	isErrno(t, err, unix.ENOENT, "release of a cgroup without a node")
	_, err = d.Release(kmod.Cgroup{Hierarchy: otherHierarchy(), ID: c3.cg.ID}, 0)
	isErrno(t, err, unix.EINVAL, "release in the other hierarchy")

	// recursive
	p := mkcg(t, "gbt-relr")
	x, y := mkcg(t, "gbt-relr/x"), mkcg(t, "gbt-relr/y/z")
	other := mkcg(t, "gbt-relr-other")
	for _, c := range []cgroup{p, x, y, other} {
		setLimit(t, c, 32*miB, kmod.Unlimited)
	}
	cx := startChild(t, "x", childOpts{cgroupDir: x.dir})
	cx.alloc(2 * miB)
	r, err = d.Release(p.cg, kmod.CgFlagRecursive|kmod.CgFlagFailIfBusy)
	isErrno(t, err, unix.EBUSY, "recursive FAIL_IF_BUSY with a busy descendant")
	if r.T2Live != 2*miB || r.NrLiveBuffers != 1 {
		t.Errorf("recursive busy report %+v; want 2 MiB in 1 buffer", r)
	}
	r, err = d.Release(p.cg, kmod.CgFlagRecursive)
	t.Check(err, "recursive release")
	if r.NrNodesReleased != 3 || r.T2Live != 2*miB || r.NrLiveBuffers != 1 {
		t.Errorf("recursive release %+v; want 3 nodes, 2 MiB live in 1 buffer", r)
	}
	if u := usage(t, x); u.NodeFlags&kmod.CgNodeReleased == 0 || u.T2Max != kmod.Unlimited {
		t.Errorf("x after recursive release: %+v", u)
	}
	if u := usage(t, other); u.NodeFlags&kmod.CgNodeReleased != 0 || u.T2Max != 32*miB {
		t.Errorf("a sibling outside the subtree was touched: %+v", u)
	}
	_, err = d.Release(y.cg, 0)
	isErrno(t, err, unix.ENOENT, "idle descendant freed by the recursive release")
	cx.exit()
	expectNodeFreed(t, x, "a busy descendant after its last buffer went", false)

	// recursive, from a cgroup without a node of its own
	np, below := mkcg(t, "gbt-relnp"), mkcg(t, "gbt-relnp/a/b")
	setLimit(t, below, 32*miB, kmod.Unlimited)
	_, err = d.Release(np.cg, 0)
	isErrno(t, err, unix.ENOENT, "plain release of a cgroup without a node (one below it)")
	r, err = d.Release(np.cg, kmod.CgFlagRecursive)
	t.Check(err, "recursive release of a cgroup without a node")
	if r.NrNodesReleased != 1 || r.NrLiveBuffers != 0 {
		t.Errorf("recursive release of a cgroup without a node %+v; want the 1 node below it", r)
	}
	_, err = d.Release(below.cg, 0)
	isErrno(t, err, unix.ENOENT, "the idle node below, freed by the recursive release")
	_, err = d.Release(np.cg, kmod.CgFlagRecursive)
	isErrno(t, err, unix.ENOENT, "recursive release with no node in the subtree")
}

// testReleaseDuringAlloc: CG_RELEASE while an ALLOC of the cgroup is still
// filling its pages (charged, not yet a DMA-BUF). With FAIL_IF_BUSY it is
// EBUSY and changes nothing. A plain release either reports the new buffer
// or the buffer ends up not charged to the released node: whatever stays
// charged to a released node is in its release's report, which is what the
// hook's pending records rely on.
func testReleaseDuringAlloc(t *T) {
	const size = 512 * miB // zeroing it takes a while under TCG
	d := device(t)
	c := mkcg(t, "gbt-rel-alloc")
	ch := startChild(t, "alloc", childOpts{cgroupDir: c.dir})
	for _, flags := range []uint32{kmod.CgFlagFailIfBusy, 0} {
		setLimit(t, c, 768*miB, kmod.Unlimited)
		done := make(chan response, 1)
		go func() { done <- ch.do(request{Op: "alloc", Size: size}) }()
		var r kmod.CgRelease
		var err error
		released, over := false, false
		for i := 0; i < 2000 && !released; i++ {
			if u := usage(t, c); u.T2Usage > 0 {
				over = len(done) > 0
				r, err = d.Release(c.cg, flags)
				released = true
			}
			time.Sleep(time.Millisecond)
		}
		a := <-done
		if !released || over || a.Errno != 0 {
			t.Fatalf("flags %#x: CG_RELEASE did not run while the ALLOC did (seen charged %v, over %v; ALLOC: %s)",
				flags, released, over, a.Err)
		}
		u := usage(t, c)
		t.Logf("flags %#x: release %+v (%v); then usage %s in %d buffers, flags %#x",
			flags, r, err, human(u.T2Usage), u.NrBuffers, u.NodeFlags)
		if flags != 0 {
			isErrno(t, err, unix.EBUSY, "FAIL_IF_BUSY during an ALLOC")
			if r.NrNodesReleased != 0 || u.T2Max != 768*miB || u.NodeFlags&kmod.CgNodeReleased != 0 || u.T2Usage != size {
				t.Errorf("after EBUSY: %+v; want the limit kept, not released, the new buffer charged", u)
			}
		} else {
			t.Check(err, "CG_RELEASE during an ALLOC")
			reported := r.T2Live == size && r.NrLiveBuffers == 1
			dropped := r.T2Live == 0 && r.NrLiveBuffers == 0 && u.T2Usage == 0 && u.NodeFlags&kmod.CgNodeReleased == 0
			if r.NrNodesReleased != 1 || !reported && !dropped {
				t.Errorf("release reported %s in %d buffers, yet the node (flags %#x) holds %s in %d buffers",
					human(r.T2Live), r.NrLiveBuffers, u.NodeFlags, human(u.T2Usage), u.NrBuffers)
			}
		}
		ch.must(request{Op: "close", FD: a.FD})
	}
	ch.exit()
}

// testCgroupNamespace: an admin (root in the initial user namespace) in a
// cgroup namespace, as a nested container engine runs, names cgroups
// outside it by their global ids: SET_LIMIT makes their nodes, CG_LIST and
// GET_USAGE tell live ones from removed ones (the garbage collector releases
// the nodes that are neither alive nor released). Unprivileged, a process
// in such a namespace still reads only its own subtree.
func testCgroupNamespace(t *T) {
	inner := mkcg(t, "gbt-cgns")
	sub := mkcg(t, "gbt-cgns/sub")
	other := mkcg(t, "gbt-cgns-other")
	fresh := mkcg(t, "gbt-cgns-fresh")
	dead := mkcg(t, "gbt-cgns-dead")
	setLimit(t, other, 8*miB, kmod.Unlimited)
	setLimit(t, dead, 8*miB, kmod.Unlimited)
	t.Check(rmcg(dead.dir), "rmdir "+dead.dir)

	ch := startChild(t, "admin-cgns", childOpts{cgroupDir: inner.dir, cgns: true})
	if out := ch.must(request{Op: "cgroup"}).Output; out != "0::/" {
		t.Fatalf("the helper's /proc/self/cgroup is %q; want 0::/ (a cgroup namespace rooted at %s)", out, shortcg(inner))
	}
	if r := ch.do(request{Op: "setlimit", Cg: fresh.cg, T2: 16 * miB, T3: kmod.Unlimited}); r.Errno != 0 {
		t.Errorf("SET_LIMIT of %s (outside the caller's cgroup namespace, no node yet): %s", shortcg(fresh), r.Err)
	} else if u := usage(t, fresh); u.T2Max != 16*miB {
		t.Errorf("%s: limit %s after SET_LIMIT, want 16 MiB", shortcg(fresh), human(u.T2Max))
	}
	if r := ch.do(request{Op: "setlimit", Cg: other.cg, T2: 12 * miB, T3: kmod.Unlimited}); r.Errno != 0 || r.Limit.PrevT2Max != 8*miB {
		t.Errorf("SET_LIMIT of %s (outside, with a node): %+v %s; want previous 8 MiB", shortcg(other), r.Limit, r.Err)
	}
	_, err := device(t).SetLimit(dead.cg, miB, kmod.Unlimited)
	t.Check(err, "SET_LIMIT of a removed cgroup's node")
	r := ch.do(request{Op: "setlimit", Cg: kmod.Cgroup{Hierarchy: cgLayout.hierarchy, ID: 1 << 40}, T2: miB, T3: kmod.Unlimited})
	wantErrno(t, r, unix.ENOENT, "SET_LIMIT of an unknown id from a cgroup namespace")
	list := ch.must(request{Op: "list"}).List
	for _, c := range []cgroup{other, fresh, dead} {
		e := findEntry(list, c.cg.ID)
		switch {
		case e == nil:
			t.Errorf("CG_LIST from a cgroup namespace: no entry for %s", shortcg(c))
		case (e.NodeFlags&kmod.CgNodeAlive != 0) != (c != dead) || e.NodeFlags&kmod.CgNodeAliveUnknown != 0:
			t.Errorf("CG_LIST from a cgroup namespace: %s has flags %#x; want ALIVE exactly when the cgroup exists", shortcg(c), e.NodeFlags)
		}
	}
	if u := ch.must(request{Op: "usage", Cg: other.cg}).Usage; u.NodeFlags&kmod.CgNodeAlive == 0 || u.T2Max != 12*miB {
		t.Errorf("GET_USAGE of %s from a cgroup namespace: %+v; want ALIVE, 12 MiB", shortcg(other), u)
	}
	ch.exit()

	setLimit(t, inner, 8*miB, kmod.Unlimited)
	nb := startChild(t, "nobody-cgns", childOpts{cgroupDir: inner.dir, cgns: true, uid: 65534, passDev: true})
	wantErrno(t, nb.do(request{Op: "usage", Cg: other.cg}), unix.EPERM, "unprivileged GET_USAGE of a cgroup outside its namespace")
	wantErrno(t, nb.do(request{Op: "setlimit", Cg: inner.cg, T2: kmod.Unlimited, T3: kmod.Unlimited}), unix.EPERM, "unprivileged SET_LIMIT")
	for _, c := range []cgroup{inner, sub} {
		if r := nb.do(request{Op: "usage", Cg: c.cg}); r.Errno != 0 || r.Usage.NodeFlags&kmod.CgNodeAlive == 0 {
			t.Errorf("unprivileged GET_USAGE of %s (its own subtree) from a cgroup namespace: %+v %s", shortcg(c), r.Usage, r.Err)
		}
	}
	nb.exit()
}

// expectNodeFreed waits up to a second (the last close of a DMA-BUF may be
// deferred) for c's node to be gone from CG_LIST, looking only: a release
// would free it itself. With orUnreleased a node never released passes too.
func expectNodeFreed(t *T, c cgroup, what string, orUnreleased bool) {
	var e *kmod.CgEntry
	for i := 0; i < 50; i++ {
		list, err := device(t).List()
		t.Check(err, "CG_LIST")
		if e = findEntry(list, c.cg.ID); e == nil || orUnreleased && e.NodeFlags&kmod.CgNodeReleased == 0 {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Errorf("%s: %s still listed: %+v", what, shortcg(c), *e)
}

func findEntry(list []kmod.CgEntry, id uint64) *kmod.CgEntry {
	for i := range list {
		if list[i].CgroupID == id {
			return &list[i]
		}
	}
	return nil
}

// testListDead: CG_LIST pages through every node and tells live cgroups
// from removed ones.
func testListDead(t *T) {
	d := device(t)
	live := mkcg(t, "gbt-list-live")
	setLimit(t, live, 8*miB, kmod.Unlimited)
	deadDir := filepath.Join(cgLayout.root, "gbt-list-dead")
	t.Check(os.Mkdir(deadDir, 0o755), "mkdir")
	dead := cgOf(t, deadDir)
	setLimit(t, dead, 4*miB, kmod.Unlimited)
	// a dead cgroup whose node still has a buffer (held by the test process)
	busyDir := filepath.Join(cgLayout.root, "gbt-list-busy")
	t.Check(os.Mkdir(busyDir, 0o755), "mkdir")
	busy := cgOf(t, busyDir)
	setLimit(t, busy, 8*miB, kmod.Unlimited)
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	t.Check(err, "socketpair")
	s := os.NewFile(uintptr(fds[1]), "s")
	ch := startChild(t, "busy", childOpts{cgroupDir: busyDir, sock: s})
	s.Close()
	ch.must(request{Op: "sendfd", FD: ch.alloc(2 * miB)})
	held, err := recvFD(fds[0])
	t.Check(err, "receive the buffer")
	unix.Close(fds[0])
	ch.exit()
	t.Check(rmcg(deadDir), "rmdir dead")
	t.Check(rmcg(busyDir), "rmdir busy")

	// many nodes, to page through
	var many []cgroup
	for i := 0; i < 70; i++ {
		c := mkcg(t, filepath.Join("gbt-list-many", "c"+itoa(i)))
		setLimit(t, c, kmod.Unlimited, uint64(i+1)*miB)
		many = append(many, c)
	}
	list, err := d.List()
	t.Check(err, "CG_LIST")
	t.Logf("CG_LIST: %d nodes", len(list))
	for i := 1; i < len(list); i++ {
		if list[i].CgroupID <= list[i-1].CgroupID {
			t.Errorf("CG_LIST not in id order at %d", i)
		}
	}
	for _, e := range list {
		if e.Hierarchy != cgLayout.hierarchy || e.NodeFlags&kmod.CgNodeAliveUnknown != 0 {
			t.Errorf("entry %+v: want hierarchy %d and an exact ALIVE flag", e, cgLayout.hierarchy)
		}
	}
	for i, c := range many {
		e := findEntry(list, c.cg.ID)
		if e == nil {
			t.Errorf("node %d (%s) missing from CG_LIST", i, shortcg(c))
			continue
		}
		if e.T3Max != uint64(i+1)*miB || e.Level != 2 || e.NodeFlags != kmod.CgNodeHasLimit|kmod.CgNodeAlive {
			t.Errorf("entry %+v; want T3 max %d MiB, level 2, HAS_LIMIT|ALIVE", *e, i+1)
		}
	}
	if e := findEntry(list, live.cg.ID); e == nil || e.NodeFlags&kmod.CgNodeAlive == 0 || e.T2Max != 8*miB {
		t.Errorf("live cgroup entry %+v; want ALIVE with its limit", e)
	}
	if e := findEntry(list, dead.cg.ID); e == nil {
		t.Errorf("removed cgroup's node missing from CG_LIST")
	} else if e.NodeFlags&(kmod.CgNodeAlive|kmod.CgNodeAliveUnknown) != 0 || e.NodeFlags&kmod.CgNodeHasLimit == 0 {
		t.Errorf("removed cgroup entry flags %#x; want HAS_LIMIT, not ALIVE", e.NodeFlags)
	}
	// a removed cgroup's usage reads as not alive
	if u, err := d.Usage(dead.cg, false); err != nil || u.NodeFlags&kmod.CgNodeAlive != 0 || u.T2Max != 4*miB {
		t.Errorf("usage of the removed cgroup: %+v, %v; want its limit, not ALIVE", u, err)
	}
	// the garbage collector's release of the dead ones
	r, err := d.Release(dead.cg, 0)
	t.Check(err, "release dead")
	if r.NrNodesReleased != 1 || r.NrLiveBuffers != 0 {
		t.Errorf("release of the dead cgroup: %+v", r)
	}
	if e := findEntry(list, busy.cg.ID); e == nil {
		t.Errorf("removed busy cgroup's node missing from CG_LIST")
	} else if e.NodeFlags&kmod.CgNodeAlive != 0 || e.NrBuffers != 1 || e.T2Usage != 2*miB {
		t.Errorf("removed busy cgroup entry %+v; want not ALIVE, 1 buffer, 2 MiB", *e)
	}
	r, err = d.Release(busy.cg, 0)
	t.Check(err, "release busy dead")
	if r.NrLiveBuffers != 1 || r.T2Live != 2*miB {
		t.Errorf("release of the busy dead cgroup: %+v; want 2 MiB live in 1 buffer", r)
	}
	list, err = d.List()
	t.Check(err, "CG_LIST")
	if e := findEntry(list, dead.cg.ID); e != nil {
		t.Errorf("released idle node still listed: %+v", *e)
	}
	if e := findEntry(list, busy.cg.ID); e == nil || e.NodeFlags&kmod.CgNodeReleased == 0 {
		t.Errorf("released busy node: %+v; want listed as RELEASED while its buffer lives", e)
	}
	unix.Close(held)
	var e *kmod.CgEntry
	for i := 0; i < 50; i++ {
		list, err = d.List()
		t.Check(err, "CG_LIST")
		if e = findEntry(list, busy.cg.ID); e == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if e != nil {
		t.Errorf("released node still listed after its last buffer closed: %+v", *e)
	}
	// a released node without buffers was freed; usage of a dead id reads zero
	if u, err := d.Usage(dead.cg, false); err != nil || u.T2Usage != 0 || u.NodeFlags != 0 {
		t.Errorf("usage of a dead, released cgroup: %+v, %v; want zero, no flags", u, err)
	}
}

// heldBuffer allocates size bytes in c through a helper that then exits; the
// test process holds the buffer, so it stays charged to c.
func heldBuffer(t *T, c cgroup, size uint64) int {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	t.Check(err, "socketpair")
	s := os.NewFile(uintptr(fds[1]), "s")
	ch := startChild(t, "held", childOpts{cgroupDir: c.dir, sock: s})
	s.Close()
	ch.must(request{Op: "sendfd", FD: ch.alloc(size)})
	held, err := recvFD(fds[0])
	t.Check(err, "receive the buffer")
	unix.Close(fds[0])
	ch.exit()
	return held
}

// testSetLimitDead: SET_LIMIT takes a released node back only while its
// cgroup exists; a removed cgroup's released node gets ENOENT and stays
// released, so it is freed with its last buffer. A removed cgroup's node
// that is not released still takes limits (its buffers still charge it).
func testSetLimitDead(t *T) {
	d := device(t)
	live, dead := mkcg(t, "gbt-sld-live"), mkcg(t, "gbt-sld-dead")
	for _, c := range []cgroup{live, dead} {
		setLimit(t, c, 8*miB, kmod.Unlimited)
	}
	liveFD, deadFD := heldBuffer(t, live, 2*miB), heldBuffer(t, dead, 2*miB)
	t.Cleanup(func() { unix.Close(liveFD); unix.Close(deadFD) })
	t.Check(rmcg(dead.dir), "rmdir "+dead.dir)

	_, err := d.SetLimit(dead.cg, 4*miB, kmod.Unlimited)
	t.Check(err, "SET_LIMIT of a removed cgroup's node, not released")
	for _, c := range []cgroup{live, dead} {
		r, err := d.Release(c.cg, 0)
		t.Check(err, "release "+shortcg(c))
		if r.NrNodesReleased != 1 || r.NrLiveBuffers != 1 || r.T2Live != 2*miB {
			t.Errorf("release of %s: %+v; want 1 node released, 2 MiB live in 1 buffer", shortcg(c), r)
		}
	}

	// a live cgroup's released node is taken back
	l, err := d.SetLimit(live.cg, 16*miB, kmod.Unlimited)
	t.Check(err, "SET_LIMIT of a live cgroup's released node")
	if u := usage(t, live); l.PrevT2Max != kmod.Unlimited || u.T2Max != 16*miB ||
		u.NodeFlags != kmod.CgNodeHasLimit|kmod.CgNodeAlive {
		t.Errorf("%s taken back: prev %s, usage %+v; want prev unlimited, 16 MiB, HAS_LIMIT|ALIVE",
			shortcg(live), human(l.PrevT2Max), u)
	}

	// a removed cgroup's released node is not
	_, err = d.SetLimit(dead.cg, 16*miB, kmod.Unlimited)
	isErrno(t, err, unix.ENOENT, "SET_LIMIT of a removed cgroup's released node")
	_, err = d.SetLimits(dead.cg, kmod.CgFlagT3, 0, miB)
	isErrno(t, err, unix.ENOENT, "T3-only SET_LIMIT of a removed cgroup's released node")
	list, err := d.List()
	t.Check(err, "CG_LIST")
	if e := findEntry(list, dead.cg.ID); e == nil || e.NodeFlags != kmod.CgNodeReleased ||
		e.T2Max != kmod.Unlimited || e.T3Max != kmod.Unlimited || e.NrBuffers != 1 {
		t.Errorf("removed cgroup's released node after SET_LIMIT: %+v; want RELEASED only, unlimited, its 1 buffer", e)
	}
	unix.Close(deadFD)
	deadFD = -1
	expectNodeFreed(t, dead, "removed cgroup's released node after its last buffer closed", false)
	_, err = d.SetLimit(dead.cg, 16*miB, kmod.Unlimited)
	isErrno(t, err, unix.ENOENT, "SET_LIMIT of a removed cgroup whose node was freed")
}

// testEPERM: root in a user namespace and a non-root user may not change or
// list budgets, but may read their own usage.
func testEPERM(t *T, o childOpts) {
	c := mkcg(t, "gbt-perm")
	other := mkcg(t, "gbt-perm-other")
	setLimit(t, c, 8*miB, kmod.Unlimited)
	setLimit(t, other, 8*miB, kmod.Unlimited)
	sub := mkcg(t, "gbt-perm/sub")
	o.cgroupDir = c.dir
	o.passDev = true
	ch := startChild(t, "unprivileged", o)
	wantErrno(t, ch.do(request{Op: "setlimit", Cg: c.cg, T2: kmod.Unlimited, T3: kmod.Unlimited}), unix.EPERM, "SET_LIMIT of its own cgroup")
	wantErrno(t, ch.do(request{Op: "setlimit", Cg: other.cg, T2: 1, T3: 1}), unix.EPERM, "SET_LIMIT of another cgroup")
	wantErrno(t, ch.do(request{Op: "release", Cg: c.cg}), unix.EPERM, "RELEASE")
	wantErrno(t, ch.do(request{Op: "list"}), unix.EPERM, "LIST")
	wantErrno(t, ch.do(request{Op: "setpoolcap", Size: 64}), unix.EPERM, "SET_POOL_CAP")
	wantErrno(t, ch.do(request{Op: "usage", Cg: other.cg}), unix.EPERM, "GET_USAGE of another cgroup")
	wantErrno(t, ch.do(request{Op: "releasepid", Size: 1}), unix.EPERM, "RELEASE_PID of init")
	// allowed: own usage, a descendant, CG_QUERY, allocation within the budget
	fd := ch.alloc(2 * miB)
	u := ch.do(request{Op: "usage", Self: true})
	if u.Errno != 0 || u.Usage.CgroupID != c.cg.ID || u.Usage.T2Usage != 2*miB || u.Usage.T2Max != 8*miB {
		t.Errorf("GET_USAGE self: %+v, %s; want id %d, 2 MiB of 8", u.Usage, u.Err, c.cg.ID)
	}
	if r := ch.do(request{Op: "usage", Cg: c.cg}); r.Errno != 0 || r.Usage.T2Usage != 2*miB {
		t.Errorf("GET_USAGE of its own cgroup by id: %s", r.Err)
	}
	if r := ch.do(request{Op: "usage", Cg: sub.cg}); r.Errno != 0 {
		t.Errorf("GET_USAGE of a descendant: %s", r.Err)
	}
	if r := ch.do(request{Op: "query"}); r.Errno != 0 || r.Query.CgroupID != c.cg.ID {
		t.Errorf("CG_QUERY: %+v %s", r.Query, r.Err)
	}
	if r := ch.do(request{Op: "releasepid", Size: 0}); r.Errno != 0 || r.N != 1 {
		t.Errorf("RELEASE_PID of itself: %d, %s; want 1 buffer", r.N, r.Err)
	}
	ch.must(request{Op: "close", FD: fd})
	// the limit is untouched
	if u := usage(t, c); u.T2Max != 8*miB {
		t.Errorf("limit changed to %s", human(u.T2Max))
	}
	ch.exit()
	expectUsage(t, c, 0, 0, "after exit")
}

// testBadArgs: unknown flags, reserved fields, sizes → EINVAL / E2BIG.
func testBadArgs(t *T) {
	d := device(t)
	c := mkcg(t, "gbt-bad")
	_, err := d.SetLimits(c.cg, 1<<7, 1, 1)
	isErrno(t, err, unix.EINVAL, "SET_LIMIT with an unknown flag")
	_, err = d.SetLimit(kmod.Cgroup{Hierarchy: 7, ID: c.cg.ID}, 1, 1)
	isErrno(t, err, unix.EINVAL, "SET_LIMIT in an unknown hierarchy")
	_, err = d.SetLimit(kmod.Cgroup{Hierarchy: kmod.HierarchyV2, ID: 1 << 40}, 1, 1)
	isErrno(t, err, unix.ENOENT, "SET_LIMIT of a cgroup that does not exist")
	_, err = d.Release(c.cg, 1<<9)
	isErrno(t, err, unix.EINVAL, "RELEASE with an unknown flag")
	_, err = d.Alloc(0, 0)
	isErrno(t, err, unix.EINVAL, "ALLOC of 0 bytes")
	_, err = d.Alloc(page, 1<<6)
	isErrno(t, err, unix.EINVAL, "ALLOC with reserved flag bit 6")
	_, err = d.Alloc(1<<50, 0)
	isErrno(t, err, unix.EINVAL, "ALLOC larger than RAM")
	err = rawCg(d, kmod.IoctlCgQuery, 16, nil)
	isErrno(t, err, unix.EINVAL, "CG_QUERY with size 16")
	err = rawCg(d, kmod.IoctlCgQuery, 40, []byte{39: 1})
	isErrno(t, err, unix.E2BIG, "CG_QUERY with an unknown non-zero tail")
	err = rawCg(d, kmod.IoctlCgQuery, 40, nil)
	if err != nil {
		t.Errorf("CG_QUERY with a zero tail: %v", err)
	}
	// Every field but size is an output: a filled struct may be passed again.
	want, err := d.Query()
	t.Check(err, "CG_QUERY")
	q := kmod.CgQuery{Size: uint32(unsafe.Sizeof(kmod.CgQuery{})), ABIVersion: 9, Hierarchy: 9, Level: 9, CgroupID: 9, Features: 9}
	if _, _, errno := syscall.Syscall(syscall.SYS_IOCTL, uintptr(d.Fd()), kmod.IoctlCgQuery, uintptr(unsafe.Pointer(&q))); errno != 0 || q != want {
		t.Errorf("CG_QUERY of a struct with its outputs filled: %v, %+v; want %+v", errno, q, want)
	}
	// reserved0 of SET_LIMIT at offset 12
	err = rawCg(d, kmod.IoctlCgSetLimit, 56, []byte{12: 1})
	isErrno(t, err, unix.EINVAL, "SET_LIMIT with reserved0 set")
	_, _, errno := syscall.Syscall(syscall.SYS_IOCTL, uintptr(d.Fd()), 0xc0084763, 0)
	if errno != unix.ENOTTY && errno != unix.EFAULT {
		t.Errorf("unknown ioctl: %v, want ENOTTY", errno)
	}
	// CG_LIST fills at most 1024 entries a call, and leaves the caller's
	// max_entries as it was
	setLimit(t, c, 8*miB, kmod.Unlimited) // a node to list
	entries := make([]kmod.CgEntry, 5000)
	var pin runtime.Pinner
	pin.Pin(&entries[0])
	defer pin.Unpin()
	l := kmod.CgList{
		Size:       uint32(unsafe.Sizeof(kmod.CgList{})),
		EntrySize:  uint32(unsafe.Sizeof(kmod.CgEntry{})),
		MaxEntries: uint32(len(entries)),
		EntriesPtr: uint64(uintptr(unsafe.Pointer(&entries[0]))),
	}
	_, _, errno = syscall.Syscall(syscall.SYS_IOCTL, uintptr(d.Fd()), kmod.IoctlCgList, uintptr(unsafe.Pointer(&l)))
	if errno != 0 || l.MaxEntries != uint32(len(entries)) || l.NrEntries > 1024 || l.NrEntries == 0 {
		t.Errorf("CG_LIST of up to %d: %v, max_entries %d after, %d entries; want max_entries kept, 1 to 1024 entries", len(entries), errno, l.MaxEntries, l.NrEntries)
	}
}
