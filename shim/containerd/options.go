//go:build linux

package containerd

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/containerd/containerd/api/types/runc/options"
	runtimeoptions "github.com/containerd/containerd/pkg/runtimeoptions/v1"
	"github.com/containerd/containerd/runtime/linux/runctypes"
	"github.com/containerd/typeurl/v2"
	"github.com/pelletier/go-toml/v2"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/greenboost/greenboost-container-toolkit/internal/config"
)

// runtimeFinder returns the path of the OCI runtime the shim runs by default.
type runtimeFinder func() (string, error)

// findRuntimeBinary looks for greenboost-runtime next to the shim's own
// executable, then on PATH. There is no fallback to plain runc: a
// container asked for GreenBoost must not start without it.
func findRuntimeBinary() (string, error) {
	self, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("finding %s: locating the shim's executable: %w", RuntimeBinary, err)
	}
	return lookRuntime(filepath.Dir(self))
}

func lookRuntime(dir string) (string, error) {
	next := filepath.Join(dir, RuntimeBinary)
	if fi, err := os.Stat(next); err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0 {
		return next, nil
	}
	if p, err := exec.LookPath(RuntimeBinary); err == nil {
		if abs, err := filepath.Abs(p); err == nil {
			return abs, nil
		}
		return p, nil
	}
	return "", fmt.Errorf("%s not found next to the shim (%s) nor on PATH=%s: install the GreenBoost Container Toolkit's binaries together, or set the runtime option BinaryName",
		RuntimeBinary, dir, os.Getenv("PATH"))
}

// runcOptionsTOML are the runc shim's options by the names containerd's
// config uses for them, as containerd >= 1.7's CRI passes them for a
// runtime type it does not know (runtimeoptions.Options.ConfigBody).
type runcOptionsTOML struct {
	NoPivotRoot   bool   `toml:"NoPivotRoot"`
	NoNewKeyring  bool   `toml:"NoNewKeyring"`
	ShimCgroup    string `toml:"ShimCgroup"`
	IoUid         uint32 `toml:"IoUid"` //nolint:revive // containerd's spelling
	IoGid         uint32 `toml:"IoGid"` //nolint:revive // containerd's spelling
	BinaryName    string `toml:"BinaryName"`
	Root          string `toml:"Root"`
	SystemdCgroup bool   `toml:"SystemdCgroup"`
	CriuImagePath string `toml:"CriuImagePath"`
	CriuWorkPath  string `toml:"CriuWorkPath"`
}

// runcOptions turns the options of a CreateTaskRequest into the runc shim's
// options with BinaryName filled in, and the GreenBoost config file they
// name ("" when none). containerd sends runc options (ctr, nerdctl, a
// client's WithRuntime), nothing, or, from CRI for a runtime type other than
// runc's, runtimeoptions.Options: its ConfigPath (the options table's
// ConfigPath, ctr's --runtime-config-path) is the GreenBoost config of the
// containers of this runtime entry; without one, its ConfigBody (1.7+)
// carries the options table as TOML.
func runcOptions(in *anypb.Any, bundle string, find runtimeFinder) (*options.Options, string, error) {
	opts, configPath, explicit, err := decodeOptions(in)
	if err != nil {
		return nil, "", err
	}
	if !explicit && !opts.SystemdCgroup {
		// containerd's CRI passes no runc options to a runtime type it does
		// not know (1.6: none at all); kubelet's systemd cgroup driver shows
		// in the cgroupsPath it asks for (slice:prefix:name).
		sd, err := systemdCgroupsPath(bundle)
		if err != nil {
			return nil, "", err
		}
		opts.SystemdCgroup = sd
	}
	if opts.BinaryName, err = runtimeBinary(opts, find); err != nil {
		return nil, "", err
	}
	return opts, configPath, nil
}

// decodeOptions reads the runtime options containerd sends (see
// runcOptions); explicit says they were runc options as such.
func decodeOptions(in *anypb.Any) (opts *options.Options, configPath string, explicit bool, err error) {
	opts = &options.Options{}
	if in == nil || len(in.GetValue()) == 0 {
		return opts, "", false, nil
	}
	v, err := typeurl.UnmarshalAny(in)
	if err != nil {
		return nil, "", false, fmt.Errorf("decoding the runtime options (%s): %w", in.GetTypeUrl(), err)
	}
	switch o := v.(type) {
	case *options.Options:
		return o, "", true, nil
	case *runctypes.CreateOptions:
		// ctr and Go clients of containerd 1.x send these, the v1 shim's, to
		// a runtime not named io.containerd.runc* (WithNoPivotRoot,
		// WithUIDOwner, WithGIDOwner); the rest of them is for checkpoints.
		return &options.Options{
			NoPivotRoot: o.NoPivotRoot, NoNewKeyring: o.NoNewKeyring, ShimCgroup: o.ShimCgroup,
			IoUid: o.IoUid, IoGid: o.IoGid, CriuWorkPath: o.CriuWorkPath, CriuImagePath: o.CriuImagePath,
		}, "", false, nil
	case *runtimeoptions.Options:
		if len(o.ConfigBody) > 0 {
			var t runcOptionsTOML
			if err := toml.Unmarshal(o.ConfigBody, &t); err != nil {
				return nil, "", false, fmt.Errorf("decoding the runtime options table: %w", err)
			}
			opts = &options.Options{
				NoPivotRoot: t.NoPivotRoot, NoNewKeyring: t.NoNewKeyring, ShimCgroup: t.ShimCgroup,
				IoUid: t.IoUid, IoGid: t.IoGid, BinaryName: t.BinaryName, Root: t.Root,
				SystemdCgroup: t.SystemdCgroup, CriuImagePath: t.CriuImagePath, CriuWorkPath: t.CriuWorkPath,
			}
		}
		return opts, o.ConfigPath, false, nil
	}
	return nil, "", false, fmt.Errorf("unsupported runtime options type %s: %s accepts runc options (containerd.runc.v1.Options, containerd.linux.runc.CreateOptions) and runtimeoptions.v1.Options", in.GetTypeUrl(), BinaryName)
}

// runtimeBinary is the OCI runtime the options name, greenboost-runtime
// (found by find) when they name none.
func runtimeBinary(opts *options.Options, find runtimeFinder) (string, error) {
	if opts.BinaryName != "" {
		return opts.BinaryName, nil
	}
	return find()
}

// bundleConfigFile, in a bundle, names the GreenBoost config its container
// was created with when the runtime options gave one: the releases that run
// without the create request (`shim delete`) read it there, as containerd's
// runc shim reads its options.json.
const bundleConfigFile = "greenboost-config"

// useConfig checks that path, the runtime option ConfigPath, is a GreenBoost
// config that loads, and notes it in bundle. greenboost-runtime gets it as
// GREENBOOST_CONFIG through shimConfig.
func useConfig(bundle, path string) error {
	if !filepath.IsAbs(path) {
		return fmt.Errorf("runtime option ConfigPath %q: want an absolute path to a GreenBoost config file", path)
	}
	// a missing file would mean all defaults: a mistyped path must not
	if _, err := os.Stat(path); err != nil {
		return fmt.Errorf("runtime option ConfigPath: %w", err)
	}
	if _, err := config.Load(path); err != nil {
		return fmt.Errorf("runtime option ConfigPath: %w", err)
	}
	if err := os.WriteFile(filepath.Join(bundle, bundleConfigFile), []byte(path), 0o600); err != nil {
		return fmt.Errorf("noting the GreenBoost config in the bundle: %w", err)
	}
	return nil
}

// notedConfigPath returns the GreenBoost config noted in bundle by
// useConfig, if any.
func notedConfigPath(bundle string) (string, bool) {
	data, err := os.ReadFile(filepath.Join(bundle, bundleConfigFile))
	if err != nil || len(data) == 0 {
		return "", false
	}
	return string(data), true
}

// configPathOf returns the GreenBoost config of the container in bundle: the
// one noted by useConfig, else GREENBOOST_CONFIG or the default.
func configPathOf(bundle string) string {
	if path, ok := notedConfigPath(bundle); ok {
		return path
	}
	return config.PathFromEnv()
}

// shimConfig sets GREENBOOST_CONFIG, which greenboost-runtime reads on every
// verb the runc task service runs (create, start, kill, delete, exec: all
// with the shim's environment), for the containers of one shim. containerd
// may group several containers in one shim (a pod's, by the
// io.kubernetes.cri.sandbox-id or io.containerd.runc.v2.group annotation),
// and the environment is the shim's: so the containers it runs at one time
// must share one config. A container created without ConfigPath gets the
// shim's own, GREENBOOST_CONFIG as it was at the shim's start.
type shimConfig struct {
	mu sync.Mutex
	// GREENBOOST_CONFIG at the shim's start, and whether it was set.
	startValue string
	startSet   bool
	// running maps the containers of this shim, from create to delete, to
	// the config file they run with.
	running map[string]string
}

func newShimConfig() *shimConfig {
	v, ok := os.LookupEnv(config.PathEnv)
	return &shimConfig{startValue: v, startSet: ok, running: map[string]string{}}
}

// enter makes configPath ("" for the shim's own) the config of container
// id, or refuses when another running container of this shim has another.
func (c *shimConfig) enter(id, configPath string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	want := c.file(configPath)
	for _, other := range slices.Sorted(maps.Keys(c.running)) {
		if other != id && c.running[other] != want {
			return fmt.Errorf("container %s asks for the GreenBoost config %s but container %s, served by the same shim (containerd groups a pod's containers in one shim), runs with %s: greenboost-runtime gets one config per shim; give the runtime entries of one pod the same ConfigPath",
				id, want, other, c.running[other])
		}
	}
	var err error
	switch {
	case configPath != "":
		err = os.Setenv(config.PathEnv, configPath)
	case c.startSet:
		err = os.Setenv(config.PathEnv, c.startValue)
	default:
		err = os.Unsetenv(config.PathEnv)
	}
	if err != nil {
		return fmt.Errorf("setting %s: %w", config.PathEnv, err)
	}
	c.running[id] = want
	return nil
}

// leave says container id no longer runs in this shim.
func (c *shimConfig) leave(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.running, id)
}

// file is the config file configPath ("" for the shim's own) names.
func (c *shimConfig) file(configPath string) string {
	if configPath != "" {
		return filepath.Clean(configPath)
	}
	if c.startValue != "" {
		return filepath.Clean(c.startValue)
	}
	return config.DefaultPath
}

// systemdCgroupsPath says whether the bundle's spec asks for a cgroup in
// systemd's "slice:prefix:name" form.
func systemdCgroupsPath(bundle string) (bool, error) {
	data, err := os.ReadFile(filepath.Join(bundle, "config.json"))
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("reading the bundle's spec: %w", err)
	}
	var spec struct {
		Linux *struct {
			CgroupsPath string `json:"cgroupsPath"`
		} `json:"linux"`
	}
	if err := json.Unmarshal(data, &spec); err != nil {
		return false, fmt.Errorf("parsing %s: %w", filepath.Join(bundle, "config.json"), err)
	}
	if spec.Linux == nil {
		return false, nil
	}
	parts := strings.Split(spec.Linux.CgroupsPath, ":")
	return len(parts) == 3 && strings.HasSuffix(parts[0], ".slice"), nil
}

// marshalOptions packs opts for the runc task service.
func marshalOptions(opts *options.Options) (*anypb.Any, error) {
	a, err := typeurl.MarshalAny(opts)
	if err != nil {
		return nil, fmt.Errorf("encoding the runtime options: %w", err)
	}
	return &anypb.Any{TypeUrl: a.GetTypeUrl(), Value: a.GetValue()}, nil
}
