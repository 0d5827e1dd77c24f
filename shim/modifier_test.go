package shim

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/opencontainers/runtime-spec/specs-go"

	"github.com/greenboost/greenboost-container-toolkit/cdi"
)

// FuzzEdits applies the GreenBoost edits to a process environment made of
// arbitrary lines (an image's ENV, docker -e) and checks what the container
// is promised: our library first in the one LD_PRELOAD, the image's preloads
// kept after it, GREENBOOST_ACTIVE=1 once, every other variable untouched,
// one device, one read-only mount, one hook per stage, and a second
// application that changes nothing.
func FuzzEdits(f *testing.F) {
	f.Add("PATH=/bin\nLD_PRELOAD=/opt/a.so /opt/b.so:/opt/c.so")
	f.Add("LD_PRELOAD=/usr/lib/greenboost/libgreenboost_cuda.so:/x.so\nLD_PRELOAD=/y.so")
	f.Add("GREENBOOST_ACTIVE=0\nLD_PRELOAD\nLD_PRELOAD=")
	f.Add("=\n\n=LD_PRELOAD")
	cfg, _ := testConfig(f)
	edits, err := cdi.Edits(cfg, "ext")
	if err != nil {
		f.Fatal(err)
	}
	ours := cfg.Library.ContainerPath
	f.Fuzz(func(t *testing.T, envLines string) {
		env := strings.Split(envLines, "\n")
		s := &specs.Spec{Process: &specs.Process{Env: slices.Clone(env)}}
		m := greenboostEdits{edits: edits}
		if err := m.Modify(s); err != nil {
			t.Fatal(err)
		}

		var preloads, active, others []string
		for _, kv := range s.Process.Env {
			switch {
			case strings.HasPrefix(kv, cdi.PreloadEnv+"="):
				preloads = append(preloads, kv)
			case strings.HasPrefix(kv, cdi.ActiveEnv+"="):
				active = append(active, kv)
			default:
				others = append(others, kv)
			}
		}
		if len(preloads) != 1 || len(active) != 1 || active[0] != cdi.ActiveEnv+"=1" {
			t.Fatalf("env %q: want one LD_PRELOAD and GREENBOOST_ACTIVE=1", s.Process.Env)
		}
		merged := strings.Split(strings.TrimPrefix(preloads[0], cdi.PreloadEnv+"="), ":")
		if merged[0] != ours {
			t.Fatalf("LD_PRELOAD %q does not start with %s", preloads[0], ours)
		}
		imagePreload := envValue(env, cdi.PreloadEnv)
		for _, p := range strings.FieldsFunc(imagePreload, func(r rune) bool { return r == ':' || r == ' ' }) {
			if !slices.Contains(merged, p) {
				t.Fatalf("the image's preload %q was dropped from %q", p, preloads[0])
			}
		}
		wantOthers := slices.DeleteFunc(slices.Clone(env), func(kv string) bool {
			key, _, _ := strings.Cut(kv, "=")
			return key == cdi.PreloadEnv || key == cdi.ActiveEnv
		})
		if !slices.Equal(others, wantOthers) {
			t.Fatalf("other variables changed: %q -> %q", wantOthers, others)
		}
		if n := len(s.Linux.Devices); n != 1 || s.Linux.Devices[0].Path != "/dev/greenboost" {
			t.Fatalf("devices %+v", s.Linux.Devices)
		}
		if len(s.Mounts) != 1 || !slices.Contains(s.Mounts[0].Options, "ro") {
			t.Fatalf("mounts %+v", s.Mounts)
		}
		if len(s.Hooks.Prestart) != 1 || len(s.Hooks.Poststop) != 1 {
			t.Fatalf("hooks %+v", s.Hooks)
		}

		before, _ := json.Marshal(s)
		if err := m.Modify(s); err != nil {
			t.Fatal(err)
		}
		if after, _ := json.Marshal(s); string(after) != string(before) {
			t.Fatalf("a second application changed the spec:\n%s\n%s", before, after)
		}
	})
}

// TestEditsKeepTheEnginesMountOrder: runtimes mount in spec order, so the
// edits leave the engine's order alone (the CDI library alone would sort by
// depth, moving /sys before /dev/pts), add ours last, and replace an engine
// mount at our library's path.
func TestEditsKeepTheEnginesMountOrder(t *testing.T) {
	cfg, _ := testConfig(t)
	edits, err := cdi.Edits(cfg, "ext")
	if err != nil {
		t.Fatal(err)
	}
	ours := cfg.Library.ContainerPath
	s := &specs.Spec{Process: &specs.Process{}, Mounts: []specs.Mount{
		{Destination: "/proc"}, {Destination: "/dev"}, {Destination: "/dev/pts"}, {Destination: ours, Source: "/elsewhere.so"},
		{Destination: "/sys"}, {Destination: "/data/a/b"}, {Destination: "/data"},
	}}
	if err := (greenboostEdits{edits: edits}).Modify(s); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, m := range s.Mounts {
		got = append(got, m.Destination)
	}
	want := []string{"/proc", "/dev", "/dev/pts", "/sys", "/data/a/b", "/data", ours}
	if !slices.Equal(got, want) {
		t.Fatalf("mounts %q, want %q", got, want)
	}
	if last := s.Mounts[len(s.Mounts)-1]; last.Source == "/elsewhere.so" || !slices.Contains(last.Options, "ro") {
		t.Errorf("the mount at %s is %+v, want our read-only library", ours, last)
	}
}
