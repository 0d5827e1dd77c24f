package cdi

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
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
	spec, err := Spec(cfg)
	if err != nil {
		t.Fatal(err)
	}
	good, err := Encode(spec, "yaml")
	if err != nil {
		t.Fatal(err)
	}
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
	}{
		{"another kind", "other.yaml", strings.Replace(string(good), "kind: greenboost.io/vram", "kind: example.com/foo", 1),
			[]string{`kind "example.com/foo"`, `expected "greenboost.io/vram"`}},
		{".yml", "greenboost.io-vram.yml", string(good), []string{"engines never load it", ".yaml or .json"}},
		{".JSON", "greenboost.io-vram.JSON", string(good), []string{"engines never load it"}},
		{"hook binary missing", "hook.yaml", strings.ReplaceAll(string(good), cfg.Hook.Path, "/nonexistent/greenboost-hook"),
			[]string{"/nonexistent/greenboost-hook", "[hook] path", "cdi generate"}},
		{"library missing", "library.yaml", strings.ReplaceAll(string(good), cfg.Library.HostPaths[1], "/nonexistent/libgreenboost_cuda.so"),
			[]string{"/nonexistent/libgreenboost_cuda.so", "[library] host-paths", "cdi generate"}},
		{"hook config invalid", "config.yaml", strings.ReplaceAll(string(good), cfg.Path, badConfig),
			[]string{badConfig, "limits.ram", "cdi generate"}},
		{"profile gone from the hook config", "profile.yaml", strings.ReplaceAll(string(good), cfg.Path, noProfiles),
			[]string{noProfiles, `unknown profile "big"`, "cdi generate"}},
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
			for _, w := range append(tt.want, path) {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error = %v, want it to contain %q", err, w)
				}
			}
		})
	}
}
