package suite

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/greenboost/greenboost-container-toolkit/hook"
	"github.com/greenboost/greenboost-container-toolkit/kmod"
)

// ModeV1 is a separate boot (gb.mode=v1) where the memory controller is on
// a cgroup v1 hierarchy, laid out like a hybrid host: a tmpfs at
// /sys/fs/cgroup with one v1 mount per controller and cgroup2 at
// /sys/fs/cgroup/unified. The module, loaded with cgroup_mode=auto after
// that, accounts in the v1 memory hierarchy (GB_CG_HIER_V1_MEMORY). The
// memory controller cannot move between hierarchies once it has cgroups,
// so this cannot share a boot with ModeTest.
const ModeV1 = "v1"

// v1MemoryRoot is the v1 memory hierarchy's mount in the hybrid layout.
const v1MemoryRoot = "/sys/fs/cgroup/memory"

// v1Controllers are the v1 hierarchies of the hybrid layout (as a Debian 12
// host booted with systemd.unified_cgroup_hierarchy=0 has them), each mounted
// at /sys/fs/cgroup/<name>; "systemd" is the named hierarchy name=systemd.
var v1Controllers = []string{"cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "blkio", "pids", "hugetlb", "systemd"}

// mountHybridV1 turns a guest whose /init mounted cgroup2 at /sys/fs/cgroup
// (with no cgroups made yet) into a hybrid host: tmpfs at /sys/fs/cgroup,
// the v1 hierarchies of v1Controllers under it and cgroup2 at
// /sys/fs/cgroup/unified.
func mountHybridV1() error {
	const top = "/sys/fs/cgroup"
	var st unix.Statfs_t
	if err := unix.Statfs(top, &st); err == nil && st.Type == unix.CGROUP2_SUPER_MAGIC {
		if err := unix.Unmount(top, 0); err != nil {
			return fmt.Errorf("umount the cgroup2 mount at %s: %w", top, err)
		}
	}
	if err := unix.Mount("tmpfs", top, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "mode=755"); err != nil {
		return fmt.Errorf("mount tmpfs at %s: %w", top, err)
	}
	for _, name := range v1Controllers {
		dir := filepath.Join(top, name)
		if err := os.Mkdir(dir, 0o755); err != nil {
			return err
		}
		opts := name
		if name == "systemd" {
			opts = "none,name=systemd"
		}
		if err := unix.Mount("cgroup", dir, "cgroup", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, opts); err != nil {
			return fmt.Errorf("mount cgroup v1 %s at %s: %w", opts, dir, err)
		}
	}
	unified := filepath.Join(top, "unified")
	if err := os.Mkdir(unified, 0o755); err != nil {
		return err
	}
	if err := unix.Mount("cgroup2", unified, "cgroup2", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
		return fmt.Errorf("mount cgroup2 at %s: %w", unified, err)
	}
	// the memory controller must now be on v1
	b, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return err
	}
	if !strings.Contains(string(b), ":memory:/") {
		return fmt.Errorf("no v1 memory line in /proc/self/cgroup after mounting:\n%s", b)
	}
	return nil
}

func init() {
	alwaysRun["v1-hybrid-mount"] = true
	alwaysRun["v1-load"] = true
	register(10, ModeV1, "v1-hybrid-mount", 30*time.Second, testV1Mount)
	register(20, ModeV1, "v1-load", time.Minute, testV1Load)
	register(40, ModeV1, "v1-cgroup-id", time.Minute, testV1CgroupID)
	register(50, ModeV1, "v1-limits-edquot", time.Minute, testV1Limits)
	register(60, ModeV1, "v1-parent-limit", time.Minute, testV1ParentLimit)
	register(110, ModeV1, "v1-release", time.Minute, testV1Release)
	register(120, ModeV1, "v1-list-dead", time.Minute, testV1ListDead)
	register(140, ModeV1, "v1-eperm-nobody", time.Minute, testV1EPERM)
}

func testV1Mount(t *T) {
	t.Check(mountHybridV1(), "hybrid cgroup layout")
	b, _ := os.ReadFile("/proc/self/cgroup")
	t.Logf("/proc/self/cgroup:\n%s", strings.TrimSpace(string(b)))
	if _, err := os.Stat(filepath.Join(v1MemoryRoot, "memory.limit_in_bytes")); err != nil {
		t.Errorf("%s is not the v1 memory hierarchy: %v", v1MemoryRoot, err)
	}
	var st unix.Statfs_t
	t.Check(unix.Statfs("/sys/fs/cgroup/unified", &st), "statfs unified")
	if st.Type != unix.CGROUP2_SUPER_MAGIC {
		t.Errorf("/sys/fs/cgroup/unified is not cgroup2 (magic %#x)", st.Type)
	}
	if ctl, _ := readTrim("/sys/fs/cgroup/unified/cgroup.controllers"); strings.Contains(ctl, "memory") {
		t.Errorf("cgroup2 still offers the memory controller (%q)", ctl)
	}
}

// testV1Load: kmod.Ensure loads the module with the default cgroup_mode=auto,
// which picks the v1 memory hierarchy here.
func testV1Load(t *T) {
	if _, err := os.Stat("/sys/module/greenboost"); err == nil {
		t.Fatalf("the module is loaded before the load case")
	}
	t.Check(kmod.Ensure(kmod.LoadOptions{Module: "/greenboost.ko", DevicePath: devPath}), "Ensure(/greenboost.ko)")
	if m := param(t, "cgroup_mode"); m != "auto" {
		t.Errorf("cgroup_mode = %q, want the default auto", m)
	}
	q, err := device(t).Query()
	t.Check(err, "CG_QUERY")
	if q.Hierarchy != kmod.HierarchyV1Memory {
		t.Fatalf("CG_QUERY hierarchy %d with memory on cgroup v1 and cgroup_mode=auto; want %d (v1 memory)", q.Hierarchy, kmod.HierarchyV1Memory)
	}
	buf := make([]byte, 1<<20)
	if n, err := unix.Klogctl(unix.SYSLOG_ACTION_READ_ALL, buf); err == nil {
		if !bytes.Contains(buf[:n], []byte("accounting in cgroup v1 memory")) {
			t.Errorf("dmesg does not say the module accounts in cgroup v1 memory")
		}
	}
}

// cgroupV1 is a directory of the v1 memory hierarchy with its module identity.
func cgOfV1(t *T, dir string) cgroup {
	id, err := kmod.CgroupID(dir)
	t.Check(err, "cgroup id")
	return cgroup{dir: dir, cg: kmod.Cgroup{Hierarchy: kmod.HierarchyV1Memory, ID: id}}
}

// mkcgV1 is mkcg in the v1 memory hierarchy.
func mkcgV1(t *T, rel string) cgroup {
	parts := strings.Split(rel, "/")
	for i := range parts {
		dir := filepath.Join(v1MemoryRoot, filepath.Join(parts[:i+1]...))
		if err := os.Mkdir(dir, 0o755); err != nil {
			if os.IsExist(err) {
				continue
			}
			t.Fatalf("mkdir %s: %v", dir, err)
		}
		c := cgOfV1(t, dir)
		t.Cleanup(func() {
			if _, err := device(t).Release(c.cg, kmod.CgFlagRecursive); err != nil && !errors.Is(err, unix.ENOENT) {
				t.Errorf("cleanup: release %s: %v", c.dir, err)
			}
			if err := rmcg(dir); err != nil {
				t.Errorf("cleanup: rmdir %s: %v", dir, err)
			}
		})
	}
	return cgOfV1(t, filepath.Join(v1MemoryRoot, rel))
}

// startChildV1 starts a helper and moves it into the v1 cgroup c before it
// gets any request (CLONE_INTO_CGROUP is for cgroup2 only).
func startChildV1(t *T, name string, c cgroup, o childOpts) *child {
	o.cgroupDir = ""
	ch := startChild(t, name, o)
	pid := strconv.Itoa(ch.cmd.Process.Pid)
	t.Check(os.WriteFile(filepath.Join(c.dir, "cgroup.procs"), []byte(pid), 0o644), "move helper "+name+" into "+c.dir)
	return ch
}

// testV1CgroupID: kmod.CgroupID of the v1 memory directory is CG_QUERY's id,
// and the hook resolves a process to that directory and id.
func testV1CgroupID(t *T) {
	q, err := device(t).Query()
	t.Check(err, "CG_QUERY")
	rootID, err := kmod.CgroupID(v1MemoryRoot)
	t.Check(err, "CgroupID")
	if q.Hierarchy != kmod.HierarchyV1Memory || q.Level != 0 || q.CgroupID != rootID || q.Features&kmod.CgFeatT2 == 0 {
		t.Errorf("CG_QUERY in the root cgroup = %+v; want v1 memory (1), level 0, id %d, T2 feature", q, rootID)
	}
	c := mkcgV1(t, "gbt-id/a/b")
	ch := startChildV1(t, "b", c, childOpts{})
	r := ch.must(request{Op: "query"})
	if r.Query.CgroupID != c.cg.ID || r.Query.Level != 3 || r.Query.Hierarchy != kmod.HierarchyV1Memory {
		t.Errorf("CG_QUERY in gbt-id/a/b = %+v; want id %d (CgroupID), level 3, hierarchy 1", r.Query, c.cg.ID)
	}
	out := ch.must(request{Op: "cgroup"}).Output
	if !strings.Contains(out, ":memory:/gbt-id/a/b\n") && !strings.HasSuffix(out, ":memory:/gbt-id/a/b") {
		t.Errorf("helper's /proc/self/cgroup has no memory:/gbt-id/a/b line:\n%s", out)
	}
	if u := ch.must(request{Op: "usage", Self: true}).Usage; u.CgroupID != c.cg.ID || u.Hierarchy != kmod.HierarchyV1Memory {
		t.Errorf("GET_USAGE self in gbt-id/a/b names %d/%d, want 1/%d", u.Hierarchy, u.CgroupID, c.cg.ID)
	}
	// what the hook computes for a container's process
	pid := ch.cmd.Process.Pid
	for _, h := range []uint32{kmod.HierarchyV1Memory, hook.HierarchyAuto} {
		cg, err := hook.ResolveCgroup(pid, h)
		if err != nil {
			t.Errorf("hook.ResolveCgroup(%d, %#x): %v", pid, h, err)
			continue
		}
		if cg.Hierarchy != kmod.HierarchyV1Memory || cg.ID != c.cg.ID || cg.Path != c.dir {
			t.Errorf("hook.ResolveCgroup(%d, %#x) = %+v; want hierarchy 1, id %d, path %s", pid, h, cg, c.cg.ID, c.dir)
		}
	}
	// a v1 id is not a v2 one: the module refuses hierarchy 0
	_, err = device(t).SetLimit(kmod.Cgroup{Hierarchy: kmod.HierarchyV2, ID: c.cg.ID}, miB, kmod.Unlimited)
	isErrno(t, err, unix.EINVAL, "SET_LIMIT in hierarchy 0 on a v1 module")
	// an id that no v1 memory cgroup has
	_, err = device(t).SetLimit(kmod.Cgroup{Hierarchy: kmod.HierarchyV1Memory, ID: 1 << 40}, miB, kmod.Unlimited)
	isErrno(t, err, unix.ENOENT, "SET_LIMIT of an unknown v1 id")
	ch.exit()
}

// testV1Limits: sibling budgets, EDQUOT at each, limit changes, exit uncharge.
func testV1Limits(t *T) {
	a, b := mkcgV1(t, "gbt-lim/a"), mkcgV1(t, "gbt-lim/b")
	setLimit(t, a, 8*miB, kmod.Unlimited)
	setLimit(t, b, 16*miB, kmod.Unlimited)
	ca := startChildV1(t, "a", a, childOpts{})
	cb := startChildV1(t, "b", b, childOpts{})

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
	if ua.T2Max != 8*miB || ua.T2EffectiveMax != 8*miB || ua.T2Failcnt != 1 || ua.Hierarchy != kmod.HierarchyV1Memory ||
		ua.NodeFlags&(kmod.CgNodeHasLimit|kmod.CgNodeAlive) != kmod.CgNodeHasLimit|kmod.CgNodeAlive {
		t.Errorf("usage of a = %+v; want v1, max 8 MiB, effective 8 MiB, failcnt 1, HAS_LIMIT|ALIVE", ua)
	}
	if u := ca.must(request{Op: "usage", Self: true}).Usage; u.CgroupID != a.cg.ID || u.T2Usage != 8*miB {
		t.Errorf("GET_USAGE self in a = id %d usage %d; want %d, 8 MiB", u.CgroupID, u.T2Usage, a.cg.ID)
	}
	// raise: one more fits
	l, err := device(t).SetLimit(a.cg, 10*miB, kmod.Unlimited)
	t.Check(err, "raise a to 10 MiB")
	if l.PrevT2Max != 8*miB {
		t.Errorf("SET_LIMIT prev = %s, want 8 MiB", human(l.PrevT2Max))
	}
	fd := ca.alloc(2 * miB)
	wantErrno(t, ca.do(request{Op: "alloc", Size: page}), unix.EDQUOT, "a at 10 MiB, one more page")
	// lower below usage
	setLimit(t, a, 4*miB, kmod.Unlimited)
	ca.must(request{Op: "close", FD: fd})
	wantErrno(t, ca.do(request{Op: "alloc", Size: page}), unix.EDQUOT, "a over a lowered limit")
	// PIN_USER_PTR is charged the same way
	setLimit(t, a, 10*miB, kmod.Unlimited)
	ca.must(request{Op: "pin", Size: 1 * miB})
	wantErrno(t, ca.do(request{Op: "pin", Size: 2 * miB}), unix.EDQUOT, "pin 2 MiB with 1 MiB left")
	expectUsage(t, a, 9*miB, 5, "a after a 1 MiB pin")
	ca.exit()
	cb.exit()
	expectUsage(t, a, 0, 0, "a after its process exited")
	expectUsage(t, b, 0, 0, "b after its process exited")
}

// testV1ParentLimit: a parent's budget bounds its subtree, nodes or not.
func testV1ParentLimit(t *T) {
	p := mkcgV1(t, "gbt-par")
	a, b := mkcgV1(t, "gbt-par/a"), mkcgV1(t, "gbt-par/b")
	deep := mkcgV1(t, "gbt-par/b/c/d")
	setLimit(t, p, 8*miB, kmod.Unlimited)
	setLimit(t, a, kmod.Unlimited, kmod.Unlimited)
	ca := startChildV1(t, "a", a, childOpts{})
	cb := startChildV1(t, "b", b, childOpts{})
	cd := startChildV1(t, "d", deep, childOpts{})

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
	if ua := usage(t, a); ua.T2EffectiveMax != 8*miB || ua.T2Max != kmod.Unlimited {
		t.Errorf("a: max %s effective %s; want unlimited, 8 MiB", human(ua.T2Max), human(ua.T2EffectiveMax))
	}
	if ud := usage(t, deep); ud.T2Usage != 0 || ud.T2EffectiveMax != 8*miB || ud.NodeFlags != kmod.CgNodeAlive {
		t.Errorf("b/c/d (no node): %+v; want usage 0, effective 8 MiB, flags ALIVE", ud)
	}
	if pu := usage(t, p); pu.T2Failcnt != 3 {
		t.Errorf("parent failcnt %d, want 3", pu.T2Failcnt)
	}
	ca.exit()
	cb.must(request{Op: "alloc", Size: 6 * miB})
	expectUsage(t, p, 8*miB, 3, "parent after a exited and b took 6 MiB")
	cb.exit()
	cd.exit()
	expectUsage(t, p, 0, 0, "parent at the end")
	expectUsage(t, a, 0, 0, "a at the end")
}

// testV1Release: busy / not busy / unknown / other hierarchy / recursive.
func testV1Release(t *T) {
	d := device(t)
	c := mkcgV1(t, "gbt-rel")
	setLimit(t, c, 8*miB, kmod.Unlimited)
	ch := startChildV1(t, "rel", c, childOpts{})
	fd := ch.alloc(2 * miB)
	ch.alloc(page)
	r, err := d.Release(c.cg, kmod.CgFlagFailIfBusy)
	isErrno(t, err, unix.EBUSY, "FAIL_IF_BUSY with live buffers")
	if r.T2Live != 2*miB+page || r.NrLiveBuffers != 2 || r.NrNodesReleased != 0 {
		t.Errorf("busy report %+v; want 2 MiB + 4 KiB live in 2 buffers, nothing released", r)
	}
	r, err = d.Release(c.cg, 0)
	t.Check(err, "release a busy cgroup")
	if r.T2Live != 2*miB+page || r.NrLiveBuffers != 2 || r.NrNodesReleased != 1 {
		t.Errorf("release report %+v; want 2 MiB + 4 KiB live, 2 buffers, 1 node", r)
	}
	if u := usage(t, c); u.T2Max != kmod.Unlimited || u.NodeFlags&kmod.CgNodeReleased == 0 || u.T2Usage != 2*miB+page {
		t.Errorf("after release: %+v; want unlimited, RELEASED, usage kept", u)
	}
	ch.must(request{Op: "mmap", FD: fd, Size: 2 * miB})
	ch.alloc(page)
	expectUsage(t, c, 2*miB+page, 2, "released node: new allocations not charged")
	ch.exit()
	for i := 0; i < 50; i++ {
		if _, err = d.Release(c.cg, 0); err != nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	isErrno(t, err, unix.ENOENT, "release after the node's last buffer went")

	c2 := mkcgV1(t, "gbt-rel2")
	setLimit(t, c2, 8*miB, kmod.Unlimited)
	r, err = d.Release(c2.cg, kmod.CgFlagFailIfBusy)
	t.Check(err, "FAIL_IF_BUSY on an idle node")
	if r.NrLiveBuffers != 0 || r.NrNodesReleased != 1 {
		t.Errorf("idle release %+v", r)
	}
	_, err = d.Release(c2.cg, 0)
	isErrno(t, err, unix.ENOENT, "release twice")
	_, err = d.Release(kmod.Cgroup{Hierarchy: kmod.HierarchyV1Memory, ID: 1 << 40}, 0)
	isErrno(t, err, unix.ENOENT, "release of an unknown id")
	setLimit(t, c2, 8*miB, kmod.Unlimited)
	_, err = d.Release(kmod.Cgroup{Hierarchy: kmod.HierarchyV2, ID: c2.cg.ID}, 0)
	isErrno(t, err, unix.EINVAL, "release in the other hierarchy (v2)")

	p := mkcgV1(t, "gbt-relr")
	x, y := mkcgV1(t, "gbt-relr/x"), mkcgV1(t, "gbt-relr/y/z")
	other := mkcgV1(t, "gbt-relr-other")
	for _, c := range []cgroup{p, x, y, other} {
		setLimit(t, c, 32*miB, kmod.Unlimited)
	}
	cx := startChildV1(t, "x", x, childOpts{})
	cx.alloc(2 * miB)
	r, err = d.Release(p.cg, kmod.CgFlagRecursive|kmod.CgFlagFailIfBusy)
	isErrno(t, err, unix.EBUSY, "recursive FAIL_IF_BUSY with a busy descendant")
	r, err = d.Release(p.cg, kmod.CgFlagRecursive)
	t.Check(err, "recursive release")
	if r.NrNodesReleased != 3 || r.T2Live != 2*miB || r.NrLiveBuffers != 1 {
		t.Errorf("recursive release %+v; want 3 nodes, 2 MiB live in 1 buffer", r)
	}
	if u := usage(t, other); u.NodeFlags&kmod.CgNodeReleased != 0 || u.T2Max != 32*miB {
		t.Errorf("a sibling outside the subtree was touched: %+v", u)
	}
	_, err = d.Release(y.cg, 0)
	isErrno(t, err, unix.ENOENT, "idle descendant freed by the recursive release")
	cx.exit()
	_, err = d.Release(x.cg, 0)
	for i := 0; i < 50 && err == nil; i++ {
		time.Sleep(20 * time.Millisecond)
		_, err = d.Release(x.cg, 0)
	}
	isErrno(t, err, unix.ENOENT, "busy descendant freed with its last buffer")
}

// testV1ListDead: CG_LIST tells live v1 cgroups from removed ones exactly
// (ALIVE, never ALIVE_UNKNOWN) and pages through many nodes.
func testV1ListDead(t *T) {
	d := device(t)
	live := mkcgV1(t, "gbt-list-live")
	setLimit(t, live, 8*miB, kmod.Unlimited)
	deadDir := filepath.Join(v1MemoryRoot, "gbt-list-dead")
	t.Check(os.Mkdir(deadDir, 0o755), "mkdir")
	dead := cgOfV1(t, deadDir)
	setLimit(t, dead, 4*miB, kmod.Unlimited)
	// a removed cgroup whose node still has a buffer (held by the test process)
	busyDir := filepath.Join(v1MemoryRoot, "gbt-list-busy")
	t.Check(os.Mkdir(busyDir, 0o755), "mkdir")
	busy := cgOfV1(t, busyDir)
	setLimit(t, busy, 8*miB, kmod.Unlimited)
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	t.Check(err, "socketpair")
	s := os.NewFile(uintptr(fds[1]), "s")
	ch := startChildV1(t, "busy", busy, childOpts{sock: s})
	s.Close()
	ch.must(request{Op: "sendfd", FD: ch.alloc(2 * miB)})
	held, err := recvFD(fds[0])
	t.Check(err, "receive the buffer")
	unix.Close(fds[0])
	ch.exit()
	t.Check(rmcg(deadDir), "rmdir dead")
	t.Check(rmcg(busyDir), "rmdir busy")

	var many []cgroup
	for i := 0; i < 70; i++ {
		c := mkcgV1(t, filepath.Join("gbt-list-many", "c"+itoa(i)))
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
		if e.Hierarchy != kmod.HierarchyV1Memory || e.NodeFlags&kmod.CgNodeAliveUnknown != 0 {
			t.Errorf("entry %+v: want hierarchy 1 and an exact ALIVE flag", e)
		}
	}
	for i, c := range many {
		e := findEntry(list, c.cg.ID)
		if e == nil {
			t.Errorf("node %d (%s) missing from CG_LIST", i, c.dir)
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
	if e := findEntry(list, busy.cg.ID); e == nil {
		t.Errorf("removed busy cgroup's node missing from CG_LIST")
	} else if e.NodeFlags&kmod.CgNodeAlive != 0 || e.NrBuffers != 1 || e.T2Usage != 2*miB {
		t.Errorf("removed busy cgroup entry %+v; want not ALIVE, 1 buffer, 2 MiB", *e)
	}
	// a removed cgroup's usage reads as not alive
	if u, err := d.Usage(dead.cg, false); err != nil || u.NodeFlags&kmod.CgNodeAlive != 0 || u.T2Max != 4*miB {
		t.Errorf("usage of the removed cgroup: %+v, %v; want its limit, not ALIVE", u, err)
	}
	// the garbage collector's releases
	r, err := d.Release(dead.cg, 0)
	t.Check(err, "release dead")
	if r.NrNodesReleased != 1 || r.NrLiveBuffers != 0 {
		t.Errorf("release of the dead cgroup: %+v", r)
	}
	r, err = d.Release(busy.cg, 0)
	t.Check(err, "release busy dead")
	if r.NrLiveBuffers != 1 || r.T2Live != 2*miB {
		t.Errorf("release of the busy dead cgroup: %+v; want 2 MiB live in 1 buffer", r)
	}
	unix.Close(held)
	var e *kmod.CgEntry
	for i := 0; i < 50; i++ {
		list, err = d.List()
		t.Check(err, "CG_LIST")
		if e = findEntry(list, busy.cg.ID); e == nil && findEntry(list, dead.cg.ID) == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if e != nil {
		t.Errorf("released node still listed after its last buffer closed: %+v", *e)
	}
}

// testV1EPERM: a non-root process in a v1 cgroup reads its own and its
// descendants' usage, nothing else, and changes nothing.
func testV1EPERM(t *T) {
	c := mkcgV1(t, "gbt-perm")
	other := mkcgV1(t, "gbt-perm-other")
	sub := mkcgV1(t, "gbt-perm/sub")
	setLimit(t, c, 8*miB, kmod.Unlimited)
	setLimit(t, other, 8*miB, kmod.Unlimited)
	ch := startChildV1(t, "nobody", c, childOpts{uid: 65534, passDev: true})
	wantErrno(t, ch.do(request{Op: "setlimit", Cg: c.cg, T2: kmod.Unlimited, T3: kmod.Unlimited}), unix.EPERM, "SET_LIMIT of its own cgroup")
	wantErrno(t, ch.do(request{Op: "release", Cg: c.cg}), unix.EPERM, "RELEASE")
	wantErrno(t, ch.do(request{Op: "list"}), unix.EPERM, "LIST")
	wantErrno(t, ch.do(request{Op: "usage", Cg: other.cg}), unix.EPERM, "GET_USAGE of another cgroup")
	ch.alloc(2 * miB)
	if r := ch.do(request{Op: "usage", Cg: c.cg}); r.Errno != 0 || r.Usage.T2Usage != 2*miB || r.Usage.T2Max != 8*miB {
		t.Errorf("GET_USAGE of its own cgroup by id: %+v %s; want 2 MiB of 8", r.Usage, r.Err)
	}
	if r := ch.do(request{Op: "usage", Cg: sub.cg}); r.Errno != 0 || r.Usage.T2EffectiveMax != 8*miB {
		t.Errorf("GET_USAGE of a descendant: %+v %s; want effective 8 MiB", r.Usage, r.Err)
	}
	wantErrno(t, ch.do(request{Op: "alloc", Size: 8 * miB}), unix.EDQUOT, "nobody over its budget")
	ch.exit()
	expectUsage(t, c, 0, 0, "after exit")
}
