package integration

import (
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/greenboost/greenboost-container-toolkit/kmod"
	"github.com/greenboost/greenboost-container-toolkit/test/vm/guest/guesttest"
)

// The demo (DESIGN.md §7): a transcript for people, lines prefixed "DEMO "
// (the host test prints them without the prefix), and three cases that
// assert its key facts.
var demoCases = []Case{
	{Name: "demo-start-two-containers", Timeout: 120 * time.Second, Fn: demoStart},
	{Name: "demo-budgets-enforced", Timeout: 90 * time.Second, Fn: demoBudgets},
	{Name: "demo-usage-back-to-zero", Timeout: 90 * time.Second, Fn: demoExit},
}

// DemoPrefix starts every transcript line on the console.
const DemoPrefix = "DEMO "

func say(format string, args ...any) {
	for _, l := range strings.Split(strings.TrimRight(fmt.Sprintf(format, args...), "\n"), "\n") {
		guesttest.Out(DemoPrefix + l)
	}
}

// shell shows a command line and its output, as a terminal would.
func shell(display, name string, args ...string) cmdResult {
	say("$ %s", display)
	r := runCmd(name, args...)
	if s := strings.TrimRight(r.out, "\n"); s != "" {
		say("%s", s)
	}
	return r
}

type demoContainer struct {
	*container
	limit  string
	budget uint64
	shown  int // bytes of its output already shown
}

var demoCtrs []*demoContainer

// containerScript is what each demo container runs: a look at what
// GreenBoost gave it, then gballoc through the dynamic launcher (so the
// preload library loads) until the budget stops it.
const containerScript = `echo '$ ls -l /dev/greenboost ` + containerLibPath + `'
ls -l /dev/greenboost ` + containerLibPath + `
echo "\$ echo \$LD_PRELOAD \$GREENBOOST_ACTIVE"
echo "$LD_PRELOAD $GREENBOOST_ACTIVE"
echo '$ gballoc alloc -step 8M   # through a dynamic launcher, so ld.so loads the preload library'
exec /bin/gbdyn /bin/gballoc alloc -step 8M -hold`

// showOutput prints what the container wrote since last time, without the
// machine-readable GBALLOC lines.
func (d *demoContainer) showOutput() {
	o := d.output()
	if d.shown > len(o) {
		d.shown = 0
	}
	for _, l := range strings.Split(strings.TrimRight(o[d.shown:], "\n"), "\n") {
		if l == "" || strings.HasPrefix(l, "GBALLOC ") {
			continue
		}
		say("  [%s] %s", d.id, l)
	}
	d.shown = len(o)
}

func demoStart(t *T) {
	say("# GreenBoost Container Toolkit demo: a fresh VM (Linux %s, runc underneath), nothing loaded by hand.", kernelRelease())
	shell("cat "+ConfigPath, "cat", ConfigPath)
	r := shell("ls /sys/module/greenboost", "ls", "/sys/module/greenboost")
	if r.err == nil {
		t.Fatalf("the module is loaded before any container")
	}
	say("# The module is not loaded.")
	say("# Two containers run gballoc, which allocates pinned RAM from /dev/greenboost in 8 MiB steps,")
	say("# with different RAM budgets: small GREENBOOST_RAM_LIMIT=64M, big GREENBOOST_RAM_LIMIT=128M.")
	for i, b := range []struct {
		id, limit string
		bytes     uint64
	}{{"small", "64M", 64 * miB}, {"big", "128M", 128 * miB}} {
		c := newContainer(t, b.id, newSpec(b.id, []string{"/bin/sh", "-c", containerScript},
			specOpts{env: []string{"GREENBOOST_RAM_LIMIT=" + b.limit}}))
		d := &demoContainer{container: c, limit: b.limit, budget: b.bytes}
		demoCtrs = append(demoCtrs, d)
		say("$ greenboost-runtime create --bundle %s %s", c.bundle, c.id)
		if r := c.runtime(RuntimeBin, "create", "--bundle", c.bundle, c.id); r.err != nil {
			say("%s", r.out)
			t.Fatalf("greenboost-runtime create %s: %v: %s", c.id, r.err, r.out)
		}
		d.shown = len(c.output())
		if i == 0 {
			shell("grep greenboost /proc/modules   # inserted by greenboost-runtime", "grep", "greenboost", "/proc/modules")
			shell("ls -l /dev/greenboost", "ls", "-l", "/dev/greenboost")
			if !exists("/sys/module/" + kmod.ModuleName) {
				t.Fatalf("greenboost-runtime create did not load the module")
			}
		}
		say("$ greenboost-runtime start %s", c.id)
		if r := c.runtime(RuntimeBin, "start", c.id); r.err != nil {
			t.Fatalf("greenboost-runtime start %s: %v: %s", c.id, r.err, r.out)
		}
	}
}

func demoBudgets(t *T) {
	if len(demoCtrs) != 2 {
		t.Fatalf("the containers did not start")
	}
	for _, d := range demoCtrs {
		o := d.waitOutput(t, "GBALLOC hold", 60*time.Second)
		say("# inside %s (GREENBOOST_RAM_LIMIT=%s):", d.id, d.limit)
		d.showOutput()
		allocResult(t, d.id, o, d.budget)
	}
	say("# Both containers hold their buffers; on the host:")
	if r := shell("greenboost-ctk status", CtkBin, "status"); r.err != nil {
		t.Errorf("greenboost-ctk status: %v", r.err)
	}
	st, raw := ctkStatus(t)
	for _, d := range demoCtrs {
		ok := false
		for _, row := range st.Containers {
			if row.ID == d.id && row.T2Used == d.budget && row.T2Limit == d.budget {
				ok = true
			}
		}
		if !ok {
			t.Errorf("status --json does not show %s using %d of %d:\n%s", d.id, d.budget, d.budget, raw)
		}
	}
}

func demoExit(t *T) {
	if len(demoCtrs) != 2 {
		t.Fatalf("the containers did not start")
	}
	say("# Tell gballoc to free its buffers and exit, then remove the containers:")
	for _, d := range demoCtrs {
		shell("greenboost-runtime kill "+d.id+" USR1", RuntimeBin, "kill", d.id, "USR1")
	}
	for _, d := range demoCtrs {
		d.waitOutput(t, "GBALLOC done", 30*time.Second)
		d.waitStopped(t, 30*time.Second)
		d.showOutput()
	}
	for _, d := range demoCtrs {
		if r := shell("greenboost-runtime delete "+d.id+"   # the poststop hook releases its budget", RuntimeBin, "delete", d.id); r.err != nil {
			t.Errorf("delete %s: %v", d.id, r.err)
		}
	}
	shell("greenboost-ctk status", CtkBin, "status")
	st, raw := ctkStatus(t)
	if len(st.Containers) != 0 || len(st.UnclaimedNodes) != 0 || st.Module.T2UsedMB != 0 || st.Module.Buffers != 0 {
		t.Errorf("after both containers are gone, want no containers and 0 MiB used:\n%s", raw)
	}
	if r := records(); len(r) != 0 {
		t.Errorf("records left: %v", r)
	}
	dev, err := kmod.Open("")
	t.Check(err, "open /dev/greenboost")
	defer dev.Close()
	nodes, err := dev.List()
	t.Check(err, "CG_LIST")
	for _, n := range nodes {
		if n.T2Usage != 0 || n.NodeFlags&kmod.CgNodeHasLimit != 0 {
			t.Errorf("node left: %s", nodeString(n))
		}
	}
	if !t.Failed() {
		say("# Usage is back to zero: no container, no record, no budget left in the module.")
	}
}

func kernelRelease() string {
	b, err := os.ReadFile("/proc/sys/kernel/osrelease")
	if err != nil {
		return "?"
	}
	return strings.TrimSpace(string(b))
}
