package cdi

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
	cdispec "tags.cncf.io/container-device-interface/specs-go"

	"github.com/greenboost/greenboost-container-toolkit/internal/config"
)

// standIn makes a character device node the test owns (DESIGN.md §6).
func standIn(t *testing.T, path string, major, minor uint32) {
	t.Helper()
	os.Remove(path)
	if err := unix.Mknod(path, unix.S_IFCHR|0o666, int(unix.Mkdev(major, minor))); err != nil {
		t.Fatalf("mknod %s (the tests run as root): %v", path, err)
	}
}

func testConfig(t *testing.T) *config.Config {
	t.Helper()
	dir := t.TempDir()
	lib := filepath.Join(dir, "libgreenboost_cuda.so")
	if err := os.WriteFile(lib, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := config.Default()
	cfg.Path = filepath.Join(dir, "config.toml")
	cfg.Device.HostPath = filepath.Join(dir, "greenboost")
	standIn(t, cfg.Device.HostPath, 240, 7)
	cfg.Library.HostPaths = []string{"/nonexistent/lib.so", lib}
	cfg.Hook.Path = filepath.Join(dir, "greenboost-hook")
	if err := os.WriteFile(cfg.Hook.Path, nil, 0o755); err != nil {
		t.Fatal(err)
	}
	cfg.Limits.Profiles = map[string]config.Profile{"small": {RAM: "1G"}, "big": {RAM: "16G", NVMe: "1T"}}
	// The hooks of a spec read this file.
	data, err := cfg.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfg.Path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return cfg
}

func TestEdits(t *testing.T) {
	cfg := testConfig(t)
	e, err := Edits(cfg, "ext")
	if err != nil {
		t.Fatal(err)
	}
	n := e.DeviceNodes[0]
	if n.Path != "/dev/greenboost" || n.HostPath != cfg.Device.HostPath || n.Type != "c" || n.Major != 240 || n.Minor != 7 || n.Permissions != "rw" {
		t.Fatalf("device node = %+v", n)
	}
	m := e.Mounts[0]
	if m.HostPath != cfg.Library.HostPaths[1] || m.ContainerPath != cfg.Library.ContainerPath || !slices.Equal(m.Options, []string{"ro", "nosuid", "nodev", "bind"}) {
		t.Fatalf("mount = %+v", m)
	}
	if !slices.Equal(e.Env, []string{"LD_PRELOAD=" + cfg.Library.ContainerPath, "GREENBOOST_ACTIVE=1"}) {
		t.Fatalf("env = %v", e.Env)
	}
	for i, stage := range []string{"prestart", "poststop"} {
		h := e.Hooks[i]
		if h.HookName != stage || h.Path != cfg.Hook.Path || !slices.Equal(h.Args, []string{"greenboost-hook", "--config", cfg.Path, stage}) {
			t.Fatalf("hook %d = %+v", i, h)
		}
		if len(h.Env) != 1 || !strings.HasPrefix(h.Env[0], "PATH=") {
			t.Fatalf("hook env must be explicit and minimal: %v", h.Env)
		}
	}
	small, err := Edits(cfg, "small")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(small.Hooks[0].Args, []string{"greenboost-hook", "--config", cfg.Path, "--profile", "small", "prestart"}) {
		t.Fatalf("profile not carried to the hook: %v", small.Hooks[0].Args)
	}
	if _, err := Edits(cfg, "nosuch"); err == nil {
		t.Fatal("unknown profile accepted")
	}
}

func TestSpecIsValidWithLowestVersion(t *testing.T) {
	cfg := testConfig(t)
	spec, err := Spec(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if spec.Kind != "greenboost.io/vram" || spec.Version != "0.5.0" {
		t.Fatalf("kind %s version %s; Podman 4.3 needs ≤ 0.5.0", spec.Kind, spec.Version)
	}
	var names []string
	for _, d := range spec.Devices {
		names = append(names, d.Name)
	}
	if !slices.Equal(names, []string{"ext", "big", "small"}) {
		t.Fatalf("devices = %v", names)
	}
	for _, format := range []string{"yaml", "json"} {
		data, err := Encode(spec, format)
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(t.TempDir(), "cdi", "greenboost.io-vram."+format)
		if err := WriteSpec(path, data); err != nil {
			t.Fatal(err)
		}
		fi, _ := os.Stat(path)
		if fi.Mode().Perm() != 0o644 {
			t.Fatalf("spec mode %v, want 0644", fi.Mode().Perm())
		}
		if _, err := Validate(path); err != nil {
			t.Fatalf("%s spec rejected: %v", format, err)
		}
	}
	if _, err := Encode(spec, "toml"); err == nil {
		t.Fatal("unknown format accepted")
	}
}

func TestWriteSpecIgnoresUmask(t *testing.T) {
	old := unix.Umask(0o077)
	defer unix.Umask(old)
	etc := filepath.Join(t.TempDir(), "etc")
	path := filepath.Join(etc, "cdi", "greenboost.io-vram.yaml")
	if err := WriteSpec(path, []byte("cdiVersion: 0.4.0\n")); err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]os.FileMode{etc: 0o755, filepath.Dir(path): 0o755, path: 0o644} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != want {
			t.Errorf("%s: mode %v, want %v", p, fi.Mode().Perm(), want)
		}
	}
}

func TestValidateCatchesStaleSpec(t *testing.T) {
	cfg := testConfig(t)
	spec, err := Spec(cfg)
	if err != nil {
		t.Fatal(err)
	}
	data, _ := Encode(spec, "yaml")
	path := filepath.Join(t.TempDir(), "greenboost.io-vram.yaml")
	if err := WriteSpec(path, data); err != nil {
		t.Fatal(err)
	}
	standIn(t, cfg.Device.HostPath, 240, 8) // the module came back with another minor
	_, err = Validate(path)
	if !errors.Is(err, ErrStale) || !strings.Contains(err.Error(), "240:7") || !strings.Contains(err.Error(), "240:8") {
		t.Fatalf("error = %v, want a stale spec naming both numbers", err)
	}
	// The command to regenerate writes this file from the config its hooks read.
	if fix := "greenboost-ctk --config " + cfg.Path + " cdi generate --output " + path; !strings.Contains(err.Error(), fix) {
		t.Fatalf("error = %v, want it to end with %q", err, fix)
	}
	os.Remove(cfg.Device.HostPath)
	if _, err := Validate(path); !errors.Is(err, ErrStale) {
		t.Fatalf("missing device: %v", err)
	}
}

func TestValidateRejectsInvalidSpec(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bad.yaml")
	os.WriteFile(path, []byte("cdiVersion: 0.5.0\nkind: greenboost.io/vram\ndevices: []\n"), 0o644)
	if _, err := Validate(path); err == nil || errors.Is(err, ErrStale) {
		t.Fatalf("error = %v", err)
	}
}

func TestEditsNeedsDeviceAndLibrary(t *testing.T) {
	cfg := testConfig(t)
	cfg.Device.HostPath = cfg.Library.HostPaths[1] // a regular file
	if _, err := Edits(cfg, "ext"); err == nil || !strings.Contains(err.Error(), "not a character device") {
		t.Fatalf("error = %v", err)
	}
}

// The node at the container's own path needs no hostPath, and so no
// cdiVersion 0.5.0, which older engines refuse; another host path is kept.
func TestNodeEditHostPath(t *testing.T) {
	for hostPath, want := range map[string]string{
		"/dev/greenboost":     "",
		"/dev//greenboost/":   "",
		"/run/gb/greenboost0": "/run/gb/greenboost0",
	} {
		n := nodeEdit(hostPath, 240, 7)
		if n.HostPath != want || n.Path != "/dev/greenboost" || n.Major != 240 || n.Minor != 7 {
			t.Errorf("nodeEdit(%q) = %+v, want hostPath %q", hostPath, n, want)
		}
		spec := &cdispec.Spec{Version: "0.3.0", Kind: Kind, Devices: []cdispec.Device{{Name: "ext", ContainerEdits: cdispec.ContainerEdits{
			DeviceNodes: []*cdispec.DeviceNode{n},
			Mounts:      []*cdispec.Mount{{HostPath: "/lib.so", ContainerPath: "/lib.so", Type: "bind"}},
		}}}}
		version, err := cdispec.MinimumRequiredVersion(spec)
		if wantVersion := map[bool]string{true: "0.4.0", false: "0.5.0"}[want == ""]; err != nil || version != wantVersion {
			t.Errorf("nodeEdit(%q): cdiVersion %q (%v), want %s", hostPath, version, err, wantVersion)
		}
	}
}

// The first configured library that exists is mounted; a directory or a
// missing file is passed over.
func TestFindLibraryTakesTheFirstThatExists(t *testing.T) {
	dir := t.TempDir()
	first, second := filepath.Join(dir, "a.so"), filepath.Join(dir, "b.so")
	for _, p := range []string{first, second} {
		if err := os.WriteFile(p, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cfg := config.Default()
	cfg.Library.HostPaths = []string{"/nonexistent/lib.so", dir, first, second}
	if got, err := FindLibrary(cfg); err != nil || got != first {
		t.Fatalf("FindLibrary = %q, %v; want %s", got, err, first)
	}
}

// Encode checks the spec through a temp file: a TMPDIR it cannot use is said
// as such, not as an invalid spec.
func TestEncodeWithoutTempDir(t *testing.T) {
	spec, err := Spec(testConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("TMPDIR", "/nonexistent")
	_, err = Encode(spec, "yaml")
	if err == nil || !strings.Contains(err.Error(), "set TMPDIR to a writable directory") || strings.Contains(err.Error(), "invalid") {
		t.Fatalf("error = %v, want it to name TMPDIR and not call the spec invalid", err)
	}
}
