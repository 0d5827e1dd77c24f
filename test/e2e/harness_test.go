//go:build e2e

package e2e

import (
	"bufio"
	"bytes"
	"context"
	"debug/elf"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// Paths inside every test container.
const (
	libContainerPath = "/usr/lib/greenboost/libgreenboost_cuda.so" // the config default
	markerPath       = "/tmp/gb-preload-marker"                    // written by the fixture library
	imageLibPath     = "/opt/image/libimage.so"                    // an image's own preload library
	imageMarkerPath  = "/tmp/gb-image-marker"                      // written by the image's library
	dynProgram       = "/dyn/env"                                  // Debian's (dynamic) env: LD_PRELOAD works on it

	// standInMinor is the minor number of the stand-in device node; its
	// major is one no driver has registered (see newSuite), so the node
	// opens to ENXIO where the device cgroup allows it and EPERM where not.
	standInMinor = 77

	cmdTimeout = 60 * time.Second
)

// suite is what all tests share: built once, removed by TestMain.
type suite struct {
	repo       string
	tmp        string
	runtimeBin string // bin/greenboost-runtime
	hookBin    string // bin/greenboost-hook
	runc, crun string // absolute paths

	fixtureLib string // host path of the libgreenboost_cuda.so stand-in
	imageLib   string // host path of an image's own preload library
	evilLib    string // host path of the security tests' evil library
	evilDir    string // where the evil library drops markers (a host path)

	devPath      string // the stand-in device node
	devMajor     uint32
	devMinor     uint32
	baseRootfs   string        // busybox-static + a dynamic program and its libs
	specTemplate []byte        // `runc spec` output
	counter      atomicCounter // unique names
}

type atomicCounter struct {
	mu sync.Mutex
	n  int
}

func (c *atomicCounter) next() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.n++
	return c.n
}

var (
	suiteOnce   sync.Once
	theSuite    *suite
	errSuite    error
	cleanupMu   sync.Mutex
	cleanupFns  []func()
	crunOnce    sync.Once
	errCrunPrep error
)

// atExit registers fn to run after all tests, in reverse order.
func atExit(fn func()) {
	cleanupMu.Lock()
	defer cleanupMu.Unlock()
	cleanupFns = append(cleanupFns, fn)
}

func TestMain(m *testing.M) {
	code := m.Run()
	cleanupMu.Lock()
	for i := len(cleanupFns) - 1; i >= 0; i-- {
		cleanupFns[i]()
	}
	cleanupMu.Unlock()
	os.Exit(code)
}

// getSuite builds the shared fixtures on first use; a test that cannot get
// them fails with the reason.
func getSuite(t testing.TB) *suite {
	t.Helper()
	suiteOnce.Do(func() { theSuite, errSuite = newSuite() })
	if errSuite != nil {
		t.Fatalf("e2e setup: %v", errSuite)
	}
	return theSuite
}

func newSuite() (*suite, error) {
	if os.Geteuid() != 0 {
		return nil, errors.New("the e2e tests need root (runc, mknod, dockerd)")
	}
	repo, err := filepath.Abs("../..")
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(filepath.Join(repo, "go.mod")); err != nil {
		return nil, fmt.Errorf("repository root not found from %s: %w", repo, err)
	}
	s := &suite{
		repo:       repo,
		runtimeBin: filepath.Join(repo, "bin", "greenboost-runtime"),
		hookBin:    filepath.Join(repo, "bin", "greenboost-hook"),
	}
	for _, b := range []string{s.runtimeBin, s.hookBin} {
		if fi, err := os.Stat(b); err != nil || fi.Mode()&0o111 == 0 {
			return nil, fmt.Errorf("%s is missing or not executable: run `make build` first", b)
		}
	}
	for _, tool := range []struct {
		name string
		dst  *string
	}{{"runc", &s.runc}, {"crun", &s.crun}, {"gcc", nil}, {"ldd", nil}} {
		p, err := exec.LookPath(tool.name)
		if err != nil {
			return nil, fmt.Errorf("%s not found on PATH: install it (Debian: make deps)", tool.name)
		}
		if tool.dst != nil {
			*tool.dst = p
		}
	}
	if err := checkStaticBusybox("/bin/busybox"); err != nil {
		return nil, err
	}

	s.tmp, err = os.MkdirTemp("", "gb-e2e-")
	if err != nil {
		return nil, err
	}
	atExit(func() { removeAll(s.tmp) })
	if err := os.Chmod(s.tmp, 0o755); err != nil {
		return nil, err
	}

	// Fixture libraries, built by the test from test/fixtures/preload.
	src := filepath.Join(repo, "test", "fixtures", "preload")
	s.fixtureLib = filepath.Join(s.tmp, "lib", "libgreenboost_cuda.so")
	s.imageLib = filepath.Join(s.tmp, "lib", "libimage.so")
	s.evilDir = filepath.Join(s.tmp, "evil-markers")
	s.evilLib = filepath.Join(s.tmp, "evil", "libevil.so")
	for _, d := range []string{filepath.Dir(s.fixtureLib), s.evilDir, filepath.Dir(s.evilLib)} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
	}
	builds := [][]string{
		{"-DGB_TAG=\"greenboost\"", "-DGB_MARKER=\"" + markerPath + "\"", "-o", s.fixtureLib, filepath.Join(src, "fixture.c")},
		{"-DGB_TAG=\"image\"", "-DGB_MARKER=\"" + imageMarkerPath + "\"", "-o", s.imageLib, filepath.Join(src, "fixture.c")},
		{"-DEVIL_DIR=\"" + s.evilDir + "\"", "-o", s.evilLib, filepath.Join(src, "evil.c")},
	}
	for _, b := range builds {
		args := append([]string{"-shared", "-fPIC", "-O2", "-Wall"}, b...)
		if out, err := exec.Command("gcc", args...).CombinedOutput(); err != nil {
			return nil, fmt.Errorf("gcc %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}

	// The stand-in device node: a character major no driver owns.
	s.devMajor, err = freeCharMajor()
	if err != nil {
		return nil, err
	}
	s.devMinor = standInMinor
	s.devPath = filepath.Join(s.tmp, "dev", "greenboost")
	if err := os.MkdirAll(filepath.Dir(s.devPath), 0o755); err != nil {
		return nil, err
	}
	if err := unix.Mknod(s.devPath, unix.S_IFCHR|0o666, int(unix.Mkdev(s.devMajor, s.devMinor))); err != nil {
		return nil, fmt.Errorf("mknod stand-in device %s: %w", s.devPath, err)
	}
	// 0666 as the module's node (past the umask): a container's root in a
	// user namespace is "others" to it.
	if err := os.Chmod(s.devPath, 0o666); err != nil {
		return nil, err
	}

	if err := s.buildBaseRootfs(); err != nil {
		return nil, fmt.Errorf("building the busybox rootfs: %w", err)
	}
	specDir := filepath.Join(s.tmp, "spec-template")
	if err := os.MkdirAll(specDir, 0o755); err != nil {
		return nil, err
	}
	if out, err := exec.Command(s.runc, "spec", "--bundle", specDir).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("runc spec: %v: %s", err, out)
	}
	if s.specTemplate, err = os.ReadFile(filepath.Join(specDir, "config.json")); err != nil {
		return nil, err
	}
	return s, nil
}

// checkStaticBusybox makes sure the busybox used for rootfs is busybox-static.
func checkStaticBusybox(path string) error {
	f, err := elf.Open(path)
	if err != nil {
		return fmt.Errorf("%s: %w (install busybox-static)", path, err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return fmt.Errorf("%s is dynamically linked: install busybox-static", path)
		}
	}
	return nil
}

// isStatic reports whether the ELF file at path has no program interpreter.
func isStatic(path string) (bool, error) {
	f, err := elf.Open(path)
	if err != nil {
		return false, err
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return false, nil
		}
	}
	return true, nil
}

// freeCharMajor picks a character major in the dynamic range that no driver
// has registered in /proc/devices.
func freeCharMajor() (uint32, error) {
	data, err := os.ReadFile("/proc/devices")
	if err != nil {
		return 0, err
	}
	used := map[uint32]bool{}
	inChar := false
	for _, line := range strings.Split(string(data), "\n") {
		switch {
		case strings.HasPrefix(line, "Character devices:"):
			inChar = true
			continue
		case strings.HasPrefix(line, "Block devices:"):
			inChar = false
		}
		if f := strings.Fields(line); inChar && len(f) == 2 {
			if n, err := strconv.ParseUint(f[0], 10, 32); err == nil {
				used[uint32(n)] = true
			}
		}
	}
	for _, m := range []uint32{242, 241, 240, 243, 244, 239, 238, 237, 236, 235, 234} {
		if !used[m] {
			return m, nil
		}
	}
	return 0, errors.New("no unregistered character major in 234..244 for the stand-in device")
}

// buildBaseRootfs makes a busybox-static rootfs plus Debian's dynamic env and
// the libraries it needs (so LD_PRELOAD really loads in the container).
func (s *suite) buildBaseRootfs() error {
	root := filepath.Join(s.tmp, "rootfs-base")
	s.baseRootfs = root
	for _, d := range []string{"bin", "dev", "proc", "sys", "tmp", "etc", "root", "dyn", "opt/image", "usr/lib", "run"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			return err
		}
	}
	if err := os.Chmod(filepath.Join(root, "tmp"), 0o1777); err != nil {
		return err
	}
	if err := copyFile("/bin/busybox", filepath.Join(root, "bin", "busybox")); err != nil {
		return err
	}
	out, err := exec.Command("/bin/busybox", "--list").Output()
	if err != nil {
		return fmt.Errorf("busybox --list: %w", err)
	}
	for _, applet := range strings.Fields(string(out)) {
		if applet == "busybox" {
			continue
		}
		if err := os.Symlink("busybox", filepath.Join(root, "bin", applet)); err != nil && !errors.Is(err, fs.ErrExist) {
			return err
		}
	}
	// The dynamic program and its libraries, at the same paths as on the host.
	envBin, err := exec.LookPath("env")
	if err != nil {
		return err
	}
	if envBin, err = filepath.EvalSymlinks(envBin); err != nil {
		return err
	}
	if static, err := isStatic(envBin); err != nil || static {
		return fmt.Errorf("%s must be a dynamic executable (static=%v, err=%v)", envBin, static, err)
	}
	if err := copyFile(envBin, filepath.Join(root, dynProgram)); err != nil {
		return err
	}
	libs, err := sharedLibs(envBin)
	if err != nil {
		return err
	}
	for _, l := range libs {
		if err := copyFile(l, filepath.Join(root, l)); err != nil {
			return err
		}
	}
	if err := copyFile(s.imageLib, filepath.Join(root, imageLibPath)); err != nil {
		return err
	}
	files := map[string]string{
		"etc/passwd": "root:x:0:0:root:/root:/bin/sh\n",
		"etc/group":  "root:x:0:\n",
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(root, name), []byte(content), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// sharedLibs lists the absolute paths ldd reports for a dynamic executable.
func sharedLibs(bin string) ([]string, error) {
	out, err := exec.Command("ldd", bin).Output()
	if err != nil {
		return nil, fmt.Errorf("ldd %s: %w", bin, err)
	}
	var libs []string
	for _, line := range strings.Split(string(out), "\n") {
		for _, f := range strings.Fields(line) {
			if strings.HasPrefix(f, "/") {
				libs = append(libs, f)
			}
		}
	}
	if len(libs) == 0 {
		return nil, fmt.Errorf("ldd %s listed no libraries", bin)
	}
	return libs, nil
}

// copyFile copies src (following symlinks) to dst, creating dst's parents
// and keeping the mode.
func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	fi, err := in.Stat()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, fi.Mode().Perm())
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// copyTree copies a directory of files, directories and symlinks.
func copyTree(src, dst string) error {
	return filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		target := filepath.Join(dst, rel)
		info, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			if err := os.MkdirAll(target, 0o755); err != nil {
				return err
			}
			return os.Chmod(target, info.Mode().Perm()|info.Mode()&fs.ModeSticky)
		case info.Mode()&fs.ModeSymlink != 0:
			link, err := os.Readlink(path)
			if err != nil {
				return err
			}
			return os.Symlink(link, target)
		default:
			return copyFile(path, target)
		}
	})
}

// removeAll removes a tree after unmounting anything still mounted in it
// (lazily), so a failed test cannot leave mounts behind.
func removeAll(dir string) {
	for _, mp := range mountsUnder(dir) {
		_ = unix.Unmount(mp, unix.MNT_DETACH)
	}
	_ = os.RemoveAll(dir)
}

// mountsUnder lists this mount namespace's mount points at or below dir,
// deepest first.
func mountsUnder(dir string) []string {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	var mps []string
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) < 5 {
			continue
		}
		mp := unescapeMountinfo(f[4])
		if mp == dir || strings.HasPrefix(mp, dir+"/") {
			mps = append(mps, mp)
		}
	}
	for i, j := 0, len(mps)-1; i < j; i, j = i+1, j-1 {
		mps[i], mps[j] = mps[j], mps[i]
	}
	return mps
}

func unescapeMountinfo(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// prepareCrun moves controllers off cgroup2 on a hybrid host, which crun 1.8
// refuses otherwise ("cgroups in hybrid mode not supported, drop all
// controllers from cgroupv2"). The mount stays: once any engine has made a
// cgroup in that hierarchy, unmounting it would leave the controller bound to
// an unmounted v1 hierarchy, which breaks other users of the host.
func prepareCrun(t testing.TB) {
	t.Helper()
	crunOnce.Do(func() {
		data, err := os.ReadFile("/sys/fs/cgroup/unified/cgroup.controllers")
		if err != nil {
			return // not hybrid
		}
		for _, c := range strings.Fields(string(data)) {
			dir := filepath.Join("/sys/fs/cgroup", c)
			if err := os.MkdirAll(dir, 0o755); err != nil {
				errCrunPrep = fmt.Errorf("crun on a hybrid host: %w", err)
				return
			}
			if err := unix.Mount("cgroup", dir, "cgroup", 0, c); err != nil {
				errCrunPrep = fmt.Errorf("crun on a hybrid host: mount the %s controller as cgroup v1 at %s: %w", c, dir, err)
				return
			}
			fmt.Fprintf(os.Stderr, "e2e: moved the %s controller off cgroup2 (mounted at %s) so crun accepts this hybrid host\n", c, dir)
		}
	})
	if errCrunPrep != nil {
		t.Fatal(errCrunPrep)
	}
}

// lowLevel is a runtime greenboost-runtime wraps.
type lowLevel struct {
	name string // runc or crun
	path string
}

func (s *suite) lowLevels() []lowLevel {
	return []lowLevel{{"runc", s.runc}, {"crun", s.crun}}
}

// gbConfig is one test's GreenBoost config file and state directory.
type gbConfig struct {
	path     string
	stateDir string
	logFile  string
}

// writeConfig writes a config for the stand-in device and the fixture
// library; runtime is the low-level runtime's absolute path.
func (s *suite) writeConfig(t testing.TB, dir, runtime string) gbConfig {
	t.Helper()
	c := gbConfig{
		path:     filepath.Join(dir, "config.toml"),
		stateDir: filepath.Join(dir, "state"),
		logFile:  filepath.Join(dir, "runtime.log"),
	}
	content := fmt.Sprintf(`# written by test/e2e
[runtime]
runtimes = [%q]
log-file = %q
log-level = "debug"
[device]
host-path = %q
[library]
host-paths = [%q]
[kmod]
load = "never"
[limits]
enforce = false
[hook]
path = %q
state-dir = %q
`, runtime, c.logFile, s.devPath, s.fixtureLib, s.hookBin, c.stateDir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(c.path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return c
}

// editConfig replaces the first old in the config file at path with new.
func editConfig(t testing.TB, path, old, new string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), old) {
		t.Fatalf("%s has no %q to replace", path, old)
	}
	if err := os.WriteFile(path, []byte(strings.Replace(string(data), old, new, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
}

// generateCDISpec writes the CDI spec of cfg to path with
// `greenboost-ctk cdi generate`, in a clean environment.
func (s *suite) generateCDISpec(t *testing.T, cfg gbConfig, path string) {
	t.Helper()
	gen := exec.Command(filepath.Join(s.repo, "bin", "greenboost-ctk"), "cdi", "generate", "--output", path)
	gen.Env = append(ctrdCleanEnv(), "GREENBOOST_CONFIG="+cfg.path, "PATH=/usr/sbin:/usr/bin:/sbin:/bin")
	if out, err := gen.CombinedOutput(); err != nil {
		t.Fatalf("greenboost-ctk cdi generate --output %s: %v\n%s", path, err, out)
	}
}

func (c gbConfig) recordPath(id string) string {
	return filepath.Join(c.stateDir, "containers", id+".json")
}

// recordDeadline bounds the wait for a poststop hook's effect.
const recordDeadline = 10 * time.Second

// waitRecordGone fails the test unless the hook's record of container id is
// gone within recordDeadline.
func (c gbConfig) waitRecordGone(t *testing.T, id, after string) {
	t.Helper()
	gone := func() bool { _, err := os.Stat(c.recordPath(id)); return errors.Is(err, fs.ErrNotExist) }
	if !waitFor(recordDeadline, gone) {
		t.Errorf("record of %s still there %v after %s (poststop hook not run?)", id, recordDeadline, after)
	}
}

// record is the hook's per-container record (DESIGN.md §4 State).
type record struct {
	ID     string `json:"id"`
	Bundle string `json:"bundle"`
	Pid    int    `json:"pid"`
	Cgroup struct {
		Hierarchy uint32 `json:"hierarchy"`
		ID        uint64 `json:"id"`
		Path      string `json:"path"`
	} `json:"cgroup"`
	Limits struct {
		RAM  uint64 `json:"ram_bytes"`
		NVMe uint64 `json:"nvme_bytes"`
	} `json:"limits"`
	Enforced bool `json:"enforced"`
}

func (c gbConfig) readRecord(id string) (*record, error) {
	data, err := os.ReadFile(c.recordPath(id))
	if err != nil {
		return nil, err
	}
	var r record
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, fmt.Errorf("record %s: %w: %s", id, err, data)
	}
	return &r, nil
}

// bundleOpts describe a test container.
type bundleOpts struct {
	args        []string          // default: the probe script
	env         []string          // added to PATH
	annotations map[string]string //
	rootfs      func(root string) error
}

// probeScript runs in busybox sh inside a container and prints GB:KEY=VALUE
// lines: what the container sees of GreenBoost.
const probeScript = `lib=` + libContainerPath + `
if [ -c /dev/greenboost ]; then echo "GB:DEV=c:$(stat -c '%t:%T' /dev/greenboost)"
elif [ -e /dev/greenboost ]; then echo GB:DEV=notchar; else echo GB:DEV=none; fi
if [ -f $lib ]; then
  echo GB:LIB=present
  if (: >> $lib) 2>/dev/null; then echo GB:LIBWRITE=ok; else echo GB:LIBWRITE=fail; fi
else echo GB:LIB=absent; fi
if [ -e /dev/greenboost ]; then
  if (exec 3<>/dev/greenboost) 2>/tmp/gb-devopen; then echo GB:DEVOPEN=ok; else echo "GB:DEVOPEN=$(cat /tmp/gb-devopen)"; fi
fi
echo "GB:MOUNT=$(grep " $lib " /proc/self/mountinfo | head -n1)"
echo "GB:LD_PRELOAD=${LD_PRELOAD-<unset>}"
echo "GB:ACTIVE=${GREENBOOST_ACTIVE-<unset>}"
` + dynProgram + ` true; echo "GB:DYNRC=$?"
for f in ` + markerPath + ` ` + imageMarkerPath + `; do
  [ -f $f ] && while read -r l; do echo "GB:MARKER=$l"; done < $f
done
echo GB:DONE=1
`

func probeArgs() []string { return []string{"/bin/sh", "-c", probeScript} }

// bundle is one container's OCI bundle.
type bundle struct {
	dir    string
	rootfs string
	spec   []byte // config.json as written by the test
}

// newBundle makes a bundle with a private copy of the base rootfs.
func (s *suite) newBundle(t testing.TB, dir string, o bundleOpts) *bundle {
	t.Helper()
	b := &bundle{dir: dir, rootfs: filepath.Join(dir, "rootfs")}
	if err := copyTree(s.baseRootfs, b.rootfs); err != nil {
		t.Fatalf("copying the rootfs: %v", err)
	}
	if o.rootfs != nil {
		if err := o.rootfs(b.rootfs); err != nil {
			t.Fatalf("customising the rootfs: %v", err)
		}
	}
	var spec specs.Spec
	if err := json.Unmarshal(s.specTemplate, &spec); err != nil {
		t.Fatal(err)
	}
	spec.Process.Terminal = false
	spec.Process.Args = o.args
	if spec.Process.Args == nil {
		spec.Process.Args = probeArgs()
	}
	spec.Process.Env = append([]string{"PATH=/bin:/dyn"}, o.env...)
	spec.Root.Readonly = false
	spec.Hostname = "gb-e2e"
	spec.Annotations = o.annotations
	data, err := json.MarshalIndent(&spec, "", "\t")
	if err != nil {
		t.Fatal(err)
	}
	b.spec = data
	if err := os.WriteFile(filepath.Join(dir, "config.json"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	return b
}

// readSpec parses the bundle's current config.json.
func (b *bundle) readSpec(t testing.TB) *specs.Spec {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(b.dir, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	var spec specs.Spec
	if err := json.Unmarshal(data, &spec); err != nil {
		t.Fatal(err)
	}
	return &spec
}

// writeSpec replaces the bundle's config.json with spec.
func (b *bundle) writeSpec(t testing.TB, spec *specs.Spec) {
	t.Helper()
	data, err := json.MarshalIndent(spec, "", "\t")
	if err != nil {
		t.Fatal(err)
	}
	b.spec = data
	if err := os.WriteFile(filepath.Join(b.dir, "config.json"), data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// container drives one container through a runtime binary (the wrapper or
// the low-level runtime itself) with its own --root state directory.
type container struct {
	s       *suite
	id      string
	b       *bundle
	ll      lowLevel
	bin     string // what create/start/delete run: greenboost-runtime or ll.path
	stateRt string // --root of the low-level runtime
	env     []string
	pid     int
	// createArgs are more flags for create (crun's --config FILE).
	createArgs []string
}

func (s *suite) newContainer(t testing.TB, b *bundle, ll lowLevel, viaWrapper bool, cfg gbConfig) *container {
	t.Helper()
	c := &container{
		s:       s,
		id:      fmt.Sprintf("gb-e2e-%d-%d", os.Getpid(), s.counter.next()),
		b:       b,
		ll:      ll,
		bin:     ll.path,
		stateRt: filepath.Join(s.tmp, "rt-"+ll.name),
		env:     append(os.Environ(), "GREENBOOST_CONFIG="+cfg.path),
	}
	if viaWrapper {
		c.bin = s.runtimeBin
	}
	t.Cleanup(func() {
		// Whatever happened, leave no container behind.
		ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
		defer cancel()
		cmd := exec.CommandContext(ctx, c.ll.path, "--root", c.stateRt, "delete", "--force", c.id)
		_ = cmd.Run()
	})
	return c
}

// run runs the container's runtime binary with --root and args.
func (c *container) run(args ...string) (stdout, stderr string, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, c.bin, append([]string{"--root", c.stateRt}, args...)...)
	cmd.Env = c.env
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err = cmd.Run()
	return o.String(), e.String(), err
}

// create runs `create --bundle B --pid-file F ID` with the container's stdio
// going to files in the bundle (it inherits create's). It returns create's
// stderr as written so far.
func (c *container) create() (string, error) {
	outF, err := os.Create(filepath.Join(c.b.dir, "stdout"))
	if err != nil {
		return "", err
	}
	defer outF.Close()
	errPath := filepath.Join(c.b.dir, "stderr")
	errF, err := os.Create(errPath)
	if err != nil {
		return "", err
	}
	defer errF.Close()
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	pidFile := filepath.Join(c.b.dir, "pid")
	args := append([]string{"--root", c.stateRt, "create", "--bundle", c.b.dir, "--pid-file", pidFile}, c.createArgs...)
	cmd := exec.CommandContext(ctx, c.bin, append(args, c.id)...)
	cmd.Env = c.env
	cmd.Stdin = nil
	cmd.Stdout, cmd.Stderr = outF, errF
	runErr := cmd.Run()
	stderr, _ := os.ReadFile(errPath)
	if runErr != nil {
		return string(stderr), fmt.Errorf("%s create: %w: %s", filepath.Base(c.bin), runErr, stderr)
	}
	data, err := os.ReadFile(pidFile)
	if err != nil {
		return string(stderr), fmt.Errorf("reading the pid file: %w", err)
	}
	if c.pid, err = strconv.Atoi(strings.TrimSpace(string(data))); err != nil {
		return string(stderr), fmt.Errorf("pid file %q: %w", data, err)
	}
	return string(stderr), nil
}

func (c *container) start() error {
	if _, stderr, err := c.run("start", c.id); err != nil {
		return fmt.Errorf("%s start: %w: %s", filepath.Base(c.bin), err, stderr)
	}
	return nil
}

// wait waits for the container's init process to exit.
func (c *container) wait() error {
	return waitExit(c.pid, cmdTimeout)
}

func (c *container) delete() error {
	if _, stderr, err := c.run("delete", c.id); err != nil {
		return fmt.Errorf("%s delete: %w: %s", filepath.Base(c.bin), err, stderr)
	}
	return nil
}

// exists asks the low-level runtime whether the container exists.
func (c *container) exists() bool {
	err := exec.Command(c.ll.path, "--root", c.stateRt, "state", c.id).Run()
	return err == nil
}

// output returns what the container printed (its stdout).
func (c *container) output() string {
	data, _ := os.ReadFile(filepath.Join(c.b.dir, "stdout"))
	return string(data)
}

// waitExit polls /proc until pid is gone or a zombie.
func waitExit(pid int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	path := fmt.Sprintf("/proc/%d/stat", pid)
	for {
		data, err := os.ReadFile(path)
		if err != nil {
			return nil
		}
		if i := bytes.LastIndexByte(data, ')'); i > 0 && i+2 < len(data) && data[i+2] == 'Z' {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("process %d still running after %v", pid, timeout)
		}
		time.Sleep(500 * time.Microsecond)
	}
}

// probe is what the probe script printed.
type probe map[string][]string

func parseProbe(out string) probe {
	p := probe{}
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		line, ok := strings.CutPrefix(sc.Text(), "GB:")
		if !ok {
			continue
		}
		k, v, _ := strings.Cut(line, "=")
		p[k] = append(p[k], v)
	}
	return p
}

func (p probe) get(k string) string {
	if v := p[k]; len(v) > 0 {
		return v[len(v)-1]
	}
	return "<missing>"
}

// markers returns the fixture markers with the given tag as key=value maps.
func (p probe) markers(tag string) []map[string]string {
	var ms []map[string]string
	for _, line := range p["MARKER"] {
		m := map[string]string{}
		for _, f := range strings.Fields(line) {
			k, v, _ := strings.Cut(f, "=")
			m[k] = v
		}
		if m["tag"] == tag {
			ms = append(ms, m)
		}
	}
	return ms
}

// devString is how the probe prints a char device: c:<hex major>:<hex minor>.
func devString(major, minor uint32) string {
	return fmt.Sprintf("c:%x:%x", major, minor)
}

// checkGreenBoostProbe asserts everything a container given GreenBoost must
// see; imagePreload is the image's own LD_PRELOAD ("" for none).
func (s *suite) checkGreenBoostProbe(t *testing.T, out string, imagePreload string) {
	t.Helper()
	p := parseProbe(out)
	if p.get("DONE") != "1" {
		t.Fatalf("the probe did not finish; container output:\n%s", out)
	}
	if got, want := p.get("DEV"), devString(s.devMajor, s.devMinor); got != want {
		t.Errorf("/dev/greenboost in the container: got %s, want a char device %d:%d (%s)", got, s.devMajor, s.devMinor, want)
	}
	// The shell's open of the node: ENXIO ("No such device or address")
	// means the device cgroup allowed it; EPERM means the rule is missing.
	if got := p.get("DEVOPEN"); !strings.Contains(got, "No such device or address") {
		t.Errorf("opening /dev/greenboost read-write in the container: got %q, want ENXIO (allowed by the device cgroup; the stand-in has no driver)", got)
	}
	if got := p.get("LIB"); got != "present" {
		t.Errorf("library %s in the container: %s", libContainerPath, got)
	}
	if got := p.get("LIBWRITE"); got != "fail" {
		t.Errorf("opening %s for writing in the container: got %s, want it to fail (read-only mount)", libContainerPath, got)
	}
	mount := p.get("MOUNT")
	if f := strings.Fields(mount); len(f) < 6 {
		t.Errorf("no mount at %s in the container's mountinfo: %q", libContainerPath, mount)
	} else {
		opts := map[string]bool{}
		for _, o := range strings.Split(f[5], ",") {
			opts[o] = true
		}
		for _, want := range []string{"ro", "nosuid", "nodev"} {
			if !opts[want] {
				t.Errorf("library mount options %q lack %s (mountinfo: %s)", f[5], want, mount)
			}
		}
	}
	wantPreload := libContainerPath
	if imagePreload != "" {
		wantPreload += ":" + imagePreload
	}
	if got := p.get("LD_PRELOAD"); got != wantPreload {
		t.Errorf("LD_PRELOAD in the container: got %q, want %q", got, wantPreload)
	}
	if got := p.get("ACTIVE"); got != "1" {
		t.Errorf("GREENBOOST_ACTIVE in the container: got %q, want 1", got)
	}
	if got := p.get("DYNRC"); got != "0" {
		t.Errorf("%s true exited %s in the container", dynProgram, got)
	}
	ms := p.markers("greenboost")
	if len(ms) == 0 {
		t.Errorf("the fixture preload library did not run in the container (no marker in %s); output:\n%s", markerPath, out)
	}
	for _, m := range ms {
		if m["active"] != "1" || m["exe"] != dynProgram {
			t.Errorf("fixture marker: got %v, want active=1 exe=%s", m, dynProgram)
		}
		// ENXIO: the device cgroup let the open through to a major without
		// a driver; EPERM would mean the rule for major:minor is missing.
		if m["dev_errno"] != strconv.Itoa(int(syscall.ENXIO)) {
			t.Errorf("opening /dev/greenboost in the container: errno %s, want %d (ENXIO: allowed by the device cgroup, no driver)", m["dev_errno"], syscall.ENXIO)
		}
	}
	if imagePreload != "" {
		if len(p.markers("image")) == 0 {
			t.Errorf("the image's own preload library %s did not run in the container", imagePreload)
		}
	}
}

// checkUntouchedProbe asserts a container without GreenBoost sees none of it.
func checkUntouchedProbe(t *testing.T, out string) {
	t.Helper()
	p := parseProbe(out)
	if p.get("DONE") != "1" {
		t.Fatalf("the probe did not finish; container output:\n%s", out)
	}
	checks := map[string]string{"DEV": "none", "LD_PRELOAD": "<unset>", "ACTIVE": "<unset>", "MOUNT": "", "DYNRC": "0"}
	for k, want := range checks {
		if got := p.get(k); got != want {
			t.Errorf("%s in a container without GreenBoost: got %q, want %q", k, got, want)
		}
	}
	if ms := p.markers("greenboost"); len(ms) != 0 {
		t.Errorf("the fixture preload library ran in a container without GreenBoost: %v", ms)
	}
}

// evilMarkers lists what the evil library left in the host's marker dir.
func (s *suite) evilMarkers(t testing.TB) []string {
	t.Helper()
	ents, err := os.ReadDir(s.evilDir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		data, _ := os.ReadFile(filepath.Join(s.evilDir, e.Name()))
		out = append(out, e.Name()+": "+strings.TrimSpace(string(data)))
	}
	return out
}

func clearDir(t testing.TB, dir string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			t.Fatal(err)
		}
	}
}

// testDir returns a fresh directory for one (sub)test under the suite's tmp.
func (s *suite) testDir(t testing.TB) string {
	t.Helper()
	name := strings.NewReplacer("/", "_", " ", "_").Replace(t.Name())
	dir := filepath.Join(s.tmp, fmt.Sprintf("%s-%d", name, s.counter.next()))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// waitFor polls cond every 50ms until it holds or timeout passes.
func waitFor(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// runTool runs an engine's CLI with env, bounded in time, and returns its
// stdout and stderr apart.
func runTool(env []string, name string, args ...string) (stdout, stderr string, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*cmdTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = env
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err = cmd.Run()
	return o.String(), e.String(), err
}

// records lists the hook records in the config's state dir.
func (c gbConfig) records(t *testing.T) []string {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join(c.stateDir, "containers"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

// livePids lists the processes other than this one, zombies left out, whose
// arguments match.
func livePids(match func(args []string) bool) []int {
	ents, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() || isZombie(pid) {
			continue
		}
		if match(procArgs(pid)) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// pidsMentioning lists live processes whose command line contains s.
func pidsMentioning(s string) []int {
	return livePids(func(args []string) bool { return strings.Contains(strings.Join(args, " "), s) })
}

func procArgs(pid int) []string {
	data, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	return strings.Split(strings.TrimSuffix(string(data), "\x00"), "\x00")
}

func cmdline(pid int) string { return strings.Join(procArgs(pid), " ") }

func isZombie(pid int) bool {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	i := bytes.LastIndexByte(data, ')')
	return i > 0 && i+2 < len(data) && data[i+2] == 'Z'
}
