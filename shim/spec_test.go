package shim

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opencontainers/runtime-spec/specs-go"

	"github.com/greenboost/greenboost-container-toolkit/cdi"
	"github.com/greenboost/greenboost-container-toolkit/internal/config"
	"github.com/greenboost/greenboost-container-toolkit/internal/ocispec"
)

var update = flag.Bool("update", false, "rewrite the golden out.json files")

// testConfig points the device at /dev/null (char 1:3, always present) and
// the library at a file in testdata, whose absolute path the golden files
// spell @LIB@.
func testConfig(t testing.TB) (*config.Config, string) {
	t.Helper()
	lib, err := filepath.Abs("testdata/libgreenboost_cuda.so")
	if err != nil {
		t.Fatal(err)
	}
	cfg := config.Default()
	cfg.Device.HostPath = "/dev/null"
	cfg.Library.HostPaths = []string{"/nonexistent/libgreenboost_cuda.so", lib}
	cfg.Kmod.Load = "never"
	cfg.Limits.Enforce = false // a stand-in device, as in DESIGN.md §6
	return cfg, lib
}

func bundleWith(t *testing.T, specFile string) string {
	t.Helper()
	data, err := os.ReadFile(specFile)
	if err != nil {
		t.Fatal(err)
	}
	bundle := t.TempDir()
	if err := os.WriteFile(filepath.Join(bundle, "config.json"), data, 0o600); err != nil {
		t.Fatal(err)
	}
	return bundle
}

var discard = slog.New(slog.NewTextHandler(io.Discard, nil))

func TestEditBundleGolden(t *testing.T) {
	cfg, lib := testConfig(t)
	for _, name := range []string{"plain", "image-ld-preload", "preload-already-ours", "unknown-fields", "userns-resources"} {
		t.Run(name, func(t *testing.T) {
			dir := filepath.Join("testdata", name)
			bundle := bundleWith(t, filepath.Join(dir, "in.json"))
			if err := editBundle(cfg, "c1", bundle, ocispec.Path(bundle), discard); err != nil {
				t.Fatal(err)
			}
			got := readPretty(t, filepath.Join(bundle, "config.json"))
			got = strings.ReplaceAll(got, lib, "@LIB@")
			golden := filepath.Join(dir, "out.json")
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatal(err)
			}
			if got != string(want) {
				t.Fatalf("edited spec differs from %s:\n%s", golden, got)
			}
			fi, _ := os.Stat(filepath.Join(bundle, "config.json"))
			if fi.Mode().Perm() != 0o600 {
				t.Fatalf("config.json mode changed to %v", fi.Mode().Perm())
			}

			// Applying the edits again changes nothing.
			before, _ := os.ReadFile(filepath.Join(bundle, "config.json"))
			if err := editBundle(cfg, "c1", bundle, ocispec.Path(bundle), discard); err != nil {
				t.Fatal(err)
			}
			after, _ := os.ReadFile(filepath.Join(bundle, "config.json"))
			if !bytes.Equal(before, after) {
				t.Fatalf("second application changed the spec:\n%s\nvs\n%s", before, after)
			}
		})
	}
}

func readPretty(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var v any
	if err := decodeNumbers(data, &v); err != nil {
		t.Fatal(err)
	}
	out, _ := json.MarshalIndent(v, "", "\t")
	return string(out) + "\n"
}

func TestEditBundleLeavesFileUntouched(t *testing.T) {
	cfg, _ := testConfig(t)
	for _, tt := range []struct {
		name    string
		wantErr string
	}{
		{"opt-out-env", ""},
		{"opt-out-annotation", ""},
		{"already-edited-elsewhere", ""}, // CDI-injected, another config and a profile
		{"malformed", "parsing OCI spec @BUNDLE@/config.json"},
		{"bogus-limit", `invalid GREENBOOST_RAM_LIMIT "bogus": expected`},
		{"bogus-opt-out", `invalid GREENBOOST_DISABLE "yes": expected true or false`},
		{"no-process", ""}, // valid JSON no container is made from: the runtime's to report
		{"json-null", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			in := filepath.Join("testdata", tt.name, "in.json")
			bundle := bundleWith(t, in)
			err := editBundle(cfg, "c1", bundle, ocispec.Path(bundle), discard)
			if tt.wantErr == "" && err != nil {
				t.Fatal(err)
			}
			wantErr := strings.ReplaceAll(tt.wantErr, "@BUNDLE@", bundle)
			if wantErr != "" && (err == nil || !strings.Contains(err.Error(), wantErr)) {
				t.Fatalf("error = %v, want one containing %q", err, wantErr)
			}
			want, _ := os.ReadFile(in)
			got, _ := os.ReadFile(filepath.Join(bundle, "config.json"))
			if !bytes.Equal(got, want) {
				t.Fatal("config.json was modified")
			}
			entries, _ := os.ReadDir(bundle)
			if len(entries) != 1 {
				t.Fatalf("stray files left in the bundle: %v", entries)
			}
		})
	}
}

// With [limits] enforce = false a container starts where the module cannot
// be loaded: with GreenBoost while the device exists (the hook then warns and
// records), with only the hooks (which record its limits as not enforced)
// where there is none; with enforce = true neither starts.
func TestEditBundleWithoutModule(t *testing.T) {
	const (
		untouched = "untouched"
		all       = "device, library, env and hooks"
		hooksOnly = "hooks only"
	)
	for _, tt := range []struct {
		name, device string
		enforce      bool
		wantErr      string
		want         string
	}{
		{"enforced", "/dev/null", true, "cannot enforce GreenBoost budgets for container c1: greenboost kernel module not found", untouched},
		{"unenforced with a device", "/dev/null", false, "", all},
		{"unenforced without a device", "/nonexistent/greenboost", false, "", hooksOnly},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg, _ := testConfig(t)
			cfg.Kmod.Load = "auto"
			cfg.Kmod.Module = "/nonexistent/greenboost.ko"
			cfg.Device.HostPath = tt.device
			cfg.Limits.Enforce = tt.enforce
			bundle := bundleWith(t, "testdata/plain/in.json")
			err := editBundle(cfg, "c1", bundle, ocispec.Path(bundle), discard)
			if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("error = %v, want %q", err, tt.wantErr)
			}
			in, _ := os.ReadFile("testdata/plain/in.json")
			out, _ := os.ReadFile(filepath.Join(bundle, "config.json"))
			got := untouched
			if !bytes.Equal(in, out) {
				spec, err := LoadSpec(ocispec.Path(bundle))
				if err != nil {
					t.Fatal(err)
				}
				defer spec.Close()
				raw := spec.Raw()
				hooks := hasGreenBoost(raw.Hooks) && len(raw.Hooks.Poststop) == 1
				device := raw.Linux != nil && len(raw.Linux.Devices) == 1
				switch {
				case hooks && device && envValue(raw.Process.Env, "GREENBOOST_ACTIVE") == "1" && len(raw.Mounts) > 0:
					got = all
				case hooks && !device && envValue(raw.Process.Env, "LD_PRELOAD") == "" && envValue(raw.Process.Env, "GREENBOOST_ACTIVE") == "":
					got = hooksOnly
				default:
					got = fmt.Sprintf("hooks %v, device %v, env %q", hooks, device, raw.Process.Env)
				}
			}
			if got != tt.want {
				t.Fatalf("the container gets %s, want %s", got, tt.want)
			}
		})
	}
}

func TestEditBundleErrors(t *testing.T) {
	t.Run("no library", func(t *testing.T) {
		cfg, _ := testConfig(t)
		cfg.Library.HostPaths = []string{"/nonexistent/a.so", "/nonexistent/b.so"}
		bundle := bundleWith(t, "testdata/plain/in.json")
		err := editBundle(cfg, "c1", bundle, ocispec.Path(bundle), discard)
		if err == nil || !strings.Contains(err.Error(), "/nonexistent/a.so, /nonexistent/b.so") || !strings.Contains(err.Error(), "host-paths") {
			t.Fatalf("error = %v", err)
		}
	})
	t.Run("no device", func(t *testing.T) {
		cfg, _ := testConfig(t)
		cfg.Device.HostPath = "/nonexistent/greenboost"
		cfg.Limits.Enforce = true
		bundle := bundleWith(t, "testdata/plain/in.json")
		err := editBundle(cfg, "c1", bundle, ocispec.Path(bundle), discard)
		if err == nil || !strings.Contains(err.Error(), "/nonexistent/greenboost") {
			t.Fatalf("error = %v", err)
		}
	})
	// What the prestart hook would refuse fails create itself, where crun
	// would hide the hook's message.
	t.Run("not a GreenBoost module", func(t *testing.T) {
		cfg, _ := testConfig(t)
		cfg.Limits.Enforce = true
		bundle := bundleWith(t, "testdata/plain/in.json")
		err := editBundle(cfg, "c1", bundle, ocispec.Path(bundle), discard)
		if err == nil || !strings.Contains(err.Error(), "cannot enforce GreenBoost budgets for container c1: /dev/null is not a GreenBoost module") ||
			!strings.Contains(err.Error(), "enforce = false") {
			t.Fatalf("error = %v", err)
		}
		in, _ := os.ReadFile("testdata/plain/in.json")
		if out, _ := os.ReadFile(filepath.Join(bundle, "config.json")); !bytes.Equal(in, out) {
			t.Fatal("config.json was modified")
		}
	})
	t.Run("no bundle", func(t *testing.T) {
		cfg, _ := testConfig(t)
		bundle := t.TempDir()
		if err := editBundle(cfg, "c1", bundle, ocispec.Path(bundle), discard); err == nil || !strings.Contains(err.Error(), "config.json") {
			t.Fatalf("error = %v", err)
		}
	})
}

// A user who can rename entries in the bundle's parent directory swaps the
// bundle for a symlink to another directory between the read and the write:
// the write must still land in the bundle that was read.
func TestFlushWritesWhereTheSpecWasRead(t *testing.T) {
	parent := t.TempDir()
	bundle := filepath.Join(parent, "bundle")
	moved := filepath.Join(parent, "moved")
	decoy := t.TempDir()
	decoySpec := []byte(`{"ociVersion": "1.0.2"}`)
	if err := os.Mkdir(bundle, 0o755); err != nil {
		t.Fatal(err)
	}
	in, _ := os.ReadFile("testdata/plain/in.json")
	for _, f := range []struct {
		path string
		data []byte
	}{{ocispec.Path(bundle), in}, {ocispec.Path(decoy), decoySpec}} {
		if err := os.WriteFile(f.path, f.data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	spec, err := LoadSpec(ocispec.Path(bundle))
	if err != nil {
		t.Fatal(err)
	}
	defer spec.Close()
	spec.Raw().Process.Env = append(spec.Raw().Process.Env, "EDITED=1")
	if err := os.Rename(bundle, moved); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(decoy, bundle); err != nil {
		t.Fatal(err)
	}
	if err := spec.Flush(); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(ocispec.Path(decoy)); !bytes.Equal(got, decoySpec) {
		t.Fatalf("the write went to the directory swapped in: %s", got)
	}
	if got, _ := os.ReadFile(ocispec.Path(moved)); !strings.Contains(string(got), `"EDITED=1"`) {
		t.Fatalf("the bundle that was read did not get the write: %s", got)
	}
	if entries, _ := os.ReadDir(decoy); len(entries) != 1 {
		t.Fatalf("files left in the swapped-in directory: %v", entries)
	}
}

func TestLoadSpecRefusesALinkOutOfTheBundle(t *testing.T) {
	other := bundleWith(t, "testdata/plain/in.json")
	bundle := t.TempDir()
	if err := os.Symlink(ocispec.Path(other), ocispec.Path(bundle)); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadSpec(ocispec.Path(bundle)); err == nil || !strings.Contains(err.Error(), "make it a regular file") {
		t.Fatalf("error = %v, want one that names the symlink", err)
	}
}

// os.Root follows no absolute link, even one to a file inside the
// directory: the hint must say so, as it must not blame a link that only
// dangles.
func TestLoadSpecLinksInsideTheBundle(t *testing.T) {
	bundle := bundleWith(t, "testdata/plain/in.json")
	if err := os.Rename(ocispec.Path(bundle), filepath.Join(bundle, "real.json")); err != nil {
		t.Fatal(err)
	}
	link := func(target string) {
		t.Helper()
		os.Remove(ocispec.Path(bundle))
		if err := os.Symlink(target, ocispec.Path(bundle)); err != nil {
			t.Fatal(err)
		}
	}

	link("real.json")
	spec, err := LoadSpec(ocispec.Path(bundle))
	if err != nil {
		t.Fatalf("a relative link within the bundle: %v", err)
	}
	err = spec.Flush()
	spec.Close()
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Lstat(ocispec.Path(bundle)); err != nil || !fi.Mode().IsRegular() {
		t.Fatalf("after the flush config.json is %v, %v; want the regular file the README promises", fi, err)
	}

	link(filepath.Join(bundle, "real.json"))
	if _, err := LoadSpec(ocispec.Path(bundle)); err == nil || !strings.Contains(err.Error(), "an absolute symlink") {
		t.Fatalf("an absolute link: error = %v, want one that names the absolute symlink", err)
	}

	if _, err := LoadSpec(ocispec.Path(bundle) + "/"); err == nil || !strings.Contains(err.Error(), "names a directory") {
		t.Fatalf("a path ending in a separator: error = %v, want one saying it names a directory", err)
	}

	link("missing.json")
	_, err = LoadSpec(ocispec.Path(bundle))
	if !errors.Is(err, fs.ErrNotExist) || strings.Contains(err.Error(), "symlink") {
		t.Fatalf("a dangling link: error = %v, want not-exist without the symlink hint", err)
	}
}

// FuzzLoadSpec: a failed edit leaves the file as it was; a successful one
// writes a spec that loads and, where it changed the file of a spec that
// decodes whole, is what the edits make of the whole spec.
func FuzzLoadSpec(f *testing.F) {
	for _, name := range []string{"plain", "image-ld-preload", "malformed", "unknown-fields", "userns-resources"} {
		data, err := os.ReadFile(filepath.Join("testdata", name, "in.json"))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	cfg := config.Default()
	cfg.Device.HostPath = "/dev/null"
	lib, _ := filepath.Abs("testdata/libgreenboost_cuda.so")
	cfg.Library.HostPaths = []string{lib}
	cfg.Kmod.Load = "never"
	cfg.Limits.Enforce = false
	f.Fuzz(func(t *testing.T, data []byte) {
		bundle := t.TempDir()
		path := filepath.Join(bundle, "config.json")
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := editBundle(cfg, "c1", bundle, ocispec.Path(bundle), discard); err != nil {
			got, _ := os.ReadFile(path)
			if !bytes.Equal(got, data) {
				t.Fatalf("failed edit (%v) modified the spec", err)
			}
			return
		}
		spec, err := LoadSpec(ocispec.Path(bundle))
		if err != nil {
			t.Fatalf("edited spec does not load: %v", err)
		}
		spec.Close()
		got, _ := os.ReadFile(path)
		if !bytes.Equal(got, data) && json.Unmarshal(data, &specs.Spec{}) == nil {
			checkEditsAsOnTheWholeSpec(t, cfg, data, got)
		}
	})
}

// TestEditsNeedOnlyTheDecodedMembers: Spec decodes only specMembers, so the
// edits must reach nothing else (Flush would drop it). Through editBundle
// they give the spec they give applied to the whole specs.Spec.
func TestEditsNeedOnlyTheDecodedMembers(t *testing.T) {
	cfg, _ := testConfig(t)
	for _, name := range []string{"plain", "image-ld-preload", "unknown-fields", "userns-resources"} {
		t.Run(name, func(t *testing.T) {
			in, out := editTestdataSpec(t, cfg, name)
			checkEditsAsOnTheWholeSpec(t, cfg, in, out)
		})
	}
}

// editTestdataSpec edits a bundle holding testdata/NAME/in.json and returns
// that spec and the edited one.
func editTestdataSpec(t *testing.T, cfg *config.Config, name string) (in, out []byte) {
	t.Helper()
	path := filepath.Join("testdata", name, "in.json")
	in, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	bundle := bundleWith(t, path)
	if err := editBundle(cfg, "c1", bundle, ocispec.Path(bundle), discard); err != nil {
		t.Fatal(err)
	}
	if out, err = os.ReadFile(ocispec.Path(bundle)); err != nil {
		t.Fatal(err)
	}
	return in, out
}

// checkEditsAsOnTheWholeSpec checks that out, what editBundle made of the
// spec in, is what the edits make of in decoded whole, as runc decodes it.
func checkEditsAsOnTheWholeSpec(t *testing.T, cfg *config.Config, in, out []byte) {
	t.Helper()
	edits, err := cdi.Edits(cfg, config.DefaultDevice)
	if err != nil {
		t.Fatal(err)
	}
	var whole specs.Spec
	if err := json.Unmarshal(in, &whole); err != nil {
		t.Fatal(err)
	}
	for _, m := range []Modifier{greenboostEdits{edits: edits}, userNSDevices{nodes: edits.DeviceNodes}} {
		if err := m.Modify(&whole); err != nil {
			t.Fatal(err)
		}
	}
	want, _ := json.Marshal(&whole)
	var edited specs.Spec
	if err := json.Unmarshal(out, &edited); err != nil {
		t.Fatalf("edited spec does not decode: %v\n%s", err, out)
	}
	if got, _ := json.Marshal(&edited); string(got) != string(want) {
		t.Fatalf("editing the decoded members gave\n%s\nediting the whole spec gives\n%s", got, want)
	}
}

// TestMembersTheEditsDoNotUseStayAsWritten: what Spec does not decode is
// written back byte for byte (spacing, number forms, escapes), at the top
// level and inside linux, where a seccomp profile is most of a spec.
func TestMembersTheEditsDoNotUseStayAsWritten(t *testing.T) {
	cfg, _ := testConfig(t)
	data, out := editTestdataSpec(t, cfg, "userns-resources")
	top := rawMembers(t, data)
	linux := rawMembers(t, top["linux"])
	for name, value := range map[string][]byte{
		"ociVersion": top["ociVersion"], "hostname": top["hostname"], "vendorTopLevel": top["vendorTopLevel"],
		"linux.seccomp": linux["seccomp"], "linux.sysctl": linux["sysctl"], "linux.vendorLinuxExtension": linux["vendorLinuxExtension"],
		"linux.cgroupsPath": linux["cgroupsPath"],
	} {
		if len(value) == 0 {
			t.Fatalf("%s missing from the userns-resources spec", name)
		}
		if !bytes.Contains(out, value) {
			t.Errorf("%s was rewritten: %s not in\n%s", name, value, out)
		}
	}
}

// rawMembers returns the members of the JSON object data as written.
func rawMembers(t *testing.T, data []byte) map[string][]byte {
	t.Helper()
	members, ok := membersAsDecoded(t, data)
	if !ok {
		t.Fatalf("not a JSON object: %s", data)
	}
	byKey := map[string][]byte{}
	for _, m := range members {
		byKey[m.key] = m.value
	}
	return byKey
}
