package integration

import (
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/greenboost/greenboost-container-toolkit/kmod"
	"github.com/greenboost/greenboost-container-toolkit/test/vm/guest/hybrid"
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
	{Name: "v1-released-after-delete", Timeout: 30 * time.Second, Fn: testReleased},
	{Name: "v1-gc-after-crash", Timeout: 90 * time.Second, Fn: testGCAfterCrash},
}

// v1Layout: runc's cgroupfs driver puts a container's memory cgroup at
// /sys/fs/cgroup/memory/ID on the hybrid host.
var v1Layout = layout{root: hybrid.MemoryRoot, hierarchy: kmod.HierarchyV1Memory}

// testV1Layout mounts the hybrid layout before anything loads the module.
func testV1Layout(t *T) {
	if exists("/sys/module/" + kmod.ModuleName) {
		t.Fatalf("/sys/module/greenboost exists before any container")
	}
	t.Check(hybrid.Mount(), "hybrid cgroup layout")
	b, _ := os.ReadFile("/proc/self/cgroup")
	t.Logf("/proc/self/cgroup:\n%s", strings.TrimSpace(string(b)))
}

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
	dir := cgLayout.dir(c.id)
	id, err := kmod.CgroupID(dir)
	t.Check(err, "the container's v1 memory cgroup")
	cg := kmod.Cgroup{Hierarchy: kmod.HierarchyV1Memory, ID: id}
	c.start(t)
	o := c.waitOutput(t, "GBALLOC hold", 60*time.Second)
	t.Logf("container output:\n%s", o)
	// also: the device rule the wrapper adds works in the v1 devices controller
	if got := allocResult(t, c.id, o, budget); got != cg {
		t.Errorf("the container's CG_QUERY cgroup %s, want %s (inode of %s)", got, cg, dir)
	}
	budgetIDs, budgetCgroups = []string{c.id}, []kmod.Cgroup{cg}
	s, err := c.state()
	t.Check(err, "the container's state")
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", s.Pid))
	t.Check(err, "the container's /proc/PID/cgroup")
	if !strings.Contains(string(b), ":memory:/"+c.id+"\n") {
		t.Errorf("the container's /proc/PID/cgroup has no memory:/%s line:\n%s", c.id, b)
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
