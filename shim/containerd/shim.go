//go:build linux

// Package containerd is containerd-shim-greenboost-v2: containerd's runc v2
// shim (github.com/containerd/containerd v1.7) with greenboost-runtime as its
// runtime binary by default, so a containerd config needs only
// runtime_type = "io.containerd.greenboost.v2". On task delete it runs the
// poststop hook's release path (hook.ReleaseContainer) itself, idempotently,
// so a container's budgets and record are dropped even where runc skipped or
// failed the poststop hook.
package containerd

import (
	"context"
	"flag"
	"fmt"
	"runtime/debug"
	"slices"

	"github.com/containerd/containerd/plugin"
	"github.com/containerd/containerd/runtime/v2/runc/manager"
	_ "github.com/containerd/containerd/runtime/v2/runc/pause" // the sandbox API, as in containerd-shim-runc-v2
	"github.com/containerd/containerd/runtime/v2/shim"

	"github.com/greenboost/greenboost-container-toolkit/internal/version"
)

const (
	// RuntimeType is the name containerd knows the shim by; containerd maps
	// it to the binary BinaryName.
	RuntimeType = "io.containerd.greenboost.v2"
	// BinaryName is the shim executable's name.
	BinaryName = "containerd-shim-greenboost-v2"
	// RuntimeBinary is the OCI runtime the shim runs unless the runtime
	// options name another.
	RuntimeBinary = "greenboost-runtime"
)

// IsVersionRequest says whether args (without the program name) ask for
// the version. containerd's shim parses -v itself and prints containerd's
// version; ours answers --version, -version and -v before it sees them.
func IsVersionRequest(args []string) bool {
	return hasFlag(args, "--version", "-version", "-v", "--v")
}

// hasFlag says whether one of names is among args before a "--".
func hasFlag(args []string, names ...string) bool {
	for _, a := range args {
		if a == "--" {
			return false
		}
		if slices.Contains(names, a) {
			return true
		}
	}
	return false
}

// Version is what --version prints: ours, and the containerd shim it is built on.
func Version() string {
	s := version.String(BinaryName)
	if v := containerdVersion(); v != "" {
		s += "\ncontainerd runc shim: github.com/containerd/containerd " + v
	}
	return s
}

func containerdVersion() string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return ""
	}
	for _, d := range info.Deps {
		if d.Path == "github.com/containerd/containerd" {
			if d.Replace != nil {
				return d.Replace.Version
			}
			return d.Version
		}
	}
	return ""
}

// Run serves the shim protocol (containerd invokes the binary with
// start, delete or to serve the task API). containerd's shim library exits
// the process itself: on failure it prints the error and exits 1.
func Run(ctx context.Context) {
	// containerd's shim library parses the flags; its usage does not know
	// the requests answered before it runs.
	flag.CommandLine.Usage = func() {
		out := flag.CommandLine.Output()
		fmt.Fprintf(out, "Usage of %s (run by containerd, runtime type %s):\n", BinaryName, RuntimeType)
		flag.PrintDefaults()
		fmt.Fprint(out, "  -info\n    \tprint the runtime info containerd 2.x asks for (runtime options on stdin) and exit\n"+
			"  --version\n    \tthe same as -v\n")
	}
	plugin.Register(&plugin.Registration{
		Type: plugin.TTRPCPlugin,
		ID:   "task",
		Requires: []plugin.Type{
			plugin.EventPlugin,
			plugin.InternalPlugin,
		},
		InitFn: initTaskService,
	})
	shim.RunManager(ctx, newManager(manager.NewShimManager(RuntimeType), defaultReleaser{}))
}
