package vm

import (
	"strings"
	"testing"
)

const sampleConsole = `SeaBIOS (version 1.16.2-debian-1.16.2-1)
[    0.000000] Linux version 6.1.0-56-cloud-amd64
GB-BOOTED
GB-CASES boot load limits
RUN boot
    | kernel 6.1.0
PASS boot (28ms)
RUN load
    | loaded in 41ms
[    3.9] greenboost: loading out-of-tree module taints kernel.
FAIL load: Ensure: cannot load /greenboost.ko: exec format error (60ms)
RUN limits
BENCH alloc size=2 MiB ratio=1.10
GB-GUEST-EXIT 0
GB-DMESG-BEGIN
[    0.000000] Linux version 6.1.0-56-cloud-amd64
[    3.921399] greenboost: loading out-of-tree module taints kernel.
GB-DMESG-END
GB-DONE
`

func TestConsoleParse(t *testing.T) {
	c, err := Parse(strings.NewReader(sampleConsole))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(c.Listed, ","); got != "boot,load,limits" {
		t.Errorf("listed %q", got)
	}
	if r := c.Cases["boot"]; r == nil || !r.Pass || len(r.Log) != 1 {
		t.Errorf("boot = %+v", r)
	}
	r := c.Cases["load"]
	if r == nil || r.Pass || r.Reason != "Ensure: cannot load /greenboost.ko: exec format error (60ms)" {
		t.Errorf("load = %+v", r)
	}
	if c.Running != "limits" {
		t.Errorf("running = %q, want limits (started, never reported)", c.Running)
	}
	if m := c.Missing([]string{"boot", "load", "limits"}); len(m) != 1 || m[0] != "limits" {
		t.Errorf("missing = %v", m)
	}
	if len(c.Bench) != 1 || c.Bench[0] != "alloc size=2 MiB ratio=1.10" {
		t.Errorf("bench = %q", c.Bench)
	}
	if c.GuestExit != "0" {
		t.Errorf("guest exit %q, want 0", c.GuestExit)
	}
	if !c.DmesgComplete || len(c.Dmesg) != 2 || !c.Done {
		t.Errorf("dmesg complete %v (%d lines), done %v", c.DmesgComplete, len(c.Dmesg), c.Done)
	}
	if p := c.KernelProblems(); len(p) != 0 {
		t.Errorf("problems in a clean log: %q", p)
	}
	if len(c.Kernel) != 2 {
		t.Errorf("kernel console lines %q", c.Kernel)
	}
}

func TestKernelProblems(t *testing.T) {
	for _, tc := range []struct {
		name, log string
		want      int
	}{
		{"warning", "GB-DMESG-BEGIN\n[ 1.0] WARNING: CPU: 1 PID: 77 at greenboost.c:812 gb_charge_add+0x1/0x2 [greenboost]\n[ 1.0] Call Trace:\nGB-DMESG-END\n", 2},
		{"bug", "GB-DMESG-BEGIN\n[ 1.0] BUG: kernel NULL pointer dereference, address: 0000000000000008\nGB-DMESG-END\n", 1},
		{"oops", "GB-DMESG-BEGIN\n[ 1.0] Oops: 0002 [#1] PREEMPT SMP NOPTI\nGB-DMESG-END\n", 1},
		{"refcount", "GB-DMESG-BEGIN\n[ 1.0] refcount_t: underflow; use-after-free.\nGB-DMESG-END\n", 1},
		{"clean", "GB-DMESG-BEGIN\n[ 1.0] greenboost: pool 980 MiB\n[ 1.0] debug: BUGGY is not a word boundary\nGB-DMESG-END\n", 0},
		// no dmesg block (crash): timestamped console lines count
		{"crash", "RUN stress\n[ 9.1] general protection fault, probably for non-canonical address\n[ 9.1] Kernel panic - not syncing: Fatal exception\n", 2},
		// with a dmesg block, console copies of its lines are not counted twice
		{"once", "[ 1.0] WARNING: x\nGB-DMESG-BEGIN\n[ 1.0] WARNING: x\nGB-DMESG-END\n", 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, _ := Parse(strings.NewReader(tc.log))
			if p := c.KernelProblems(); len(p) != tc.want {
				t.Errorf("%d problems, want %d: %q", len(p), tc.want, p)
			}
		})
	}
}
