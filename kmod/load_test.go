package kmod

import (
	"bytes"
	"compress/gzip"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func writeFile(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestFindModule(t *testing.T) {
	const rel = "6.1.0-56-cloud-amd64"
	tests := []struct {
		name    string
		files   []string // under modulesDir/rel
		module  string   // "" = ModuleName; a leading "@" = relative to the temp dir
		want    string   // relative to modulesDir/rel, or "@..." relative to the temp dir
		wantErr string
	}{
		{name: "in extra", files: []string{"extra/greenboost.ko"}, want: "extra/greenboost.ko"},
		{name: "deep in kernel tree", files: []string{"kernel/drivers/misc/greenboost.ko.zst"}, want: "kernel/drivers/misc/greenboost.ko.zst"},
		{name: "updates before extra", files: []string{"extra/greenboost.ko", "updates/dkms/greenboost.ko.xz"}, want: "updates/dkms/greenboost.ko.xz"},
		{name: "uncompressed first", files: []string{"extra/greenboost.ko.xz", "extra/greenboost.ko"}, want: "extra/greenboost.ko"},
		{name: "zst before xz", files: []string{"extra/a/greenboost.ko.xz", "extra/b/greenboost.ko.zst"}, want: "extra/b/greenboost.ko.zst"},
		{name: "build dir ignored", files: []string{"build/greenboost.ko"}, wantErr: "looked for greenboost.ko"},
		{name: "other names ignored", files: []string{"extra/greenboost2.ko", "extra/greenboost.ko.sig"}, wantErr: "not found"},
		{name: "dash and underscore", files: []string{"extra/my_mod.ko"}, module: "my-mod", want: "extra/my_mod.ko"},
		{name: "missing tree", module: "", wantErr: "/lib/modules-fake/" + rel},
		{name: "path", module: "@x/greenboost.ko", files: nil, want: "@x/greenboost.ko"},
		{name: "missing path", module: "@y/greenboost.ko", wantErr: "make module"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tmp := t.TempDir()
			modulesDir := filepath.Join(tmp, "lib/modules-fake")
			for _, f := range tc.files {
				writeFile(t, filepath.Join(modulesDir, rel, f), []byte("x"))
			}
			module := tc.module
			if module == "" {
				module = ModuleName
			}
			if strings.HasPrefix(module, "@") {
				module = filepath.Join(tmp, module[1:])
				if tc.wantErr == "" {
					writeFile(t, module, []byte("x"))
				}
			}
			got, err := findModule(module, modulesDir, rel)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !errors.Is(err, ErrModuleNotFound) {
					t.Fatalf("findModule = %q, %v; want ErrModuleNotFound containing %q", got, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			want := filepath.Join(modulesDir, rel, tc.want)
			if strings.HasPrefix(tc.want, "@") {
				want = filepath.Join(tmp, tc.want[1:])
			}
			if got != want {
				t.Fatalf("findModule = %q, want %q", got, want)
			}
		})
	}
}

func TestParseDevNumber(t *testing.T) {
	tests := []struct {
		in       string
		maj, min uint32
		ok       bool
	}{
		{"250:0\n", 250, 0, true},
		{"10:125", 10, 125, true},
		{" 511:1048575 \n", 511, 1048575, true},
		{"", 0, 0, false},
		{"250", 0, 0, false},
		{"a:b", 0, 0, false},
		{"250:-1", 0, 0, false},
		{"1:2:3", 0, 0, false},
	}
	for _, tc := range tests {
		maj, min, err := parseDevNumber(tc.in)
		if (err == nil) != tc.ok || maj != tc.maj || min != tc.min {
			t.Errorf("parseDevNumber(%q) = %d, %d, %v; want %d, %d, ok=%v", tc.in, maj, min, err, tc.maj, tc.min, tc.ok)
		}
	}
}

func TestExplainLoadError(t *testing.T) {
	base := loadEnv{release: "6.1.0-56-cloud-amd64", capSysModule: true, lockdown: "none"}
	tests := []struct {
		name  string
		errno unix.Errno
		env   func(*loadEnv)
		want  []string
	}{
		{"modules disabled", unix.EPERM, func(e *loadEnv) { e.modulesDisabled = true; e.lockdown = "integrity" },
			[]string{"modules_disabled = 1", "reboot"}},
		{"no capability", unix.EPERM, func(e *loadEnv) { e.capSysModule = false },
			[]string{"CAP_SYS_MODULE", "load = \"never\""}},
		{"user namespace", unix.EPERM, func(e *loadEnv) { e.inUserNS = true },
			[]string{"initial user namespace"}},
		{"lockdown", unix.EPERM, func(e *loadEnv) { e.lockdown = "integrity" },
			[]string{"locked down", "lockdown=integrity", "Secure Boot", "mokutil"}},
		{"signature rejected", unix.EKEYREJECTED, nil, []string{"signed modules", "Secure Boot"}},
		{"other EPERM", unix.EPERM, nil, []string{"permission denied", "dmesg"}},
		{"vermagic", unix.ENOEXEC, func(e *loadEnv) { e.vermagic = "6.12.117+deb12-cloud-amd64 SMP mod_unload" },
			[]string{"wrong kernel", `"6.12.117+deb12-cloud-amd64 SMP mod_unload"`, "6.1.0-56-cloud-amd64", "KDIR=/lib/modules/6.1.0-56-cloud-amd64/build"}},
		{"vermagic unknown", unix.ENOEXEC, nil, []string{"another kernel", "exec format"}},
		{"unknown symbols", unix.ENOENT, nil, []string{"unknown symbols", "make module"}},
		{"bad params", unix.EINVAL, nil, []string{`parameters "pool_mb=x"`}},
		{"other", unix.ENOMEM, nil, []string{"cannot load /m/greenboost.ko"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			env := base
			if tc.env != nil {
				tc.env(&env)
			}
			err := explainLoadError("/m/greenboost.ko", "pool_mb=x", tc.errno, env)
			if !errors.Is(err, tc.errno) {
				t.Errorf("errno %v not kept in %v", tc.errno, err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestParsers(t *testing.T) {
	if got := parseLockdown("none [integrity] confidentiality\n"); got != "integrity" {
		t.Errorf("parseLockdown = %q", got)
	}
	if got := parseLockdown("[none] integrity confidentiality"); got != "none" {
		t.Errorf("parseLockdown = %q", got)
	}
	if c, ok := parseCapEff("Name:\tx\nCapInh:\t0\nCapEff:\t000001ffffffffff\n"); !ok || c&(1<<unix.CAP_SYS_MODULE) == 0 {
		t.Errorf("parseCapEff = %x, %v", c, ok)
	}
	if c, ok := parseCapEff("CapEff:\t0000000000000000\n"); !ok || c != 0 {
		t.Errorf("parseCapEff = %x, %v", c, ok)
	}
	if !isInitialUIDMap("         0          0 4294967295\n") || isInitialUIDMap("0 1000 1\n") {
		t.Error("isInitialUIDMap")
	}
	for _, tc := range []struct {
		head []byte
		want string
	}{
		{[]byte{0x7f, 'E', 'L', 'F'}, compNone},
		{[]byte{0xfd, '7', 'z', 'X', 'Z', 0}, compXZ},
		{[]byte{0x28, 0xb5, 0x2f, 0xfd, 0}, compZstd},
		{[]byte{0x1f, 0x8b, 8}, compGzip},
	} {
		if got := compression(tc.head); got != tc.want {
			t.Errorf("compression(% x) = %q, want %q", tc.head, got, tc.want)
		}
	}
	if got := vermagic([]byte("\x00license=GPL\x00vermagic=6.1.0-56-cloud-amd64 SMP mod_unload modversions \x00name=x")); got != "6.1.0-56-cloud-amd64 SMP mod_unload modversions " {
		t.Errorf("vermagic = %q", got)
	}
	for _, tc := range []struct {
		err  error
		rel  string
		want bool
	}{
		{unix.EOPNOTSUPP, "6.1.0", true},
		{unix.EINVAL, "5.10.0-28-amd64", true},
		{unix.EINVAL, "6.1.0-56-cloud-amd64", false},
		{unix.ENOEXEC, "5.10.0", false},
	} {
		if got := noKernelDecompress(tc.err, tc.rel); got != tc.want {
			t.Errorf("noKernelDecompress(%v, %s) = %v", tc.err, tc.rel, got)
		}
	}
}

// fakeSystem is a loader over a temporary tree with recorded system calls.
type fakeSystem struct {
	*loader
	root     string
	finits   []string // "params flags"
	images   [][]byte
	mknods   []string
	finitErr []error // answers, in order; nil when exhausted
}

func newFakeSystem(t *testing.T) *fakeSystem {
	root := t.TempDir()
	fs := &fakeSystem{root: root}
	fs.loader = &loader{
		sysDir:     filepath.Join(root, "sys"),
		procDir:    filepath.Join(root, "proc"),
		modulesDir: filepath.Join(root, "lib/modules"),
		udevCtl:    filepath.Join(root, "run/udev/control"),
		release:    func() (string, error) { return "6.1.0-56-cloud-amd64", nil },
		finit: func(fd int, params string, flags int) error {
			fs.finits = append(fs.finits, params+" "+string(rune('0'+flags)))
			var err error
			if len(fs.finitErr) > 0 {
				err, fs.finitErr = fs.finitErr[0], fs.finitErr[1:]
			}
			if err == nil {
				fs.loaded()
			}
			return err
		},
		initMod: func(image []byte, params string) error {
			fs.images = append(fs.images, image)
			fs.loaded()
			return nil
		},
		mknod: func(path string, mode uint32, dev int) error {
			fs.mknods = append(fs.mknods, path)
			return nil
		},
		nodeWait:  50 * time.Millisecond,
		udevGrace: 10 * time.Millisecond,
		poll:      time.Millisecond,
	}
	return fs
}

func (fs *fakeSystem) loaded() {
	os.MkdirAll(filepath.Join(fs.sysDir, "module", ModuleName), 0o755)
	p := filepath.Join(fs.sysDir, sysfsDevAttr)
	os.MkdirAll(filepath.Dir(p), 0o755)
	os.WriteFile(p, []byte("250:0\n"), 0o644)
}

func TestEnsure(t *testing.T) {
	t.Run("already loaded", func(t *testing.T) {
		fs := newFakeSystem(t)
		fs.loaded()
		dev := filepath.Join(fs.root, "dev/greenboost")
		if err := fs.ensure(LoadOptions{Load: LoadNever, DevicePath: dev}); err != nil {
			t.Fatal(err)
		}
		if len(fs.finits) != 0 || len(fs.mknods) != 1 || fs.mknods[0] != dev {
			t.Fatalf("finits %v mknods %v", fs.finits, fs.mknods)
		}
	})
	t.Run("never", func(t *testing.T) {
		fs := newFakeSystem(t)
		err := fs.ensure(LoadOptions{Load: LoadNever})
		if !errors.Is(err, ErrNotLoaded) || !strings.Contains(err.Error(), "modprobe greenboost") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("bad mode", func(t *testing.T) {
		fs := newFakeSystem(t)
		if err := fs.ensure(LoadOptions{Load: "sometimes"}); err == nil || !strings.Contains(err.Error(), "sometimes") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("load by name", func(t *testing.T) {
		fs := newFakeSystem(t)
		writeFile(t, filepath.Join(fs.modulesDir, "6.1.0-56-cloud-amd64/extra/greenboost.ko"), []byte("\x7fELF"))
		if err := fs.ensure(LoadOptions{Params: "pool_mb=64", DevicePath: filepath.Join(fs.root, "dev/gb")}); err != nil {
			t.Fatal(err)
		}
		if len(fs.finits) != 1 || fs.finits[0] != "pool_mb=64 0" || len(fs.mknods) != 1 {
			t.Fatalf("finits %q mknods %v", fs.finits, fs.mknods)
		}
	})
	t.Run("concurrent loader", func(t *testing.T) {
		fs := newFakeSystem(t)
		mod := filepath.Join(fs.root, "greenboost.ko")
		writeFile(t, mod, []byte("\x7fELF"))
		fs.finitErr = []error{unix.EEXIST}
		fs.loaded() // the other loader's module
		os.RemoveAll(filepath.Join(fs.sysDir, "module"))
		if err := fs.ensure(LoadOptions{Module: mod, DevicePath: filepath.Join(fs.root, "dev/gb")}); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("zstd without kernel decompression", func(t *testing.T) {
		fs := newFakeSystem(t)
		mod := filepath.Join(fs.root, "greenboost.ko.zst")
		writeFile(t, mod, []byte{0x28, 0xb5, 0x2f, 0xfd, 0, 0})
		fs.finitErr = []error{unix.EOPNOTSUPP}
		err := fs.ensure(LoadOptions{Module: mod})
		if err == nil || !strings.Contains(err.Error(), "zstd-compressed") || !strings.Contains(err.Error(), "zstd -d") {
			t.Fatalf("err = %v", err)
		}
		if fs.finits[0] != " 4" {
			t.Fatalf("finit flags %q, want MODULE_INIT_COMPRESSED_FILE", fs.finits)
		}
	})
	// Before 5.17 the kernel decompresses nothing; from 5.17 it has one
	// decompressor, and one built for xz or zstd (Debian, Ubuntu) answers a
	// gzip file with EINVAL as well.
	for _, release := range []string{"5.10.0-30-amd64", "6.8.0-45-generic"} {
		t.Run("gzip decompressed in Go on "+release, func(t *testing.T) {
			fs := newFakeSystem(t)
			fs.release = func() (string, error) { return release, nil }
			var buf bytes.Buffer
			zw := gzip.NewWriter(&buf)
			zw.Write([]byte("\x7fELF module"))
			zw.Close()
			mod := filepath.Join(fs.root, "greenboost.ko.gz")
			writeFile(t, mod, buf.Bytes())
			fs.finitErr = []error{unix.EINVAL}
			if err := fs.ensure(LoadOptions{Module: mod, DevicePath: filepath.Join(fs.root, "dev/gb")}); err != nil {
				t.Fatal(err)
			}
			if len(fs.images) != 1 || string(fs.images[0]) != "\x7fELF module" {
				t.Fatalf("images %q", fs.images)
			}
		})
	}
	t.Run("vermagic from file", func(t *testing.T) {
		fs := newFakeSystem(t)
		mod := filepath.Join(fs.root, "greenboost.ko")
		writeFile(t, mod, []byte("\x7fELF\x00vermagic=6.12.117+deb12-cloud-amd64 SMP\x00"))
		fs.finitErr = []error{unix.ENOEXEC}
		err := fs.ensure(LoadOptions{Module: mod})
		if !errors.Is(err, unix.ENOEXEC) || !strings.Contains(err.Error(), "6.12.117+deb12-cloud-amd64 SMP") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("modules disabled", func(t *testing.T) {
		fs := newFakeSystem(t)
		writeFile(t, filepath.Join(fs.procDir, "sys/kernel/modules_disabled"), []byte("1\n"))
		mod := filepath.Join(fs.root, "greenboost.ko")
		writeFile(t, mod, []byte("\x7fELF"))
		fs.finitErr = []error{unix.EPERM}
		err := fs.ensure(LoadOptions{Module: mod})
		if !errors.Is(err, unix.EPERM) || !strings.Contains(err.Error(), "modules_disabled") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("no device node", func(t *testing.T) {
		fs := newFakeSystem(t)
		os.MkdirAll(filepath.Join(fs.sysDir, "module", ModuleName), 0o755)
		err := fs.ensure(LoadOptions{})
		if err == nil || !strings.Contains(err.Error(), "did not appear") {
			t.Fatalf("err = %v", err)
		}
	})
}

func TestCgroupID(t *testing.T) {
	dir := t.TempDir()
	id, err := CgroupID(dir)
	if err != nil {
		t.Fatal(err)
	}
	var st unix.Stat_t
	if err := unix.Stat(dir, &st); err != nil || st.Ino != id {
		t.Fatalf("CgroupID = %d, inode %d (%v)", id, st.Ino, err)
	}
	if _, err := CgroupID(filepath.Join(dir, "missing")); !errors.Is(err, unix.ENOENT) {
		t.Fatalf("missing dir: %v", err)
	}
	f := filepath.Join(dir, "file")
	writeFile(t, f, nil)
	if _, err := CgroupID(f); err == nil {
		t.Fatal("CgroupID of a file succeeded")
	}
}
