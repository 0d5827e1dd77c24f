// Package integration is the guest side of the VM integration tests and the
// demo (test/vm/integration_test.go, test/vm/demo_test.go): run as
// /usr/bin/gbinteg after the VM's root has moved to a tmpfs, it drives the
// product the way a user does — greenboost-runtime (runc underneath), the
// hook, greenboost-ctk — against the real module, from a boot where the
// module is not loaded, and reports each case on the serial console with the
// protocol of test/vm/console.go (GB-CASES, RUN, PASS, FAIL).
package integration

import (
	"os"
	"strings"
	"time"

	"github.com/greenboost/greenboost-container-toolkit/test/vm/guest/guesttest"
)

// Modes (kernel command line gb.mode=).
const (
	ModeIntegration = "integration"
	ModeDemo        = "demo"
)

// Paths inside the VM; the host test builds the initramfs with these.
const (
	ConfigPath  = "/etc/greenboost/config.toml"
	ModulePath  = "/lib/modules/greenboost.ko"
	LibraryPath = "/usr/lib/greenboost-fixture/libgreenboost_cuda.so"
	RuntimeBin  = "/usr/bin/greenboost-runtime"
	HookBin     = "/usr/bin/greenboost-hook"
	CtkBin      = "/usr/bin/greenboost-ctk"
	RuncBin     = "/usr/sbin/runc"
	GuestBin    = "/usr/bin/gbinteg"
	// RootfsDir is the containers' root file system (read-only, shared):
	// busybox, gballoc, the dynamic launcher gbdyn with libc and ld.so.
	RootfsDir = "/var/lib/gbtest/rootfs"
	// BundleDir holds one bundle (config.json) and output log per container.
	BundleDir = "/run/gbtest"
	StateDir  = "/run/greenboost"
	RuncRoot  = "/run/runc"
)

// Config is the toolkit config of the guest: the product defaults except
// the module (a path), the library (the fixture) and runc's absolute path.
const Config = `[runtime]
runtimes = ["` + RuncBin + `"]

[library]
host-paths = ["` + LibraryPath + `"]

[kmod]
load = "auto"
module = "` + ModulePath + `"

[hook]
path = "` + HookBin + `"
`

// T is the state of one running case.
type T = guesttest.T

// Case is one named check.
type Case struct {
	Name    string
	Timeout time.Duration
	Fn      func(t *T)
}

func cases(mode string) []Case {
	switch mode {
	case ModeIntegration:
		return integrationCases
	case ModeDemo:
		return demoCases
	case ModeIntegrationV1:
		return integrationV1Cases
	}
	return nil
}

// Names returns the case names of a mode in the order the guest runs them.
func Names(mode string) []string {
	var out []string
	for _, c := range cases(mode) {
		out = append(out, c.Name)
	}
	return out
}

func cmdlineMode() string {
	b, _ := os.ReadFile("/proc/cmdline")
	for _, f := range strings.Fields(string(b)) {
		if v, ok := strings.CutPrefix(f, "gb.mode="); ok {
			return v
		}
	}
	return ModeIntegration
}

// Main runs the cases of the mode given as argument or on the kernel
// command line (gb.mode=).
func Main(args []string) int {
	mode := cmdlineMode()
	if len(args) > 0 {
		mode = args[0]
	}
	cs := cases(mode)
	if len(cs) == 0 {
		guesttest.Out("FAIL setup: unknown mode " + mode)
		return 2
	}
	if mode == ModeIntegrationV1 {
		cgLayout = v1Layout
	}
	guesttest.Out("GB-CASES " + strings.Join(Names(mode), " "))
	for _, c := range cs {
		guesttest.Run(c.Name, c.Timeout, c.Fn)
	}
	return 0
}
