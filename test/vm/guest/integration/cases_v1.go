package integration

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/greenboost/greenboost-container-toolkit/kmod"
)

// ModeIntegrationV1 is the integration run on a hybrid cgroup layout (memory
// on cgroup v1, cgroup2 at /sys/fs/cgroup/unified), with runc's cgroupfs
// driver: the module, loaded by the first create with cgroup_mode=auto,
// accounts in the v1 memory hierarchy, and the hook finds the container's
// v1 memory cgroup.
const ModeIntegrationV1 = "integration-v1"

var integrationV1Cases = []Case{
	{Name: "v1-hybrid-layout", Timeout: 30 * time.Second, Fn: testV1Layout},
	{Name: "v1-budget-48M", Timeout: 120 * time.Second, Fn: testV1Budget},
	{Name: "v1-released-after-delete", Timeout: 30 * time.Second, Fn: testV1Released},
	{Name: "v1-gc-after-crash", Timeout: 90 * time.Second, Fn: testV1GCAfterCrash},
}

// v1MemoryRoot is the v1 memory hierarchy's mount in the hybrid layout.
const v1MemoryRoot = "/sys/fs/cgroup/memory"

// v1Controllers are the v1 hierarchies of the hybrid layout (as on a Debian
// 12 host booted with systemd.unified_cgroup_hierarchy=0), each mounted at
// /sys/fs/cgroup/<name>; "systemd" is the named hierarchy name=systemd.
// (The VM suite's cases_v1.go does the same; the two guest programs do not
// share code, so that one's build never breaks the other.)
var v1Controllers = []string{"cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "blkio", "pids", "hugetlb", "systemd"}

// mountHybridV1 turns a guest whose /init2 mounted cgroup2 at /sys/fs/cgroup
// (no cgroups made yet) into a hybrid host: tmpfs at /sys/fs/cgroup, the v1
// hierarchies under it (memory among them, so it leaves cgroup2) and
// cgroup2 at /sys/fs/cgroup/unified, where runc's cgroupfs driver in hybrid
// mode also puts its containers.
func mountHybridV1() error {
	const top = "/sys/fs/cgroup"
	const flags = unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC
	var st unix.Statfs_t
	if err := unix.Statfs(top, &st); err == nil && st.Type == unix.CGROUP2_SUPER_MAGIC {
		if err := unix.Unmount(top, 0); err != nil {
			return fmt.Errorf("umount the cgroup2 mount at %s: %w", top, err)
		}
	}
	if err := unix.Mount("tmpfs", top, "tmpfs", flags, "mode=755"); err != nil {
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
		if err := unix.Mount("cgroup", dir, "cgroup", flags, opts); err != nil {
			return fmt.Errorf("mount cgroup v1 %s at %s: %w", opts, dir, err)
		}
	}
	unified := filepath.Join(top, "unified")
	if err := os.Mkdir(unified, 0o755); err != nil {
		return err
	}
	if err := unix.Mount("cgroup2", unified, "cgroup2", flags, ""); err != nil {
		return fmt.Errorf("mount cgroup2 at %s: %w", unified, err)
	}
	b, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return err
	}
	if !strings.Contains(string(b), ":memory:/") {
		return fmt.Errorf("no v1 memory line in /proc/self/cgroup after mounting:\n%s", b)
	}
	return nil
}

// v1BudgetCgroup is the cgroup of the budget container, for the release case.
var v1BudgetCgroup *kmod.Cgroup

// testV1Layout mounts the hybrid layout before anything loads the module.
func testV1Layout(t *T) {
	if exists("/sys/module/" + kmod.ModuleName) {
		t.Fatalf("/sys/module/greenboost exists before any container")
	}
	t.Check(mountHybridV1(), "hybrid cgroup layout")
	b, _ := os.ReadFile("/proc/self/cgroup")
	t.Logf("/proc/self/cgroup:\n%s", strings.TrimSpace(string(b)))
}

// v1Result parses gballoc's result line: it must have reached the budget
// exactly, then EDQUOT, with its own usage and limit read back.
func v1Result(t *T, id, output string, budget uint64) uint64 {
	r, ok := kv(output, "GBALLOC result ")
	if !ok {
		t.Fatalf("%s: no result line:\n%s", id, output)
	}
	if atou(r["total"]) != budget || r["errno"] != "EDQUOT" {
		t.Errorf("%s: allocated %s bytes then %s, want exactly %d then EDQUOT", id, r["total"], r["errno"], budget)
	}
	if r["usage_errno"] != "0" || atou(r["usage"]) != budget || atou(r["limit"]) != budget {
		t.Errorf("%s: own usage %s (errno %s) limit %s, want %d/%d", id, r["usage"], r["usage_errno"], r["limit"], budget, budget)
	}
	return atou(r["cgroup"])
}

// v1Dir is where runc's cgroupfs driver puts container id's memory cgroup
// (cgroupsPath "/id").
func v1Dir(id string) string { return filepath.Join(v1MemoryRoot, id) }

// testV1Budget: a container created through greenboost-runtime on the hybrid
// host gets EDQUOT at exactly its budget, charged to its v1 memory cgroup;
// status shows it with its T2 and T3 budgets.
func testV1Budget(t *T) {
	const budget, nvme = 48 * miB, 16 * miB
	c := newContainer(t, "v1c", newSpec("v1c", allocArgs, specOpts{env: []string{"GREENBOOST_RAM_LIMIT=48M", "GREENBOOST_NVME_LIMIT=16M"}}))
	t.Cleanup(c.forceDelete)
	c.create(t)
	if !exists("/sys/module/" + kmod.ModuleName) {
		t.Fatalf("greenboost-runtime create did not load the module: %s", c.output())
	}
	dev := openModule(t)
	q, err := dev.Query()
	t.Check(err, "CG_QUERY")
	if q.Hierarchy != kmod.HierarchyV1Memory {
		t.Fatalf("the module accounts in hierarchy %d on a hybrid host, want %d (v1 memory)", q.Hierarchy, kmod.HierarchyV1Memory)
	}
	dir := v1Dir(c.id)
	id, err := kmod.CgroupID(dir)
	t.Check(err, "the container's v1 memory cgroup")
	cg := kmod.Cgroup{Hierarchy: kmod.HierarchyV1Memory, ID: id}
	c.start(t)
	o := c.waitOutput(t, "GBALLOC hold", 60*time.Second)
	t.Logf("container output:\n%s", o)
	if got := v1Result(t, c.id, o, budget); got != id {
		t.Errorf("the container's CG_QUERY id %d, want %d (inode of %s)", got, id, dir)
	}
	v1BudgetCgroup = &cg
	// the device rule the wrapper adds works in the v1 devices controller
	if p, ok := kv(o, "PRELOAD libgreenboost_cuda.so "); !ok || p["active"] != "1" || p["open"] != "0" {
		t.Errorf("preload line %v, want active=1 open=0 (the v1 devices cgroup must allow /dev/greenboost)", p)
	}
	if s, err := c.state(); err == nil {
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", s.Pid))
		if !strings.Contains(string(b), ":memory:/"+c.id+"\n") {
			t.Errorf("the container's /proc/PID/cgroup has no memory:/%s line:\n%s", c.id, b)
		}
	}
	u, err := dev.Usage(cg, false)
	t.Check(err, "usage of the container's cgroup")
	if u.T2Usage != budget || u.T2Max != budget || u.T3Max != nvme || u.T2Failcnt != 1 || u.NodeFlags&kmod.CgNodeAlive == 0 {
		t.Errorf("usage of %s: %+v; want %d of %d, T3 max %d, failcnt 1, ALIVE", cg, u, budget, budget, nvme)
	}

	st, raw := ctkStatus(t)
	human := runCmd(CtkBin, "status")
	t.Logf("greenboost-ctk status:\n%s", human.out)
	if st.Module.Hierarchy != "v1-memory" {
		t.Errorf("status: module cgroup_hierarchy %q, want v1-memory", st.Module.Hierarchy)
	}
	if !strings.Contains(human.out, "T3 USED/LIMIT") {
		t.Errorf("status has no T3 column")
	}
	found := false
	for _, row := range st.Containers {
		if row.ID != c.id {
			continue
		}
		found = true
		if row.Cgroup.Hierarchy != kmod.HierarchyV1Memory || row.Cgroup.ID != id || row.Cgroup.Path != dir ||
			row.T2Used != budget || row.T2Limit != budget || row.T3Limit != nvme || row.T3Used != 0 || !row.Enforced {
			t.Errorf("status of %s: %+v; want cgroup 1/%d at %s, T2 %d/%d, T3 0/%d, enforced", c.id, row, id, dir, budget, budget, nvme)
		}
	}
	if !found {
		t.Errorf("status --json does not list %s:\n%s", c.id, raw)
	}
	c.signal(t, "USR1")
	c.waitOutput(t, "GBALLOC done", 30*time.Second)
	c.waitStopped(t, 30*time.Second)
	c.delete(t)
}

// testV1Released: after delete, nothing is charged or limited and the
// container's node, record and cgroup are gone.
func testV1Released(t *T) {
	if v1BudgetCgroup == nil {
		t.Fatalf("the budget container did not run (see v1-budget-48M)")
	}
	st, raw := ctkStatus(t)
	if len(st.Containers) != 0 || len(st.UnclaimedNodes) != 0 || st.Module.T2UsedMB != 0 || st.Module.Buffers != 0 {
		t.Errorf("status after delete, want no containers, no unclaimed nodes, 0 MiB, 0 buffers:\n%s", raw)
	}
	if r := records(); len(r) != 0 {
		t.Errorf("records left: %v", r)
	}
	nodes, err := openModule(t).List()
	t.Check(err, "CG_LIST")
	for _, n := range nodes {
		if n.NodeFlags&kmod.CgNodeHasLimit != 0 || n.T2Usage != 0 || n.T3Usage != 0 || n.NrBuffers != 0 {
			t.Errorf("node left with a limit or usage: %s", nodeString(n))
		}
	}
	if n, err := findNode(nodes, *v1BudgetCgroup); err == nil {
		t.Errorf("the node of %s is still listed: %s", v1BudgetCgroup, nodeString(n))
	}
	if exists(v1Dir("v1c")) {
		t.Errorf("cgroup %s still exists", v1Dir("v1c"))
	}
}

// testV1GCAfterCrash: a container killed and removed without its poststop
// hook leaves a node that CG_LIST reports as not alive (exactly, on v1);
// gc releases it, drops the record, and releases a hand-made orphan node.
func testV1GCAfterCrash(t *T) {
	const budget = 32 * miB
	c := newContainer(t, "v1crash", newSpec("v1crash", allocArgs, specOpts{env: []string{"GREENBOOST_RAM_LIMIT=32M"}}))
	t.Cleanup(c.forceDelete)
	c.create(t)
	c.start(t)
	o := c.waitOutput(t, "GBALLOC hold", 60*time.Second)
	cg := kmod.Cgroup{Hierarchy: kmod.HierarchyV1Memory, ID: v1Result(t, c.id, o, budget)}
	s, err := c.state()
	t.Check(err, "state")
	t.Check(syscall.Kill(s.Pid, syscall.SIGKILL), "kill -9 the container")
	c.waitStopped(t, 30*time.Second)
	stripHooks(t, c.id)
	if r := runCmd(RuncBin, "delete", "--force", c.id); r.err != nil {
		t.Fatalf("runc delete --force %s: %v: %s", c.id, r.err, r.out)
	}
	dev := openModule(t)
	nodes, err := dev.List()
	t.Check(err, "CG_LIST")
	n, err := findNode(nodes, cg)
	if err != nil {
		t.Fatalf("no node for the crashed container's cgroup %s", cg)
	}
	t.Logf("after the crash: node %s, records %v", nodeString(n), records())
	if n.NodeFlags&kmod.CgNodeHasLimit == 0 || n.T2Max != budget || n.NodeFlags&(kmod.CgNodeAlive|kmod.CgNodeAliveUnknown) != 0 {
		t.Errorf("node of the crashed container %s, want limit %d, not alive", nodeString(n), budget)
	}

	orphanDir := filepath.Join(v1MemoryRoot, "gbtest-orphan")
	t.Check(os.Mkdir(orphanDir, 0o755), "mkdir orphan cgroup")
	oid, err := kmod.CgroupID(orphanDir)
	t.Check(err, "orphan cgroup id")
	orphan := kmod.Cgroup{Hierarchy: kmod.HierarchyV1Memory, ID: oid}
	_, err = dev.SetLimit(orphan, 16*miB, kmod.Unlimited)
	t.Check(err, "set a limit on the orphan cgroup")
	t.Check(os.Remove(orphanDir), "rmdir orphan cgroup")

	r := runCmd(CtkBin, "gc", "--json")
	t.Logf("greenboost-ctk gc --json: %s", strings.TrimSpace(r.out))
	if r.err != nil {
		t.Errorf("greenboost-ctk gc: %v", r.err)
	}
	var res struct {
		RecordsDropped []string `json:"records_dropped"`
		NodesReleased  []uint64 `json:"nodes_released"`
	}
	if err := json.Unmarshal([]byte(r.out), &res); err != nil {
		t.Fatalf("gc --json: %v", err)
	}
	if !slices.Contains(res.RecordsDropped, c.id) {
		t.Errorf("gc did not drop the record of %s: %+v", c.id, res)
	}
	if !slices.Contains(res.NodesReleased, oid) {
		t.Errorf("gc did not release the orphan node %d: %+v", oid, res)
	}
	nodes, err = dev.List()
	t.Check(err, "CG_LIST after gc")
	for _, x := range []kmod.Cgroup{cg, orphan} {
		if n, err := findNode(nodes, x); err == nil {
			t.Errorf("after gc the node of %s is still there: %s", x, nodeString(n))
		}
	}
	st, raw := ctkStatus(t)
	if len(st.Containers) != 0 || len(st.UnclaimedNodes) != 0 {
		t.Errorf("status after gc, want nothing:\n%s", raw)
	}
}
