// Package shim is greenboost-runtime: a transparent OCI runtime wrapper that
// edits the bundle's spec on create/run and then becomes runc or crun.
package shim

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"

	"github.com/opencontainers/runtime-spec/specs-go"
	cdispec "tags.cncf.io/container-device-interface/specs-go"

	"github.com/greenboost/greenboost-container-toolkit/cdi"
	"github.com/greenboost/greenboost-container-toolkit/hook"
	"github.com/greenboost/greenboost-container-toolkit/internal/config"
	"github.com/greenboost/greenboost-container-toolkit/internal/logfile"
	"github.com/greenboost/greenboost-container-toolkit/internal/ocispec"
	"github.com/greenboost/greenboost-container-toolkit/internal/request"
	"github.com/greenboost/greenboost-container-toolkit/internal/version"
	"github.com/greenboost/greenboost-container-toolkit/shim/lowlevel"
)

// Run is greenboost-runtime. On create and run it edits the bundle's spec;
// every verb then becomes the low-level runtime via exec, so Run returns only
// on failure, or nil where it answered --version alone (no low-level
// runtime found). It writes nothing to stdout or stderr itself but a
// --version answer: engines parse them. (A verb that passes through has
// usually become the runtime before Run: see shim/passthrough.)
func Run(argv []string) error {
	args := lowlevel.ParseArgs(argv[1:])
	cfgPath := config.PathFromEnv()
	if !args.ModifiesSpec() {
		// Our version comes first and also when no runtime is found:
		// that is when a user asks for it.
		versionOnly := args.AsksVersion()
		if versionOnly {
			fmt.Println(version.String("greenboost-runtime"))
		}
		runtime, err := lowlevel.Find(config.Runtimes(cfgPath), cfgPath)
		if err != nil {
			if versionOnly {
				// The version asked for is given: the missing runtime is
				// said on stderr, as a failure says it, but fails nothing.
				fmt.Fprintln(os.Stderr, "greenboost-runtime: "+err.Error())
				return nil
			}
			return err
		}
		if args.ExecsProcessFile() {
			edited, err := execProcessWithEnv(runtime, args.Root, args.Process, args.ID)
			if err != nil {
				return err
			}
			if edited != "" {
				argv = args.WithProcess(argv, edited)
			}
		}
		return lowlevel.Exec(runtime, argv)
	}

	cfg, err := config.Load(cfgPath)
	if err != nil {
		return err
	}
	logger := newLogger(cfg, args)
	err = create(cfg, args, argv, logger)
	logger.Error("create failed", "args", argv[1:], "err", err) // stderr may go nowhere a user looks
	return err
}

// create edits the bundle's spec and becomes the low-level runtime; it
// returns only on failure.
func create(cfg *config.Config, args lowlevel.Args, argv []string, logger *slog.Logger) error {
	runtime, err := lowlevel.Find(cfg.Runtime.Runtimes, cfg.Path)
	if err != nil {
		return err
	}
	bundle, err := args.BundleDir()
	if err != nil {
		return fmt.Errorf("finding the bundle: %w", err)
	}
	if err := editBundle(cfg, args.ID, bundle, args.SpecPath(bundle), logger); err != nil {
		return err
	}
	logger.Debug("exec low-level runtime", "path", runtime, "args", argv[1:])
	return lowlevel.Exec(runtime, argv)
}

// editBundle applies the GreenBoost edits to container id's spec file
// (of the bundle directory bundle) unless the container opted out.
func editBundle(cfg *config.Config, id, bundle, specPath string, logger *slog.Logger) error {
	spec, err := LoadSpec(specPath)
	if err != nil {
		return err
	}
	defer spec.Close()
	raw := spec.Raw()
	if raw.Process == nil {
		// No container can be made from it (valid JSON such as {} or null):
		// the runtime says why, about the file as the engine wrote it.
		logger.Warn("spec has no process; left untouched for the runtime to report", "spec", specPath)
		return nil
	}
	req, err := request.Parse(raw.Annotations, raw.Process.Env)
	if err != nil {
		return err
	}
	if req.Disable {
		logger.Info("container opted out of GreenBoost; spec left untouched", "spec", specPath)
		return nil
	}
	if hasGreenBoost(raw.Hooks) {
		// A reused bundle keeps its edited spec but may have a fresh rootfs,
		// which needs the mount point again.
		makeLibraryMountPoint(cfg, raw, bundle, logger)
		logger.Info("spec already has GreenBoost (CDI device or an earlier edit); left untouched", "spec", specPath)
		return nil
	}
	// The hook checks the limits and the module again; failing here names
	// the problem even where a runtime hides hook output (crun).
	if _, _, err := req.Resolve(cfg, config.DefaultDevice); err != nil {
		return err
	}
	if cfg.Limits.Enforce {
		if err := hook.CheckEnforceable(cfg, id); err != nil { // loads the module per [kmod] load
			return err
		}
	} else if err := hook.LoadModule(cfg); err != nil {
		logger.Warn("GreenBoost module not loaded; [limits] enforce = false, so the container starts without budgets", "err", err)
	}
	edits, err := containerEdits(cfg, specPath, logger)
	if err != nil {
		return err
	}
	modifiers := []Modifier{greenboostEdits{edits: edits}, userNSDevices{nodes: edits.DeviceNodes}}
	if specPath != ocispec.Path(bundle) {
		abs, err := filepath.Abs(specPath) // the hook runs elsewhere
		if err != nil {
			return fmt.Errorf("finding the spec file %s: %w", specPath, err)
		}
		modifiers = append(modifiers, hookSpecArg{path: abs})
	}
	for _, m := range modifiers {
		if err := spec.Modify(m); err != nil {
			return fmt.Errorf("applying GreenBoost edits to %s: %w", specPath, err)
		}
	}
	if err := spec.Flush(); err != nil {
		return err
	}
	makeLibraryMountPoint(cfg, spec.Raw(), bundle, logger)
	logger.Info("applied GreenBoost edits", "spec", specPath)
	return nil
}

// makeLibraryMountPoint makes the mount point of the spec's library mount
// for a container in a user namespace (see makeMountPoint); a spec with only
// the hooks has none.
func makeLibraryMountPoint(cfg *config.Config, s *specs.Spec, bundle string, logger *slog.Logger) {
	dest := cfg.Library.ContainerPath
	if !slices.ContainsFunc(s.Mounts, func(m specs.Mount) bool { return m.Destination == dest }) {
		return
	}
	if err := makeMountPoint(s, bundle, dest); err != nil {
		// Not fatal: the runtime may still manage, or says why not.
		logger.Warn("could not make a mount point for the container's user namespace", "err", err)
	}
}

// containerEdits are the GreenBoost edits, or, where there is no device
// (no module) and enforcement is off, only the hooks: the container starts
// without GreenBoost, and its record says what it asked for, not enforced.
func containerEdits(cfg *config.Config, specPath string, logger *slog.Logger) (*cdispec.ContainerEdits, error) {
	if !cfg.Limits.Enforce {
		if _, err := os.Stat(cfg.Device.HostPath); errors.Is(err, fs.ErrNotExist) {
			logger.Warn("no GreenBoost device; [limits] enforce = false, so the container gets only the hooks, which record its limits as not enforced",
				"device", cfg.Device.HostPath, "spec", specPath)
			return cdi.HookEdits(cfg, config.DefaultDevice), nil
		}
	}
	return cdi.Edits(cfg, config.DefaultDevice)
}

// newLogger logs to [runtime] log-file at its level, or debug with runc's
// --debug. A log file that cannot be written must not fail containers.
func newLogger(cfg *config.Config, args lowlevel.Args) *slog.Logger {
	level := cfg.Runtime.LogLevel
	if args.Debug {
		level = "debug"
	}
	return logfile.New(cfg.Runtime.LogFile, level)
}
