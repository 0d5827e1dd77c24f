// Package config loads /etc/greenboost/config.toml. Every key has a default,
// so a missing file is fine; unknown keys and bad values are errors naming the
// key and the file.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/pelletier/go-toml/v2"
)

const (
	// DefaultPath is where the config lives unless GREENBOOST_CONFIG says otherwise.
	DefaultPath = "/etc/greenboost/config.toml"
	// PathEnv overrides DefaultPath.
	PathEnv = "GREENBOOST_CONFIG"
	// ContainerDevicePath is where the device appears inside every container.
	ContainerDevicePath = "/dev/greenboost"
)

// Config is the whole file.
type Config struct {
	Runtime Runtime `toml:"runtime"`
	Device  Device  `toml:"device"`
	Library Library `toml:"library"`
	Kmod    Kmod    `toml:"kmod"`
	Limits  Limits  `toml:"limits"`
	Hook    Hook    `toml:"hook"`

	// Path is the file this config came from (or would have, when absent).
	Path string `toml:"-"`
}

// Runtime configures greenboost-runtime.
type Runtime struct {
	Runtimes []string `toml:"runtimes" comment:"low-level runtime: first found on PATH, or an absolute path"`
	LogFile  string   `toml:"log-file"`
	LogLevel string   `toml:"log-level" comment:"debug, info, warn or error"`
}

// Device names the host node.
type Device struct {
	HostPath string `toml:"host-path" comment:"the node on the host; inside containers it is always /dev/greenboost"`
}

// Library says where the preload library is found and mounted.
type Library struct {
	HostPaths     []string `toml:"host-paths" comment:"the first that exists is mounted read-only"`
	ContainerPath string   `toml:"container-path"`
}

// Kmod says how the kernel module is inserted.
type Kmod struct {
	Load   string `toml:"load" comment:"auto: insert if absent | never"`
	Module string `toml:"module" comment:"a name (modules dir of the running kernel) or a path to a .ko"`
	Params string `toml:"params" comment:"e.g. \"pool_mb=16384 t3_path=/var/lib/greenboost/t3\""`
}

// Limits are the per-container budgets.
type Limits struct {
	RAM  Size `toml:"ram" comment:"default per-container T2 budget"`
	NVMe Size `toml:"nvme" comment:"default per-container T3 budget"`
	// Containers ask for budgets through their spec (annotations, env,
	// an image's ENV too): the caps bound what they may ask for.
	MaxRAM  Size `toml:"max-ram" comment:"the largest T2 budget a container may ask for (its annotations, env, device profile)"`
	MaxNVMe Size `toml:"max-nvme" comment:"the largest T3 budget a container may ask for"`
	Enforce bool `toml:"enforce" comment:"false: start containers even where budgets cannot be enforced (warn and record only)"`
	// Profiles become CDI devices greenboost.io/vram=NAME.
	Profiles map[string]Profile `toml:"profiles,omitempty"`
}

// Profile is a named pair of budgets.
type Profile struct {
	RAM  Size `toml:"ram,omitempty"` // "": [limits] ram
	NVMe Size `toml:"nvme,omitempty"`
}

// Hook locates greenboost-hook and its state.
type Hook struct {
	Path     string `toml:"path"`
	StateDir string `toml:"state-dir"`
}

// Default returns the built-in configuration.
func Default() *Config {
	return &Config{
		Runtime: Runtime{
			Runtimes: []string{"runc", "crun"},
			LogFile:  "/var/log/greenboost/runtime.log",
			LogLevel: "info",
		},
		Device: Device{HostPath: "/dev/greenboost"},
		Library: Library{
			HostPaths: []string{
				"/usr/local/lib/libgreenboost_cuda.so",
				"/usr/lib/x86_64-linux-gnu/libgreenboost_cuda.so",
				"/usr/lib64/libgreenboost_cuda.so",
			},
			ContainerPath: "/usr/lib/greenboost/libgreenboost_cuda.so",
		},
		Kmod:   Kmod{Load: "auto", Module: "greenboost"},
		Limits: Limits{RAM: "unlimited", NVMe: "unlimited", MaxRAM: "unlimited", MaxNVMe: "unlimited", Enforce: true},
		Hook:   Hook{Path: "/usr/bin/greenboost-hook", StateDir: "/run/greenboost"},
		Path:   DefaultPath,
	}
}

// PathFromEnv returns the config path: GREENBOOST_CONFIG, or the default
// where it is unset or empty.
func PathFromEnv() string {
	return pathOrDefault(os.Getenv(PathEnv))
}

// pathOrDefault gives DefaultPath for an empty path: GREENBOOST_CONFIG= and
// --config "" mean the default file everywhere, not the current directory.
func pathOrDefault(path string) string {
	if path == "" {
		return DefaultPath
	}
	return path
}

// Load reads the file at path ("" is DefaultPath) over the defaults. A
// missing file yields the defaults; any other problem is an error naming the
// file. Path becomes absolute: it goes into hook entries, which runc runs in
// the bundle.
func Load(path string) (*Config, error) {
	path = pathOrDefault(path)
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	cfg := Default()
	cfg.Path = abs
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return cfg, nil
	}
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	if err := checkKeyCase(data); err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	dec := toml.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	dec.EnableUnmarshalerInterface() // for Size
	if err := dec.Decode(cfg); err != nil {
		return nil, fmt.Errorf("config %s: %s", path, describeDecodeError(err))
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	return cfg, nil
}

func describeDecodeError(err error) string {
	var strict *toml.StrictMissingError
	if errors.As(err, &strict) && len(strict.Errors) > 0 {
		keys := make([]string, 0, len(strict.Errors))
		for _, e := range strict.Errors {
			keys = append(keys, strings.Join(e.Key(), "."))
		}
		return fmt.Sprintf("unknown key %s (see `greenboost-ctk config default` for the valid keys)", strings.Join(keys, ", "))
	}
	var de *toml.DecodeError
	if errors.As(err, &de) {
		row, col := de.Position()
		key := strings.Join(de.Key(), ".")
		msg := de.Error()
		if hint, ok := typeMismatch(msg); ok {
			msg = hint
		}
		if key != "" {
			return fmt.Sprintf("key %s (line %d, column %d): %s", key, row, col, msg)
		}
		return fmt.Sprintf("line %d, column %d: %s", row, col, de.Error())
	}
	return err.Error()
}

// typeHints give the TOML form of each Go type in Config.
var typeHints = map[string]string{
	"bool":                      "true or false",
	"string":                    `a string in quotes`,
	"[]string":                  `a list of strings, e.g. ["a", "b"]`,
	"config.Profile":            profileHint,
	"map[string]config.Profile": profileHint,
}

const profileHint = `a table per profile, e.g. [limits.profiles.small] with ram = "1G" and nvme = "10G"`

// typeMismatch rewrites the decoder's type error, which speaks of Go struct
// fields ("cannot decode TOML string into struct field config.Limits.Enforce
// of type bool"), as the form the key expects.
func typeMismatch(msg string) (string, bool) {
	_, rest, ok := strings.Cut(msg, "cannot decode TOML ")
	if !ok {
		return "", false
	}
	tomlType, rest, _ := strings.Cut(rest, " into ")
	// "into struct field F of type T", or "into T" for a map's value
	goType := rest
	if _, t, found := strings.Cut(rest, " of type "); found {
		goType = t
	}
	hint, ok := typeHints[goType]
	if !ok && strings.HasPrefix(goType, "config.") {
		hint, ok = "a table: a [section] with its keys (see `greenboost-ctk config default`)", true
	}
	if !ok {
		return "", false
	}
	return fmt.Sprintf("expected %s, not a TOML %s", hint, tomlType), true
}

// validProfileName accepts what CDI allows in a device name, without a
// regexp: every process of the toolkit loads the config, and a package-level
// regexp costs each of them its compilation at start-up.
func validProfileName(name string) bool {
	for i, c := range name {
		alnum := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
		if !alnum && (i == 0 || i == len(name)-1 || c != '_' && c != '.' && c != '-') {
			return false
		}
	}
	return name != ""
}

// Validate checks every value that has a restricted form.
func (c *Config) Validate() error {
	if len(c.Runtime.Runtimes) == 0 {
		return errors.New("key runtime.runtimes: empty; expected at least one runtime such as \"runc\"")
	}
	for _, r := range c.Runtime.Runtimes {
		if err := checkRuntime(r); err != nil {
			return fmt.Errorf("key runtime.runtimes: %w", err)
		}
	}
	if !filepath.IsAbs(c.Runtime.LogFile) {
		return fmt.Errorf("key runtime.log-file: %q is not an absolute path", c.Runtime.LogFile)
	}
	switch c.Runtime.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		return fmt.Errorf("key runtime.log-level: invalid value %q: expected debug, info, warn or error", c.Runtime.LogLevel)
	}
	if !filepath.IsAbs(c.Device.HostPath) {
		return fmt.Errorf("key device.host-path: %q is not an absolute path", c.Device.HostPath)
	}
	if len(c.Library.HostPaths) == 0 {
		return errors.New("key library.host-paths: empty; expected at least one path to libgreenboost_cuda.so")
	}
	for _, p := range c.Library.HostPaths {
		if !filepath.IsAbs(p) {
			return fmt.Errorf("key library.host-paths: %q is not an absolute path", p)
		}
	}
	if !filepath.IsAbs(c.Library.ContainerPath) || filepath.Clean(c.Library.ContainerPath) == "/" {
		return fmt.Errorf("key library.container-path: %q is not an absolute file path", c.Library.ContainerPath)
	}
	// The dynamic loader splits LD_PRELOAD at colons and white space.
	if strings.ContainsAny(c.Library.ContainerPath, ": \t\n") {
		return fmt.Errorf("key library.container-path: %q has a colon or white space, which LD_PRELOAD cannot hold", c.Library.ContainerPath)
	}
	switch c.Kmod.Load {
	case "auto", "never":
	default:
		return fmt.Errorf("key kmod.load: invalid value %q: expected \"auto\" or \"never\"", c.Kmod.Load)
	}
	if c.Kmod.Module == "" {
		return errors.New("key kmod.module: empty; expected a module name or a path to a .ko")
	}
	// A file (a '/' or a .ko name) relative to the working directory would
	// be looked up in each container's bundle, where hooks run.
	if m := c.Kmod.Module; (strings.Contains(m, "/") || strings.Contains(m, ".ko")) && !filepath.IsAbs(m) {
		return fmt.Errorf("key kmod.module: %q is a relative path; expected a module name such as \"greenboost\" or an absolute path to a .ko", m)
	}
	if err := checkSize("limits.ram", c.Limits.RAM); err != nil {
		return err
	}
	if err := checkSize("limits.nvme", c.Limits.NVMe); err != nil {
		return err
	}
	if err := checkSize("limits.max-ram", c.Limits.MaxRAM); err != nil {
		return err
	}
	if err := checkSize("limits.max-nvme", c.Limits.MaxNVMe); err != nil {
		return err
	}
	if err := c.CheckCap(TierRAM, "limits.ram", string(c.Limits.RAM)); err != nil {
		return err
	}
	if err := c.CheckCap(TierNVMe, "limits.nvme", string(c.Limits.NVMe)); err != nil {
		return err
	}
	for _, name := range c.ProfileNames() {
		p := c.Limits.Profiles[name]
		if !validProfileName(name) || name == DefaultDevice {
			return fmt.Errorf("key limits.profiles.%s: invalid profile name: expected letters, digits, '_', '.', '-', beginning and ending with a letter or digit, and not %q", name, DefaultDevice)
		}
		// A profile may leave a tier empty: it then has the default budget.
		for _, tier := range []struct {
			tier  Tier
			value Size
		}{{TierRAM, p.RAM}, {TierNVMe, p.NVMe}} {
			if tier.value == "" {
				continue
			}
			key := "limits.profiles." + name + "." + string(tier.tier)
			if err := checkSize(key, tier.value); err != nil {
				return err
			}
			if err := c.CheckCap(tier.tier, key, string(tier.value)); err != nil {
				return err
			}
		}
	}
	if !filepath.IsAbs(c.Hook.Path) {
		return fmt.Errorf("key hook.path: %q is not an absolute path", c.Hook.Path)
	}
	if !filepath.IsAbs(c.Hook.StateDir) {
		return fmt.Errorf("key hook.state-dir: %q is not an absolute path", c.Hook.StateDir)
	}
	return nil
}

// runtimeForm is the expected form of a [runtime] runtimes entry.
const runtimeForm = `expected a name looked up on PATH, such as "runc", or an absolute path`

// checkRuntime refuses a runtimes entry that is empty or a relative path:
// the wrapper would resolve one against its working directory, the bundle.
func checkRuntime(r string) error {
	if strings.TrimSpace(r) == "" {
		return fmt.Errorf("an empty entry %q; %s", r, runtimeForm)
	}
	if strings.Contains(r, "/") && !filepath.IsAbs(r) {
		return fmt.Errorf("invalid entry %q: a relative path; %s", r, runtimeForm)
	}
	return nil
}

// Tier is the memory tier a budget is for.
type Tier string

// The tiers, named as their keys are.
const (
	TierRAM  Tier = "ram"
	TierNVMe Tier = "nvme"
)

// CheckCap refuses a budget, a valid size that key asks for, above the cap
// of its tier ([limits] max-ram or max-nvme). Unlimited is above any cap.
func (c *Config) CheckCap(tier Tier, key, size string) error {
	capSize := c.Limits.MaxRAM
	if tier == TierNVMe {
		capSize = c.Limits.MaxNVMe
	}
	limit, err := ParseSize(string(capSize))
	if err != nil || limit == 0 {
		return nil // no cap; a bad one fails Validate on its own key
	}
	if n, err := ParseSize(size); err != nil || (n != 0 && n <= limit) {
		return nil
	}
	return fmt.Errorf("%s %q is above this host's cap limits.max-%s = %q (%s): ask for %s or less",
		key, size, tier, string(capSize), c.Path, FormatSize(limit))
}

func checkSize(key string, value Size) error {
	if _, err := ParseSize(string(value)); err != nil {
		return fmt.Errorf("key %s: %w", key, err)
	}
	return nil
}

// DefaultDevice is the CDI device that carries the config's default limits.
const DefaultDevice = "ext"

// CDIKind is the CDI kind of GreenBoost's devices, one per profile.
const CDIKind = "greenboost.io/vram"

// ProfileNames lists the configured profiles in a stable order.
func (c *Config) ProfileNames() []string {
	names := make([]string, 0, len(c.Limits.Profiles))
	for n := range c.Limits.Profiles {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// ProfileLimits returns the (ram, nvme) budget strings of a CDI device: the
// config defaults for "ext" or "", a profile's own values otherwise (a tier
// the profile leaves empty falls back to the default).
func (c *Config) ProfileLimits(device string) (ram, nvme string, err error) {
	ram, nvme = string(c.Limits.RAM), string(c.Limits.NVMe)
	if device == "" || device == DefaultDevice {
		return ram, nvme, nil
	}
	p, ok := c.Limits.Profiles[device]
	if !ok {
		return "", "", fmt.Errorf("unknown profile %q: add [limits.profiles.%s] to %s", device, device, c.Path)
	}
	if p.RAM != "" {
		ram = string(p.RAM)
	}
	if p.NVMe != "" {
		nvme = string(p.NVMe)
	}
	return ram, nvme, nil
}

// Marshal renders the config as TOML.
func (c *Config) Marshal() ([]byte, error) {
	var buf bytes.Buffer
	enc := toml.NewEncoder(&buf)
	enc.SetIndentTables(false)
	if err := enc.Encode(c); err != nil {
		return nil, fmt.Errorf("encoding config: %w", err)
	}
	return buf.Bytes(), nil
}
