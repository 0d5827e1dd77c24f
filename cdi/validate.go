package cdi

import (
	"bytes"
	"encoding/json"
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
// kind, its hooks, the config they read and the library it mounts, its device
// numbers against the live device nodes, and its devices against those
// `cdi generate` makes now from that config; a mismatch of the last two wraps
// ErrStale.
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
	// The config the hooks read ("" is the default file): the one every
	// hint below regenerates the spec from.
	configPath := ""
	for _, e := range edits {
		for _, h := range e.Hooks {
			if hookConfig, _ := hookArgs(h.Args); hookConfig != "" {
				configPath = hookConfig
			}
		}
	}
	regenerate := generateCommand(configPath, path)
	for _, e := range edits {
		for _, h := range e.Hooks {
			if err := CheckHook(h.Path); err != nil {
				return spec, fmt.Errorf("invalid CDI spec %s: %w, then run `%s`", path, err, regenerate)
			}
			if err := checkHookConfig(hookArgs(h.Args)); err != nil {
				return spec, fmt.Errorf("invalid CDI spec %s: its hook would fail every container: %w; then run `%s`", path, err, regenerate)
			}
		}
		for _, m := range e.Mounts {
			if _, err := os.Stat(m.HostPath); err != nil {
				return spec, fmt.Errorf("invalid CDI spec %s: the engine would fail every container: library %w: install libgreenboost_cuda.so there, or set [library] host-paths, then run `%s`", path, err, regenerate)
			}
		}
	}
	for _, e := range edits { // a stale spec is named as such only when nothing else is wrong
		for _, n := range e.DeviceNodes {
			if err := checkLive(n); err != nil {
				return spec, fmt.Errorf("%w %s: %w; regenerate it with `%s`", ErrStale, path, err, regenerate)
			}
		}
	}
	if err := matchConfig(spec.Spec, configPath); err != nil {
		return spec, fmt.Errorf("%w %s: %w; regenerate it with `%s`", ErrStale, path, err, regenerate)
	}
	return spec, nil
}

// matchConfig compares the spec's devices with those `cdi generate` makes
// now from the config its hooks read: a config moved, removed or edited
// since, or a hand edit of the spec, would give containers another device,
// library or mount than the hooks and the config expect.
func matchConfig(spec *cdispec.Spec, configPath string) error {
	cfg, err := config.Load(configPath)
	if err != nil {
		return err
	}
	source := "the config its hooks read, " + cfg.Path
	if _, err := os.Stat(cfg.Path); errors.Is(err, fs.ErrNotExist) {
		source += " (missing, so the defaults)"
	}
	want, err := Spec(cfg)
	if err != nil {
		return fmt.Errorf("%s, makes no spec: %w", source, err)
	}
	if part := differingPart(spec.ContainerEdits, cdispec.ContainerEdits{}); part != "" {
		return fmt.Errorf("it has spec-wide %s, which %s does not make", part, source)
	}
	got := make(map[string]cdispec.ContainerEdits, len(spec.Devices))
	for _, d := range spec.Devices {
		got[d.Name] = d.ContainerEdits
	}
	for _, d := range want.Devices {
		edits, ok := got[d.Name]
		if !ok {
			return fmt.Errorf("it lacks device %q, which %s makes", d.Name, source)
		}
		if part := differingPart(edits, d.ContainerEdits); part != "" {
			return fmt.Errorf("device %q: its %s differ from those %s makes", d.Name, part, source)
		}
		delete(got, d.Name)
	}
	for _, d := range spec.Devices {
		if _, extra := got[d.Name]; extra {
			return fmt.Errorf("it has device %q, which %s does not make", d.Name, source)
		}
	}
	return nil
}

// generateCommand is the command that writes the spec at path from the
// config at configPath ("" is the default file).
func generateCommand(configPath, path string) string {
	cmd := "greenboost-ctk"
	if configPath != "" && configPath != config.DefaultPath {
		cmd += " --config " + configPath
	}
	cmd += " cdi generate"
	if path != DefaultSpecPath {
		cmd += " --output " + path
	}
	return cmd
}

// differingPart names the first part of two container edits that differs
// (as the spec file spells it), or "" when they are the same.
func differingPart(a, b cdispec.ContainerEdits) string {
	for _, part := range []struct {
		name string
		a, b any
	}{
		{"deviceNodes", a.DeviceNodes, b.DeviceNodes},
		{"mounts", a.Mounts, b.Mounts},
		{"env", a.Env, b.Env},
		{"hooks", a.Hooks, b.Hooks},
		{"containerEdits", a, b}, // what the parts above leave out
	} {
		if !sameJSON(part.a, part.b) {
			return part.name
		}
	}
	return ""
}

// sameJSON compares two values as the spec file holds them, so that an
// empty list equals a missing one.
func sameJSON(a, b any) bool {
	ja, errA := json.Marshal(a)
	jb, errB := json.Marshal(b)
	return errA == nil && errB == nil && bytes.Equal(ja, jb)
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

// hookArgs returns the config (--config) and the profile (--profile) a hook
// entry's arguments name.
func hookArgs(args []string) (configPath, profile string) {
	for i := 0; i+1 < len(args); i++ {
		switch args[i] {
		case "--config":
			configPath = args[i+1]
		case "--profile":
			profile = args[i+1]
		}
	}
	return configPath, profile
}

// checkHookConfig loads the config a hook entry names (--config) and finds
// the profile it names (--profile) there, as the hook will.
func checkHookConfig(configPath, profile string) error {
	if configPath == "" {
		return nil // the hook reads the default config, as ctk did
	}
	cfg, err := config.Load(configPath)
	if err != nil {
		return err
	}
	if _, _, err := cfg.ProfileLimits(profile); err != nil {
		if _, statErr := os.Stat(configPath); errors.Is(statErr, fs.ErrNotExist) {
			return fmt.Errorf("its config %s does not exist (the hook would read the defaults): %w", configPath, err)
		}
		return err
	}
	return nil
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
