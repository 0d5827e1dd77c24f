package cdi

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	cdiapi "tags.cncf.io/container-device-interface/pkg/cdi"
	cdispec "tags.cncf.io/container-device-interface/specs-go"

	"github.com/greenboost/greenboost-container-toolkit/internal/config"
)

// ErrStale marks a spec whose device numbers no longer match the live node,
// as after the module was reloaded with another major.
var ErrStale = errors.New("stale CDI spec")

// CheckFileName fails for a spec file that engines would never load: the
// CDI library reads only the files of a spec dir whose extension
// (filepath.Ext, case-sensitive) is ".yaml" or ".json", and passes over the
// others without a word.
func CheckFileName(path string) error {
	if ext := filepath.Ext(path); ext != ".yaml" && ext != ".json" {
		return fmt.Errorf("%s: engines never load it: the CDI library reads only files ending in .yaml or .json", path)
	}
	return nil
}

// Validate checks a spec file's name, its content with the CDI library, its
// kind, and its device numbers against the live device nodes; a mismatch of
// those wraps ErrStale.
func Validate(path string) (*cdiapi.Spec, error) {
	if err := CheckFileName(path); err != nil {
		return nil, err
	}
	spec, err := cdiapi.ReadSpec(path, 0)
	if err != nil {
		return nil, fmt.Errorf("invalid CDI spec %s: %w", path, err)
	}
	if spec.Kind != Kind {
		return nil, fmt.Errorf("invalid CDI spec %s: kind %q, expected %q (a GreenBoost spec)", path, spec.Kind, Kind)
	}
	edits := []cdispec.ContainerEdits{spec.ContainerEdits} // the spec's own and each device's
	for _, d := range spec.Devices {
		edits = append(edits, d.ContainerEdits)
	}
	for _, e := range edits {
		for _, h := range e.Hooks {
			if err := CheckHook(h.Path); err != nil {
				return spec, fmt.Errorf("invalid CDI spec %s: %w, then run `greenboost-ctk cdi generate`", path, err)
			}
			if err := checkHookConfig(h.Args); err != nil {
				return spec, fmt.Errorf("invalid CDI spec %s: its hook would fail every container: %w; then run `greenboost-ctk cdi generate`", path, err)
			}
		}
		for _, m := range e.Mounts {
			if _, err := os.Stat(m.HostPath); err != nil {
				return spec, fmt.Errorf("invalid CDI spec %s: the engine would fail every container: library %w: install libgreenboost_cuda.so there, or set [library] host-paths, then run `greenboost-ctk cdi generate`", path, err)
			}
		}
	}
	for _, e := range edits { // a stale spec is named as such only when nothing else is wrong
		for _, n := range e.DeviceNodes {
			if err := checkLive(n); err != nil {
				return spec, fmt.Errorf("%w %s: %w; regenerate it with `greenboost-ctk cdi generate`", ErrStale, path, err)
			}
		}
	}
	return spec, nil
}

// CheckHook fails where the hook binary at path cannot run: an engine would
// fail every container the spec is given to with "fork/exec …".
func CheckHook(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("hook %w: install greenboost-hook there, or set [hook] path", err)
	}
	if !fi.Mode().IsRegular() || fi.Mode().Perm()&0o111 == 0 {
		return fmt.Errorf("hook %s is not an executable file: install greenboost-hook there, or set [hook] path", path)
	}
	return nil
}

// checkHookConfig loads the config a hook entry names (--config) and finds
// the profile it names (--profile) there, as the hook will.
func checkHookConfig(args []string) error {
	configPath, profile := "", ""
	for i := 0; i+1 < len(args); i++ {
		switch args[i] {
		case "--config":
			configPath = args[i+1]
		case "--profile":
			profile = args[i+1]
		}
	}
	if configPath == "" {
		return nil // the hook reads the default config, as ctk did
	}
	cfg, err := config.Load(configPath)
	if err != nil {
		return err
	}
	_, _, err = cfg.ProfileLimits(profile)
	return err
}

func checkLive(n *cdispec.DeviceNode) error {
	host := n.HostPath
	if host == "" {
		host = n.Path
	}
	fi, err := os.Stat(host)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("device %s does not exist", host)
	}
	if err != nil {
		return err
	}
	if fi.Mode()&fs.ModeCharDevice == 0 {
		return fmt.Errorf("%s is not a character device", host)
	}
	major, minor := deviceNumbers(fi)
	if n.Major == 0 && n.Minor == 0 {
		return nil // numbers left for the engine to fill in
	}
	if n.Major != major || n.Minor != minor {
		return fmt.Errorf("it names %s as %d:%d but the device is %d:%d", host, n.Major, n.Minor, major, minor)
	}
	return nil
}
