package cdicmd

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"
	"golang.org/x/sys/unix"
)

// runCDI runs `greenboost-ctk cdi ARGS` with a config whose device is a
// stand-in node the test makes (the tests run as root, DESIGN.md §6), whose
// library is an empty file and whose hook an empty executable; the module is
// never loaded.
func runCDI(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	return runCDIWithHook(t, "", args...)
}

// runCDIWithHook is runCDI with [hook] path set to hookPath ("": the empty
// executable).
func runCDIWithHook(t *testing.T, hookPath string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	dir := t.TempDir()
	device := filepath.Join(dir, "greenboost")
	if err := unix.Mknod(device, unix.S_IFCHR|0o666, int(unix.Mkdev(240, 7))); err != nil {
		t.Fatalf("mknod %s (the tests run as root): %v", device, err)
	}
	lib := filepath.Join(dir, "libgreenboost_cuda.so")
	if err := os.WriteFile(lib, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if hookPath == "" {
		hookPath = filepath.Join(dir, "greenboost-hook")
		if err := os.WriteFile(hookPath, nil, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	cfgPath := filepath.Join(dir, "config.toml")
	cfg := fmt.Sprintf("[device]\nhost-path = %q\n[library]\nhost-paths = [%q]\n[kmod]\nload = \"never\"\n[hook]\npath = %q\n", device, lib, hookPath)
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	var out, errOut strings.Builder
	app := &cli.App{
		Name:           "greenboost-ctk",
		Flags:          []cli.Flag{&cli.StringFlag{Name: "config", Value: cfgPath}},
		Commands:       []*cli.Command{New()},
		Writer:         &out,
		ErrWriter:      &errOut,
		ExitErrHandler: func(*cli.Context, error) {},
	}
	err = app.Run(append([]string{"greenboost-ctk", "cdi"}, args...))
	return out.String(), errOut.String(), err
}

// An --output whose name the CDI library passes over (it loads only .yaml
// and .json files) is refused before anything is written: `cdi list` would
// find nothing there. A name it loads is written and found.
func TestGenerateOutputName(t *testing.T) {
	for _, tt := range []struct {
		name string
		ok   bool
	}{
		{"greenboost.io-vram.yaml", true},
		{"greenboost.io-vram.json", true},
		{"greenboost.io-vram.yml", false},
		{"greenboost.io-vram.txt", false},
		{"greenboost.io-vram.JSON", false},
		{"greenboost.io-vram", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			output := filepath.Join(dir, tt.name)
			_, _, err := runCDI(t, "generate", "--output", output)
			if !tt.ok {
				if err == nil || !strings.Contains(err.Error(), output) || !strings.Contains(err.Error(), ".yaml or .json") || strings.Contains(err.Error(), "\n") {
					t.Errorf("error = %v, want one line naming %s and the extensions engines load", err, output)
				}
				if _, err := os.Stat(output); !os.IsNotExist(err) {
					t.Errorf("%s written despite the error (%v)", output, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			stdout, _, err := runCDI(t, "list", "--spec-dir", dir)
			if err != nil || !strings.Contains(stdout, "greenboost.io/vram=ext") {
				t.Errorf("cdi list: %q (%v), want greenboost.io/vram=ext", stdout, err)
			}
		})
	}
	stdout, _, err := runCDI(t, "generate", "--output", "-")
	if err != nil || !strings.Contains(stdout, "kind: greenboost.io/vram") {
		t.Errorf("--output -: %q (%v), want the spec on stdout", stdout, err)
	}
	// an empty value (an unset variable in a script) is no file name
	if _, _, err := runCDI(t, "generate", "--output", ""); err == nil || !strings.Contains(err.Error(), "--output is empty") {
		t.Errorf(`--output "": %v, want it named as empty`, err)
	}
}

// An --output that is a symlink is written through: the link stays and the
// file it leads to gets the spec, as `runtime configure` does with engine
// configs. A directory is refused as one.
func TestGenerateOutputLinksAndDirectories(t *testing.T) {
	for _, tt := range []struct {
		name string
		// setup makes the output path in dir; it returns the file that
		// must get the spec, "" when generate must fail with want.
		setup func(t *testing.T, dir string) (output, target string)
		want  string
	}{
		{
			name: "relative link",
			setup: func(t *testing.T, dir string) (string, string) {
				mkdir(t, filepath.Join(dir, "real"))
				writeFile(t, filepath.Join(dir, "real", "spec.yaml"), "old\n")
				symlink(t, "../real/spec.yaml", filepath.Join(dir, "cdi", "greenboost.io-vram.yaml"))
				return filepath.Join(dir, "cdi", "greenboost.io-vram.yaml"), filepath.Join(dir, "real", "spec.yaml")
			},
		},
		{
			name: "chain of links to a file not there yet",
			setup: func(t *testing.T, dir string) (string, string) {
				mkdir(t, filepath.Join(dir, "real"))
				symlink(t, filepath.Join(dir, "real", "spec.yaml"), filepath.Join(dir, "middle"))
				symlink(t, "../middle", filepath.Join(dir, "cdi", "greenboost.io-vram.yaml"))
				return filepath.Join(dir, "cdi", "greenboost.io-vram.yaml"), filepath.Join(dir, "real", "spec.yaml")
			},
		},
		{
			name: "directory",
			setup: func(t *testing.T, dir string) (string, string) {
				writeFile(t, filepath.Join(dir, "other.yaml"), "")
				return dir, ""
			},
			want: "is a directory",
		},
		{
			name: "link to a directory",
			setup: func(t *testing.T, dir string) (string, string) {
				mkdir(t, filepath.Join(dir, "real"))
				symlink(t, filepath.Join(dir, "real"), filepath.Join(dir, "greenboost.io-vram.yaml"))
				return filepath.Join(dir, "greenboost.io-vram.yaml"), ""
			},
			want: "is a directory",
		},
		{
			name: "link loop",
			setup: func(t *testing.T, dir string) (string, string) {
				symlink(t, "greenboost.io-vram.yaml", filepath.Join(dir, "greenboost.io-vram.yaml"))
				return filepath.Join(dir, "greenboost.io-vram.yaml"), ""
			},
			want: "too many levels of symbolic links",
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			output, target := tt.setup(t, t.TempDir())
			_, stderr, err := runCDI(t, "generate", "--output", output)
			if target == "" {
				if err == nil || !strings.Contains(err.Error(), output) || !strings.Contains(err.Error(), tt.want) {
					t.Errorf("error = %v, want one naming %s and %q", err, output, tt.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if fi, err := os.Lstat(output); err != nil || fi.Mode()&os.ModeSymlink == 0 {
				t.Errorf("%s is no longer a symlink (%v)", output, err)
			}
			data, err := os.ReadFile(target)
			if err != nil || !strings.Contains(string(data), "kind: greenboost.io/vram") {
				t.Errorf("%s = %q (%v), want the spec", target, data, err)
			}
			if fi, err := os.Stat(target); err != nil {
				t.Error(err)
			} else if fi.Mode().Perm() != 0o644 {
				t.Errorf("%s: mode %v, want 0644", target, fi.Mode())
			}
			if !strings.Contains(stderr, target) {
				t.Errorf("stderr %q, want it to name %s", stderr, target)
			}
		})
	}
}

// A spec is generated before the hook is installed (a package's order, a
// config naming where it will be) with a warning naming the hook and the key
// to set; validate reports it missing until it is there.
func TestGenerateWithoutHookBinary(t *testing.T) {
	out := filepath.Join(t.TempDir(), "greenboost.io-vram.yaml")
	_, stderr, err := runCDIWithHook(t, "/nonexistent/greenboost-hook", "generate", "--output", out)
	if err != nil {
		t.Fatalf("generate: %v", err)
	}
	if !strings.Contains(stderr, "warning: hook") || !strings.Contains(stderr, "/nonexistent/greenboost-hook") || !strings.Contains(stderr, "[hook] path") {
		t.Fatalf("stderr = %q, want a warning naming the missing hook and [hook] path", stderr)
	}
	if _, err := os.Stat(out); err != nil {
		t.Fatalf("no spec written: %v", err)
	}
	_, _, err = runCDI(t, "validate", out)
	if err == nil || !strings.Contains(err.Error(), "/nonexistent/greenboost-hook") {
		t.Fatalf("validate: err = %v, want it to name the missing hook", err)
	}
}

// validate refuses a spec of another kind and one engines would not load.
func TestValidate(t *testing.T) {
	dir := t.TempDir()
	for _, tt := range []struct {
		file, content string
		want          []string
	}{
		{"other.yaml", "cdiVersion: 0.5.0\nkind: example.com/foo\ndevices:\n- name: x\n  containerEdits:\n    env: [A=1]\n",
			[]string{`kind "example.com/foo"`, `expected "greenboost.io/vram"`}},
		{"spec.yml", "cdiVersion: 0.5.0\nkind: greenboost.io/vram\ndevices:\n- name: x\n  containerEdits:\n    env: [A=1]\n",
			[]string{"engines never load it", ".yaml or .json"}},
	} {
		path := filepath.Join(dir, tt.file)
		writeFile(t, path, tt.content)
		_, _, err := runCDI(t, "validate", path)
		if err == nil {
			t.Errorf("%s: valid, want an error", tt.file)
			continue
		}
		for _, w := range append(tt.want, path) {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error = %v, want it to contain %q", tt.file, err, w)
			}
		}
	}
	if _, _, err := runCDI(t, "validate", dir); err == nil || !strings.Contains(err.Error(), dir+" is a directory") || !strings.Contains(err.Error(), "cdi list --spec-dir") {
		t.Errorf("validate of a directory: %v, want it named as one, with the command for directories", err)
	}
	// Without FILE, validate checks the file generate writes: GREENBOOST_CDI_OUTPUT's.
	t.Setenv("GREENBOOST_CDI_OUTPUT", filepath.Join(dir, "other.yaml"))
	if _, _, err := runCDI(t, "validate"); err == nil || !strings.Contains(err.Error(), filepath.Join(dir, "other.yaml")) {
		t.Errorf("validate with GREENBOOST_CDI_OUTPUT set: %v, want it to check that file", err)
	}
}

// Two specs of our kind conflict: list names both and asks to keep one, not
// to generate a third.
func TestListConflictingSpecs(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"a.yaml", "b.yaml"} {
		if _, _, err := runCDI(t, "generate", "--output", filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	_, stderr, err := runCDI(t, "list", "--spec-dir", dir)
	if err == nil || !strings.Contains(stderr, "a.yaml") || !strings.Contains(stderr, "b.yaml") {
		t.Fatalf("list: %v, stderr %q; want a failure naming both files", err, stderr)
	}
	if strings.Contains(stderr, "cdi generate") || !strings.Contains(stderr, "keep one") {
		t.Errorf("list's fix: %q, want the conflict resolved, not another spec generated", stderr)
	}
}

func mkdir(t *testing.T, dir string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	mkdir(t, filepath.Dir(path))
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func symlink(t *testing.T, dest, link string) {
	t.Helper()
	mkdir(t, filepath.Dir(link))
	if err := os.Symlink(dest, link); err != nil {
		t.Fatal(err)
	}
}
