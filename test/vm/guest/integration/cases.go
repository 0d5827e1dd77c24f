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

	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/greenboost/greenboost-container-toolkit/kmod"
)

const miB = uint64(1) << 20

// containerLibPath is where the wrapper mounts the library ([library]
// container-path default).
const containerLibPath = "/usr/lib/greenboost/libgreenboost_cuda.so"

var integrationCases = []Case{
	{Name: "runtime-loads-module", Timeout: 90 * time.Second, Fn: testLoadsModule},
	{Name: "preload-and-device-rule", Timeout: 60 * time.Second, Fn: testPreload},
	{Name: "budgets-64M-128M", Timeout: 120 * time.Second, Fn: testBudgets},
	{Name: "released-after-delete", Timeout: 30 * time.Second, Fn: testReleased},
	{Name: "gc-after-crash", Timeout: 90 * time.Second, Fn: testGCAfterCrash},
	{Name: "userns-cannot-set-limit", Timeout: 60 * time.Second, Fn: testUserns},
	{Name: "bogus-limit-fails-create", Timeout: 60 * time.Second, Fn: testBogusLimit},
	{Name: "unrecorded-budget-released", Timeout: 60 * time.Second, Fn: testUnrecordedBudget},
	{Name: "podman-cdi-budget", Timeout: 150 * time.Second, Fn: testPodmanCDI},
}

// layout is where runc (cgroupfs driver, cgroupsPath "/ID") puts the
// cgroup of container ID that the module accounts in: root/ID.
type layout struct {
	root      string
	hierarchy uint32
}

// cgLayout is this boot's: v1Layout in ModeIntegrationV1.
var cgLayout = layout{root: "/sys/fs/cgroup", hierarchy: kmod.HierarchyV2}

func (l layout) dir(id string) string { return filepath.Join(l.root, id) }

// What earlier cases leave for later ones.
var (
	firstOutput    string        // the first container's output
	budgetIDs      []string      // the containers of the budget case
	budgetCgroups  []kmod.Cgroup // and their cgroups
	allocArgs      = []string{"/bin/gbdyn", "/bin/gballoc", "alloc", "-step", "8M", "-hold"}
	probeArgs      = []string{"/bin/gbdyn", "/bin/gballoc", "probe"}
	errNoNodeFound = fmt.Errorf("no node")
)

// hostDev stats the host's /dev/greenboost.
func hostDev(t *T) unix.Stat_t {
	var st unix.Stat_t
	t.Check(unix.Stat(kmod.DefaultDevicePath, &st), "stat /dev/greenboost on the host")
	return st
}

// openModule opens the device for the host-side checks.
func openModule(t *T) *kmod.Device {
	d, err := kmod.Open("")
	t.Check(err, "open /dev/greenboost on the host")
	t.Cleanup(func() { d.Close() })
	return d
}

func findNode(nodes []kmod.CgEntry, cg kmod.Cgroup) (kmod.CgEntry, error) {
	for _, n := range nodes {
		if n.Hierarchy == cg.Hierarchy && n.CgroupID == cg.ID {
			return n, nil
		}
	}
	return kmod.CgEntry{}, errNoNodeFound
}

func nodeString(n kmod.CgEntry) string {
	return fmt.Sprintf("{cgroup %s t2 %d/%s flags %#x buffers %d}", kmod.Cgroup{Hierarchy: n.Hierarchy, ID: n.CgroupID},
		n.T2Usage, limitString(n.T2Max), n.NodeFlags, n.NrBuffers)
}

func limitString(b uint64) string {
	if b == kmod.Unlimited {
		return "unlimited"
	}
	return fmt.Sprint(b)
}

// testLoadsModule: from a boot without the module, the first container
// created through greenboost-runtime inserts it and sees /dev/greenboost.
func testLoadsModule(t *T) {
	if exists("/sys/module/" + kmod.ModuleName) {
		t.Fatalf("/sys/module/greenboost exists before any container: the module must not be loaded at boot")
	}
	if exists(kmod.DefaultDevicePath) {
		t.Fatalf("/dev/greenboost exists before any container")
	}
	t.Logf("before: /sys/module/greenboost absent, /dev/greenboost absent")
	c := newContainer(t, "first", newSpec("first", probeArgs, specOpts{}))
	t.Cleanup(c.forceDelete)
	c.create(t)
	if !exists("/sys/module/" + kmod.ModuleName) {
		t.Fatalf("greenboost-runtime create did not load the module (no /sys/module/greenboost); output: %s", c.output())
	}
	st := hostDev(t)
	if st.Mode&unix.S_IFMT != unix.S_IFCHR {
		t.Fatalf("/dev/greenboost is not a character device (mode %#o)", st.Mode)
	}
	if b, err := os.ReadFile("/sys/module/greenboost/initstate"); err == nil {
		t.Logf("after create: /sys/module/greenboost/initstate %s, /dev/greenboost %d:%d",
			strings.TrimSpace(string(b)), unix.Major(st.Rdev), unix.Minor(st.Rdev))
	}
	if !slices.Contains(records(), "first") {
		t.Errorf("no hook record for container first after create (records %v)", records())
	}
	c.start(t)
	c.waitStopped(t, 30*time.Second)
	firstOutput = c.output()
	t.Logf("container output:\n%s", firstOutput)
	p, ok := kv(firstOutput, "GBALLOC probe ")
	if !ok {
		t.Fatalf("the container printed no probe line")
	}
	want := fmt.Sprintf("%d:%d", unix.Major(st.Rdev), unix.Minor(st.Rdev))
	if p["dev"] != "char" || p["rdev"] != want || p["open"] != "0" || p["query"] != "0" {
		t.Errorf("in the container: /dev/greenboost %v, want dev=char rdev=%s open=0 query=0", p, want)
	}
	c.delete(t)
	if slices.Contains(records(), "first") {
		t.Errorf("record of container first left after delete")
	}
}

// testPreload: the preload library runs in the container with
// GREENBOOST_ACTIVE=1 and opens /dev/greenboost; without the device cgroup
// rule (plain runc, node only) the same open is refused.
func testPreload(t *T) {
	if firstOutput == "" {
		t.Fatalf("the first container did not run (see runtime-loads-module)")
	}
	p, ok := kv(firstOutput, "PRELOAD libgreenboost_cuda.so ")
	if !ok {
		t.Fatalf("the preload library did not run in the container (no PRELOAD line):\n%s", firstOutput)
	}
	if p["active"] != "1" || p["open"] != "0" || p["exe"] != "/bin/gbdyn" {
		t.Errorf("preload in the container: %v, want active=1 open=0 exe=/bin/gbdyn", p)
	}

	// Control: the node without the allow rule, through plain runc.
	st := hostDev(t)
	mode := os.FileMode(0o666)
	uid := uint32(0)
	spec := newSpec("norule", probeArgs, specOpts{
		env: []string{"LD_PRELOAD=" + containerLibPath},
		devices: []specs.LinuxDevice{{Path: "/dev/greenboost", Type: "c",
			Major: int64(unix.Major(st.Rdev)), Minor: int64(unix.Minor(st.Rdev)), FileMode: &mode, UID: &uid, GID: &uid}},
		mounts: []specs.Mount{{Destination: containerLibPath, Type: "bind", Source: LibraryPath,
			Options: []string{"ro", "nosuid", "nodev", "bind"}}},
	})
	c := newContainer(t, "norule", spec)
	t.Cleanup(c.forceDelete)
	for _, verb := range [][]string{{"create", "--bundle", c.bundle, c.id}, {"start", c.id}} {
		if r := c.runtime(RuncBin, verb...); r.err != nil {
			t.Fatalf("runc %s: %v: %s", verb[0], r.err, r.out)
		}
	}
	c.waitStopped(t, 30*time.Second)
	o := c.output()
	t.Logf("control container (plain runc, node but no device rule):\n%s", o)
	p, ok = kv(o, "PRELOAD libgreenboost_cuda.so ")
	if !ok || p["open"] != fmt.Sprint(int(unix.EPERM)) || p["active"] != "unset" {
		t.Errorf("control: preload %v, want active=unset open=%d (EPERM: no device rule)", p, unix.EPERM)
	}
	if r := runCmd(RuncBin, "delete", c.id); r.err != nil {
		t.Errorf("runc delete norule: %v: %s", r.err, r.out)
	}
}

// allocResult checks a gballoc alloc result line against a budget and
// returns the container's cgroup.
func allocResult(t *T, id, output string, budget uint64) kmod.Cgroup {
	r, ok := kv(output, "GBALLOC result ")
	if !ok {
		t.Errorf("%s: no result line:\n%s", id, output)
		return kmod.Cgroup{}
	}
	if atou(r["total"]) != budget || r["errno"] != "EDQUOT" {
		t.Errorf("%s: allocated %s bytes then %s, want exactly %d then EDQUOT", id, r["total"], r["errno"], budget)
	}
	if r["usage_errno"] != "0" || atou(r["usage"]) != budget || atou(r["limit"]) != budget {
		t.Errorf("%s: own usage %s (errno %s) limit %s, want %d/%d", id, r["usage"], r["usage_errno"], r["limit"], budget, budget)
	}
	if p, ok := kv(output, "PRELOAD libgreenboost_cuda.so "); !ok || p["active"] != "1" || p["open"] != "0" {
		t.Errorf("%s: preload line %v, want active=1 open=0", id, p)
	}
	return kmod.Cgroup{Hierarchy: cgLayout.hierarchy, ID: atou(r["cgroup"])}
}

// testBudgets: two containers with 64M and 128M run at once; each gets
// EDQUOT at exactly its budget, and status lists both while they run.
func testBudgets(t *T) {
	type ctr struct {
		c      *container
		budget uint64
	}
	var cs []ctr
	for _, b := range []struct {
		id    string
		limit string
		bytes uint64
	}{{"c64", "64M", 64 * miB}, {"c128", "128M", 128 * miB}} {
		c := newContainer(t, b.id, newSpec(b.id, allocArgs, specOpts{env: []string{"GREENBOOST_RAM_LIMIT=" + b.limit}}))
		t.Cleanup(c.forceDelete)
		c.create(t)
		cs = append(cs, ctr{c, b.bytes})
	}
	for _, x := range cs {
		x.c.start(t)
	}
	var cgs []kmod.Cgroup
	for _, x := range cs {
		o := x.c.waitOutput(t, "GBALLOC hold", 60*time.Second)
		cgs = append(cgs, allocResult(t, x.c.id, o, x.budget))
	}
	budgetIDs, budgetCgroups = []string{"c64", "c128"}, cgs
	st, raw := ctkStatus(t)
	human := runCmd(CtkBin, "status")
	t.Logf("greenboost-ctk status (both running):\n%s", human.out)
	// The module lists budgets only to CAP_SYS_ADMIN: another user is told
	// so, not shown a status without them.
	if r := runCmdAs(&syscall.Credential{Uid: 65534, Gid: 65534}, CtkBin, "status"); r.err == nil || !strings.Contains(r.out, "run greenboost-ctk status as root") {
		t.Errorf("greenboost-ctk status as nobody: %v: %s; want a failure that says to run it as root", r.err, r.out)
	}
	if !st.Module.Loaded || st.Module.Unavailable != "" {
		t.Errorf("status: module %+v", st.Module)
	}
	for i, x := range cs {
		found := false
		for _, row := range st.Containers {
			if row.ID != x.c.id {
				continue
			}
			found = true
			if row.T2Used != x.budget || row.T2Limit != x.budget || !row.Enforced || row.Cgroup.ID != cgs[i].ID {
				t.Errorf("status of %s: used %d limit %d enforced %v cgroup %d, want %d/%d enforced cgroup %d",
					x.c.id, row.T2Used, row.T2Limit, row.Enforced, row.Cgroup.ID, x.budget, x.budget, cgs[i].ID)
			}
		}
		if !found {
			t.Errorf("status --json does not list %s:\n%s", x.c.id, raw)
		}
	}
	if st.Module.T2UsedMB < 192 {
		t.Errorf("status: module T2 used %d MiB, want >= 192", st.Module.T2UsedMB)
	}
	for _, x := range cs {
		x.c.signal(t, "USR1")
	}
	for _, x := range cs {
		x.c.waitOutput(t, "GBALLOC done", 30*time.Second)
		x.c.waitStopped(t, 30*time.Second)
		x.c.delete(t)
	}
}

// testReleased: after the containers exit and are deleted, usage is zero,
// no limited node remains and the records are gone.
func testReleased(t *T) {
	if len(budgetCgroups) == 0 {
		t.Fatalf("the budget containers did not run (see budgets-64M-128M)")
	}
	st, raw := ctkStatus(t)
	if len(st.Containers) != 0 || len(st.UnclaimedNodes) != 0 || st.Module.T2UsedMB != 0 || st.Module.Buffers != 0 {
		t.Errorf("status after delete, want no containers, no unclaimed nodes, 0 MiB, 0 buffers:\n%s", raw)
	}
	if r := records(); len(r) != 0 {
		t.Errorf("records left: %v", r)
	}
	dev := openModule(t)
	nodes, err := dev.List()
	t.Check(err, "CG_LIST")
	for _, n := range nodes {
		if n.NodeFlags&kmod.CgNodeHasLimit != 0 || n.T2Usage != 0 || n.T3Usage != 0 || n.NrBuffers != 0 {
			t.Errorf("node left with a limit or usage: %s", nodeString(n))
		}
	}
	for _, cg := range budgetCgroups {
		if n, err := findNode(nodes, cg); err == nil {
			t.Errorf("the node of %s is still listed: %s", cg, nodeString(n))
		}
	}
	for _, id := range budgetIDs {
		if exists(cgLayout.dir(id)) {
			t.Errorf("cgroup %s still exists", cgLayout.dir(id))
		}
	}
	t.Logf("CG_LIST after delete: %d node(s)", len(nodes))
}

// stripHooks removes the hooks from runc's saved state of id, so that
// `runc delete` behaves like a runtime that crashed before poststop.
func stripHooks(t *T, id string) {
	path := filepath.Join(RuncRoot, id, "state.json")
	data, err := os.ReadFile(path)
	t.Check(err, "read runc state")
	var state map[string]any
	t.Check(json.Unmarshal(data, &state), "parse runc state")
	cfg, ok := state["config"].(map[string]any)
	if !ok {
		t.Fatalf("runc state %s has no config", path)
	}
	// libcontainer's config names them "Hooks"
	stripped := false
	for _, k := range []string{"Hooks", "hooks"} {
		if h, ok := cfg[k]; ok && h != nil {
			delete(cfg, k)
			stripped = true
		}
	}
	if !stripped {
		t.Fatalf("runc state %s has no hooks to strip (did the wrapper add them?)", path)
	}
	out, err := json.Marshal(state)
	t.Check(err, "encode runc state")
	t.Check(os.WriteFile(path, out, 0o600), "write runc state")
}

// testGCAfterCrash: a container SIGKILLed and removed without its poststop
// hook leaves a node and a record; `greenboost-ctk gc` releases the node and
// drops the record. gc also releases a node no record names.
func testGCAfterCrash(t *T) {
	const budget = 32 * miB
	c := newContainer(t, "crash", newSpec("crash", allocArgs, specOpts{env: []string{"GREENBOOST_RAM_LIMIT=32M"}}))
	t.Cleanup(c.forceDelete)
	c.create(t)
	c.start(t)
	o := c.waitOutput(t, "GBALLOC hold", 60*time.Second)
	cg := allocResult(t, c.id, o, budget)
	s, err := c.state()
	t.Check(err, "state")
	t.Check(syscall.Kill(s.Pid, syscall.SIGKILL), "kill -9 the container")
	c.waitStopped(t, 30*time.Second)
	stripHooks(t, c.id)
	if r := runCmd(RuncBin, "delete", "--force", c.id); r.err != nil {
		t.Fatalf("runc delete --force crash: %v: %s", r.err, r.out)
	}
	t.Logf("killed pid %d with SIGKILL and removed the container with runc, poststop hook stripped", s.Pid)

	dev := openModule(t)
	nodes, err := dev.List()
	t.Check(err, "CG_LIST")
	n, err := findNode(nodes, cg)
	if err != nil {
		t.Fatalf("no node for the crashed container's cgroup %s: nothing for gc to do (was the limit set?)", cg)
	}
	t.Logf("after the crash: node %s, records %v", nodeString(n), records())
	if n.NodeFlags&kmod.CgNodeHasLimit == 0 || n.T2Max != budget || n.NodeFlags&(kmod.CgNodeAlive|kmod.CgNodeAliveUnknown) != 0 {
		t.Errorf("node of the crashed container %s, want limit %d, not alive", nodeString(n), budget)
	}
	if !slices.Contains(records(), "crash") {
		t.Errorf("no record of the crashed container: poststop ran after all?")
	}

	// A node no record names: a cgroup limited by hand, then removed.
	orphanDir := cgLayout.dir("gbtest-orphan")
	t.Check(os.Mkdir(orphanDir, 0o755), "mkdir orphan cgroup")
	oid, err := kmod.CgroupID(orphanDir)
	t.Check(err, "orphan cgroup id")
	orphan := kmod.Cgroup{Hierarchy: cgLayout.hierarchy, ID: oid}
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
		Pending        []string `json:"pending"`
	}
	if err := json.Unmarshal([]byte(r.out), &res); err != nil {
		t.Fatalf("gc --json: %v", err)
	}
	if !slices.Contains(res.RecordsDropped, "crash") {
		t.Errorf("gc did not drop the record of crash: %+v", res)
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
	if slices.Contains(records(), "crash") {
		t.Errorf("after gc the record of crash is still there")
	}
	st, raw := ctkStatus(t)
	if len(st.Containers) != 0 || len(st.UnclaimedNodes) != 0 {
		t.Errorf("status after gc, want nothing:\n%s", raw)
	}
}

// testUserns: root with every capability in a user namespace can read its
// own usage but cannot change its limit (or release or list nodes).
func testUserns(t *T) {
	const budget = 16 * miB
	c := newContainer(t, "userns", newSpec("userns", []string{"/bin/gbdyn", "/bin/gballoc", "userns"},
		specOpts{env: []string{"GREENBOOST_RAM_LIMIT=16M"}, userns: true}))
	t.Cleanup(c.forceDelete)
	c.create(t)
	c.start(t)
	c.waitStopped(t, 30*time.Second)
	o := c.output()
	t.Logf("container output:\n%s", o)
	u, ok := kv(o, "GBALLOC userns ")
	if !ok {
		t.Fatalf("no userns result line")
	}
	want := map[string]string{
		"uid": "0", "capeff": "000001ffffffffff", "alloc": "0", "usage_errno": "0",
		"usage": fmt.Sprint(8 * miB), "limit": fmt.Sprint(budget),
		"setlimit": "EPERM", "setlimit_raise": "EPERM", "release": "EPERM", "list": "EPERM",
	}
	for k, v := range want {
		if u[k] != v {
			t.Errorf("in the user namespace %s=%s, want %s", k, u[k], v)
		}
	}
	if !strings.HasPrefix(u["uidmap"], "0:100000:65536") {
		t.Errorf("uid_map %q: the container is not in a user namespace mapping root to 100000", u["uidmap"])
	}
	if p, ok := kv(o, "PRELOAD libgreenboost_cuda.so "); !ok || p["active"] != "1" || p["open"] != "0" {
		t.Errorf("preload in the user namespace: %v, want active=1 open=0", p)
	}
	// The limit the hook set is unchanged.
	dev := openModule(t)
	us, err := dev.Usage(kmod.Cgroup{Hierarchy: kmod.HierarchyV2, ID: atou(u["cgroup"])}, false)
	if err != nil {
		t.Errorf("usage of the userns container's cgroup from the host: %v", err)
	} else if us.T2Max != budget {
		t.Errorf("after the attempts the limit is %s, want %d", limitString(us.T2Max), budget)
	}
	c.delete(t)
}

// testBogusLimit: an unparsable GREENBOOST_RAM_LIMIT fails create with the
// hook's message, and leaves nothing behind.
func testBogusLimit(t *T) {
	c := newContainer(t, "bogus", newSpec("bogus", probeArgs, specOpts{env: []string{"GREENBOOST_RAM_LIMIT=lots"}}))
	t.Cleanup(c.forceDelete)
	r := c.runtime(RuntimeBin, "create", "--bundle", c.bundle, c.id)
	t.Logf("greenboost-runtime create (GREENBOOST_RAM_LIMIT=lots): %v\n%s", r.err, r.out)
	if r.err == nil {
		t.Fatalf("create succeeded with GREENBOOST_RAM_LIMIT=lots")
	}
	if !strings.Contains(r.out, `GREENBOOST_RAM_LIMIT`) || !strings.Contains(r.out, `lots`) || !strings.Contains(r.out, "expected") {
		t.Errorf("create's error does not carry the hook's message naming GREENBOOST_RAM_LIMIT, the value and the expected form:\n%s", r.out)
	}
	if _, err := c.state(); err == nil {
		t.Errorf("runc still knows container bogus after the failed create")
	}
	if slices.Contains(records(), "bogus") {
		t.Errorf("a record of bogus exists")
	}
	if exists("/sys/fs/cgroup/bogus") {
		t.Errorf("the cgroup of bogus is left behind")
	}
}

// testUnrecordedBudget: when prestart cannot write the record of the budget
// it just set, create fails and the budget is released: no record would
// ever lead gc or poststop to it.
func testUnrecordedBudget(t *T) {
	dir := filepath.Join(StateDir, "containers")
	t.Check(os.MkdirAll(dir, 0o755), "mkdir "+dir)
	t.Check(unix.Mount(dir, dir, "", unix.MS_BIND, ""), "bind-mount "+dir)
	t.Check(unix.Mount("", dir, "", unix.MS_REMOUNT|unix.MS_BIND|unix.MS_RDONLY, ""), "make "+dir+" read-only")
	t.Cleanup(func() {
		if err := unix.Unmount(dir, 0); err != nil {
			t.Errorf("cleanup: unmount %s: %v", dir, err)
		}
	})
	c := newContainer(t, "unrecorded", newSpec("unrecorded", probeArgs, specOpts{env: []string{"GREENBOOST_RAM_LIMIT=16M"}}))
	t.Cleanup(c.forceDelete)
	r := c.runtime(RuntimeBin, "create", "--bundle", c.bundle, c.id)
	t.Logf("greenboost-runtime create with %s read-only: %v\n%s", dir, r.err, r.out)
	if r.err == nil {
		t.Fatalf("create succeeded though its record cannot be written")
	}
	if !strings.Contains(r.out, "read-only file system") {
		t.Errorf("create's error does not say why the record could not be written:\n%s", r.out)
	}
	nodes, err := openModule(t).List()
	t.Check(err, "CG_LIST")
	for _, n := range nodes {
		if n.NodeFlags&kmod.CgNodeHasLimit != 0 {
			t.Errorf("a budget is left after the failed create: %s", nodeString(n))
		}
	}
}
