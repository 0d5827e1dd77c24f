package cdi

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/greenboost/greenboost-container-toolkit/internal/config"
)

// The CDI library loads only files ending in .yaml or .json (case-sensitive)
// from a spec dir.
func TestCheckFileName(t *testing.T) {
	for _, tt := range []struct {
		path string
		ok   bool
	}{
		{"/etc/cdi/greenboost.io-vram.yaml", true},
		{"/etc/cdi/greenboost.io-vram.json", true},
		{"spec.yaml", true},
		{"/etc/cdi/greenboost.io-vram.yml", false},
		{"/etc/cdi/greenboost.io-vram.JSON", false},
		{"/etc/cdi/greenboost.io-vram.txt", false},
		{"/etc/cdi/greenboost.io-vram", false},
		{"/etc/cdi/.yaml.bak", false},
	} {
		err := CheckFileName(tt.path)
		if tt.ok && err != nil {
			t.Errorf("%s: %v, want it accepted", tt.path, err)
		}
		if !tt.ok && (err == nil || !strings.Contains(err.Error(), tt.path) || !strings.Contains(err.Error(), ".yaml or .json")) {
			t.Errorf("%s: error = %v, want one naming it and the extensions engines load", tt.path, err)
		}
	}
}

// Validate fails a spec of another kind or under a name engines never load,
// naming what it found and what it expects.
func TestValidateRejectsForeignKindAndName(t *testing.T) {
	cfg := testConfig(t)
	good := encodedSpec(t, cfg)
	dir := t.TempDir()
	badConfig := filepath.Join(dir, "bad.toml")
	if err := os.WriteFile(badConfig, []byte("[limits]\nram = \"lots\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	noProfiles := filepath.Join(dir, "no-profiles.toml")
	if err := os.WriteFile(noProfiles, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		file string
		data string
		want []string
		// regeneratedFrom is the config the hint to regenerate names ("": no hint).
		regeneratedFrom string
	}{
		{"another kind", "other.yaml", strings.Replace(string(good), "kind: greenboost.io/vram", "kind: example.com/foo", 1),
			[]string{`kind "example.com/foo"`, `expected "greenboost.io/vram"`}, ""},
		{".yml", "greenboost.io-vram.yml", string(good), []string{"engines never load it", ".yaml or .json"}, ""},
		{".JSON", "greenboost.io-vram.JSON", string(good), []string{"engines never load it"}, ""},
		{"hook binary missing", "hook.yaml", strings.ReplaceAll(string(good), cfg.Hook.Path, "/nonexistent/greenboost-hook"),
			[]string{"/nonexistent/greenboost-hook", "[hook] path"}, cfg.Path},
		{"library missing", "library.yaml", strings.ReplaceAll(string(good), cfg.Library.HostPaths[1], "/nonexistent/libgreenboost_cuda.so"),
			[]string{"/nonexistent/libgreenboost_cuda.so", "[library] host-paths"}, cfg.Path},
		{"hook config invalid", "config.yaml", strings.ReplaceAll(string(good), cfg.Path, badConfig),
			[]string{badConfig, "limits.ram"}, badConfig},
		{"profile gone from the hook config", "profile.yaml", strings.ReplaceAll(string(good), cfg.Path, noProfiles),
			[]string{noProfiles, `unknown profile "big"`}, noProfiles},
		{"hook config missing", "missing.yaml", strings.ReplaceAll(string(good), cfg.Path, filepath.Join(dir, "gone.toml")),
			[]string{filepath.Join(dir, "gone.toml") + " does not exist", `unknown profile "big"`}, filepath.Join(dir, "gone.toml")},
	} {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(dir, tt.file)
			if err := os.WriteFile(path, []byte(tt.data), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := Validate(path)
			if err == nil {
				t.Fatal("valid, want an error")
			}
			want := append(tt.want, path)
			if tt.regeneratedFrom != "" {
				want = append(want, "greenboost-ctk --config "+tt.regeneratedFrom+" cdi generate --output "+path)
			}
			for _, w := range want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error = %v, want it to contain %q", err, w)
				}
			}
		})
	}
}

// A spec must still be what `cdi generate` makes from the config its hooks
// read: a config removed or edited since, or a hand edit of the spec, gives
// containers another device, mount or environment than the hooks expect.
func TestValidateMatchesTheHooksConfig(t *testing.T) {
	for _, tt := range []struct {
		name string
		// change breaks the agreement of the spec at path with cfg.
		change func(t *testing.T, cfg *config.Config, path string)
		want   []string
	}{
		{"config removed", func(t *testing.T, cfg *config.Config, _ string) { os.Remove(cfg.Path) },
			[]string{"missing, so the defaults", "makes no spec"}},
		{"container path changed in the config", func(t *testing.T, cfg *config.Config, _ string) {
			cfg.Library.ContainerPath = "/opt/gb/libgreenboost_cuda.so"
			writeConfig(t, cfg)
		}, []string{`device "ext": its mounts differ`}},
		{"device changed in the config", func(t *testing.T, cfg *config.Config, _ string) {
			cfg.Device.HostPath = filepath.Join(filepath.Dir(cfg.Path), "other")
			standIn(t, cfg.Device.HostPath, 240, 9)
			writeConfig(t, cfg)
		}, []string{`device "ext": its deviceNodes differ`}},
		{"profile added to the config", func(t *testing.T, cfg *config.Config, _ string) {
			cfg.Limits.Profiles["huge"] = config.Profile{RAM: "64G"}
			writeConfig(t, cfg)
		}, []string{`lacks device "huge"`}},
		{"mount made writable by hand", func(t *testing.T, _ *config.Config, path string) {
			replaceIn(t, path, "- ro\n", "- rw\n")
		}, []string{`its mounts differ`}},
		{"device type changed by hand", func(t *testing.T, _ *config.Config, path string) {
			replaceIn(t, path, "type: c\n", "type: b\n")
		}, []string{`its deviceNodes differ`}},
		{"env removed by hand", func(t *testing.T, _ *config.Config, path string) {
			replaceIn(t, path, "    - GREENBOOST_ACTIVE=1\n", "")
		}, []string{`its env differ`}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig(t)
			cfg.Limits.Profiles = map[string]config.Profile{} // so that a removed config misses none
			writeConfig(t, cfg)
			path := writeTestSpec(t, cfg)
			if _, err := Validate(path); err != nil {
				t.Fatalf("a fresh spec: %v", err)
			}
			tt.change(t, cfg, path)
			_, err := Validate(path)
			if !errors.Is(err, ErrStale) {
				t.Fatalf("error = %v, want a stale spec", err)
			}
			fix := "greenboost-ctk --config " + cfg.Path + " cdi generate --output " + path
			for _, w := range append(tt.want, path, cfg.Path, fix) {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error = %v, want it to contain %q", err, w)
				}
			}
		})
	}
}

// encodedSpec is the YAML spec `cdi generate` writes for cfg.
func encodedSpec(t *testing.T, cfg *config.Config) []byte {
	t.Helper()
	spec, err := Spec(cfg)
	if err != nil {
		t.Fatal(err)
	}
	data, err := Encode(spec, "yaml")
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func writeTestSpec(t *testing.T, cfg *config.Config) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "greenboost.io-vram.yaml")
	if err := WriteSpec(path, encodedSpec(t, cfg)); err != nil {
		t.Fatal(err)
	}
	return path
}

func writeConfig(t *testing.T, cfg *config.Config) {
	t.Helper()
	data, err := cfg.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfg.Path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func replaceIn(t *testing.T, path, old, new string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), old) {
		t.Fatalf("%s holds no %q:\n%s", path, old, data)
	}
	if err := os.WriteFile(path, []byte(strings.Replace(string(data), old, new, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
}
