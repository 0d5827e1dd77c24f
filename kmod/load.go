package kmod

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// ModuleName is the kernel module's name (/sys/module/greenboost).
const ModuleName = "greenboost"

// SysModule is where the loaded module shows up (a variable for tests).
var SysModule = "/sys/module/" + ModuleName

// Loaded reports whether the module is in the kernel.
func Loaded() bool {
	_, err := os.Stat(SysModule)
	return err == nil
}

// Load modes of LoadOptions.Load (config key [kmod] load).
const (
	LoadAuto  = "auto"  // insert the module when it is absent
	LoadNever = "never" // never insert; fail when it is absent
)

// LoadOptions say how Ensure finds and loads the module.
type LoadOptions struct {
	Load       string // LoadAuto (default) or LoadNever
	Module     string // a module name searched under /lib/modules/$(uname -r), or a path to a .ko[.xz|.zst|.gz]; default "greenboost"
	Params     string // module parameters, e.g. "pool_mb=16384"
	DevicePath string // the device node to make sure of; default DefaultDevicePath
}

var (
	// ErrNotLoaded: the module is absent and LoadOptions.Load is "never".
	ErrNotLoaded = errors.New("greenboost kernel module is not loaded")
	// ErrModuleNotFound: no module file where Ensure looked.
	ErrModuleNotFound = errors.New("greenboost kernel module not found")
)

// sysfsDevAttr is the class device attribute holding the node's "MAJ:MIN".
const sysfsDevAttr = "class/greenboost/greenboost/dev"

// Ensure makes sure the greenboost module is loaded and its device node
// exists. When /sys/module/greenboost exists it only checks (and if need be
// creates) the device node. Otherwise, unless opts.Load is "never", it finds
// the module file, loads it with finit_module (compressed modules through
// the kernel's own decompressor, gzip also in Go), tolerates a concurrent
// loader, waits up to two seconds for the device node and creates it from
// /sys/class/greenboost/greenboost/dev when no udev did. Errors name the
// cause and the fix; the errno stays reachable with errors.Is.
func Ensure(opts LoadOptions) error {
	return newLoader().ensure(opts)
}

// loader holds everything Ensure touches, so tests can point it at a fake
// tree and fake system calls.
type loader struct {
	sysDir     string // "/sys"
	procDir    string // "/proc"
	modulesDir string // "/lib/modules"
	udevCtl    string // "/run/udev/control": exists while udevd runs

	release func() (string, error)
	finit   func(fd int, params string, flags int) error
	initMod func(image []byte, params string) error
	mknod   func(path string, mode uint32, dev int) error

	nodeWait  time.Duration // how long to wait for the device node
	udevGrace time.Duration // how long to leave node creation to udev
	poll      time.Duration
}

func newLoader() *loader {
	return &loader{
		sysDir:     "/sys",
		procDir:    "/proc",
		modulesDir: "/lib/modules",
		udevCtl:    "/run/udev/control",
		release:    kernelRelease,
		finit:      unix.FinitModule,
		initMod:    unix.InitModule,
		mknod:      mknodChmod,
		nodeWait:   2 * time.Second,
		udevGrace:  500 * time.Millisecond,
		poll:       10 * time.Millisecond,
	}
}

// mknodChmod is mknod with the permission bits set exactly (no umask).
func mknodChmod(path string, mode uint32, dev int) error {
	if err := unix.Mknod(path, mode, dev); err != nil {
		return err
	}
	return unix.Chmod(path, mode&0o7777)
}

func kernelRelease() (string, error) {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return "", fmt.Errorf("uname: %w", err)
	}
	return unix.ByteSliceToString(u.Release[:]), nil
}

func (l *loader) ensure(opts LoadOptions) error {
	if opts.Module == "" {
		opts.Module = ModuleName
	}
	if opts.DevicePath == "" {
		opts.DevicePath = DefaultDevicePath
	}
	switch opts.Load {
	case "", LoadAuto, LoadNever:
	default:
		return fmt.Errorf("kmod load mode %q: want %q or %q", opts.Load, LoadAuto, LoadNever)
	}
	if _, err := os.Stat(filepath.Join(l.sysDir, "module", ModuleName)); err == nil {
		return l.ensureNode(opts.DevicePath)
	}
	if opts.Load == LoadNever {
		return fmt.Errorf("%w and [kmod] load is %q: load it first (modprobe %s, or insmod PATH/%s.ko), or set load = %q",
			ErrNotLoaded, LoadNever, ModuleName, ModuleName, LoadAuto)
	}
	release, err := l.release()
	if err != nil {
		return err
	}
	path, err := findModule(opts.Module, l.modulesDir, release)
	if err != nil {
		return err
	}
	if err := l.load(path, opts.Params, release); err != nil {
		return err
	}
	return l.ensureNode(opts.DevicePath)
}

// Module file compression, from the magic bytes.
const (
	compNone = ""
	compXZ   = "xz"
	compZstd = "zstd"
	compGzip = "gzip"
)

func compression(head []byte) string {
	switch {
	case bytes.HasPrefix(head, []byte{0xfd, '7', 'z', 'X', 'Z', 0}):
		return compXZ
	case bytes.HasPrefix(head, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		return compZstd
	case bytes.HasPrefix(head, []byte{0x1f, 0x8b}):
		return compGzip
	}
	return compNone
}

// load inserts the module file at path.
func (l *loader) load(path, params, release string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("open kernel module %s: %w", path, err)
	}
	defer f.Close()
	head := make([]byte, 6)
	n, _ := io.ReadFull(f, head)
	comp := compression(head[:n])

	var image []byte // the uncompressed module, when we have it in memory
	if comp == compNone {
		err = l.finit(int(f.Fd()), params, 0)
	} else {
		err = l.finit(int(f.Fd()), params, unix.MODULE_INIT_COMPRESSED_FILE)
		// A kernel built to decompress another format answers a gzip file
		// with EINVAL too; a real EINVAL comes back from the image.
		if noKernelDecompress(err, release) || comp == compGzip && errors.Is(err, unix.EINVAL) {
			if comp != compGzip {
				return fmt.Errorf("load %s: the module is %s-compressed and kernel %s cannot decompress modules (no CONFIG_MODULE_DECOMPRESS): "+
					"install an uncompressed %s.ko (e.g. %s -d %s), or set [kmod] module to an uncompressed .ko: %w",
					path, comp, release, ModuleName, map[string]string{compXZ: "xz", compZstd: "zstd"}[comp], path, err)
			}
			image, err = gunzipFile(f)
			if err != nil {
				return fmt.Errorf("load %s: %w", path, err)
			}
			err = l.initMod(image, params)
		}
	}
	if err == nil || errors.Is(err, unix.EEXIST) {
		return nil // loaded, by us or by a concurrent loader
	}
	env := l.loadEnv(release)
	if errors.Is(err, unix.ENOEXEC) {
		if image == nil && comp == compNone {
			image, _ = os.ReadFile(path)
		}
		env.vermagic = vermagic(image)
	}
	return explainLoadError(path, params, err, env)
}

// noKernelDecompress tells whether finit_module's answer to
// MODULE_INIT_COMPRESSED_FILE means the kernel cannot decompress modules:
// EOPNOTSUPP without CONFIG_MODULE_DECOMPRESS, EINVAL before 5.17.
func noKernelDecompress(err error, release string) bool {
	if errors.Is(err, unix.EOPNOTSUPP) {
		return true
	}
	if !errors.Is(err, unix.EINVAL) {
		return false
	}
	major, minor, ok := parseRelease(release)
	return !ok || major < 5 || (major == 5 && minor < 17)
}

func parseRelease(release string) (major, minor int, ok bool) {
	parts := strings.SplitN(release, ".", 3)
	if len(parts) < 2 {
		return 0, 0, false
	}
	major, err1 := strconv.Atoi(parts[0])
	minorStr := parts[1]
	if i := strings.IndexFunc(minorStr, func(r rune) bool { return r < '0' || r > '9' }); i >= 0 {
		minorStr = minorStr[:i]
	}
	minor, err2 := strconv.Atoi(minorStr)
	return major, minor, err1 == nil && err2 == nil
}

func gunzipFile(f *os.File) ([]byte, error) {
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	zr, err := gzip.NewReader(f)
	if err != nil {
		return nil, fmt.Errorf("gunzip: %w", err)
	}
	defer zr.Close()
	image, err := io.ReadAll(io.LimitReader(zr, 512<<20))
	if err != nil {
		return nil, fmt.Errorf("gunzip: %w", err)
	}
	return image, nil
}

// vermagic returns the "vermagic=" string of a module image's .modinfo.
func vermagic(image []byte) string {
	i := bytes.Index(image, []byte("vermagic="))
	if i < 0 {
		return ""
	}
	rest := image[i+len("vermagic="):]
	if j := bytes.IndexByte(rest, 0); j >= 0 {
		rest = rest[:j]
	}
	if len(rest) > 200 {
		rest = rest[:200]
	}
	return string(rest)
}

// loadEnv is what explainLoadError needs to know about the system.
type loadEnv struct {
	release         string
	modulesDisabled bool
	lockdown        string // the active lockdown mode, "" when unknown
	capSysModule    bool   // CAP_SYS_MODULE is in the effective set
	inUserNS        bool   // not in the initial user namespace
	vermagic        string // of the module file, when known
}

func (l *loader) loadEnv(release string) loadEnv {
	env := loadEnv{release: release, capSysModule: true}
	if b, err := os.ReadFile(filepath.Join(l.procDir, "sys/kernel/modules_disabled")); err == nil {
		env.modulesDisabled = strings.TrimSpace(string(b)) == "1"
	}
	if b, err := os.ReadFile(filepath.Join(l.sysDir, "kernel/security/lockdown")); err == nil {
		env.lockdown = parseLockdown(string(b))
	}
	if b, err := os.ReadFile(filepath.Join(l.procDir, "self/status")); err == nil {
		if capEff, ok := parseCapEff(string(b)); ok {
			env.capSysModule = capEff&(1<<unix.CAP_SYS_MODULE) != 0
		}
	}
	if b, err := os.ReadFile(filepath.Join(l.procDir, "self/uid_map")); err == nil {
		env.inUserNS = !isInitialUIDMap(string(b))
	}
	return env
}

// parseLockdown returns the bracketed mode of
// /sys/kernel/security/lockdown, e.g. "none [integrity] confidentiality".
func parseLockdown(s string) string {
	i := strings.IndexByte(s, '[')
	j := strings.IndexByte(s, ']')
	if i < 0 || j < i {
		return ""
	}
	return s[i+1 : j]
}

func parseCapEff(status string) (uint64, bool) {
	for _, line := range strings.Split(status, "\n") {
		if v, ok := strings.CutPrefix(line, "CapEff:"); ok {
			n, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			return n, err == nil
		}
	}
	return 0, false
}

// isInitialUIDMap tells whether /proc/self/uid_map is the initial user
// namespace's identity map of all ids.
func isInitialUIDMap(s string) bool {
	f := strings.Fields(s)
	return len(f) == 3 && f[0] == "0" && f[1] == "0" && f[2] == "4294967295"
}

// explainLoadError turns finit_module's errno into an error naming the cause
// and the fix.
func explainLoadError(path, params string, err error, env loadEnv) error {
	rebuild := fmt.Sprintf("rebuild it for the running kernel: make module KDIR=/lib/modules/%s/build (or let DKMS build it: dkms autoinstall)", env.release)
	switch {
	case errors.Is(err, unix.EPERM) && env.modulesDisabled:
		return fmt.Errorf("cannot load %s: module loading is disabled (/proc/sys/kernel/modules_disabled = 1) until the next boot: "+
			"have greenboost loaded at boot (/etc/modules-load.d/greenboost.conf) and reboot: %w", path, err)
	case errors.Is(err, unix.EPERM) && (!env.capSysModule || env.inUserNS):
		return fmt.Errorf("cannot load %s: loading a kernel module needs CAP_SYS_MODULE in the initial user namespace: "+
			"run this as root on the host, or load the module beforehand (modprobe %s) and set [kmod] load = %q: %w",
			path, ModuleName, LoadNever, err)
	case errors.Is(err, unix.EPERM) && env.lockdown != "" && env.lockdown != "none":
		return fmt.Errorf("cannot load %s: the kernel is locked down (lockdown=%s, usually because of Secure Boot) and refuses unsigned modules: "+
			"sign the module with a key enrolled in the MOK list (DKMS signs it: dkms install, then mokutil --import the DKMS key and reboot), or disable Secure Boot: %w",
			path, env.lockdown, err)
	case errors.Is(err, unix.EKEYREJECTED) || errors.Is(err, unix.ENOKEY) || errors.Is(err, unix.EBADMSG):
		return fmt.Errorf("cannot load %s: the kernel requires signed modules (Secure Boot or module.sig_enforce) and rejected its signature: "+
			"sign the module with a key enrolled in the MOK list (DKMS signs it: dkms install, then mokutil --import the DKMS key and reboot): %w", path, err)
	case errors.Is(err, unix.EPERM):
		return fmt.Errorf("cannot load %s: permission denied by the kernel (a security module or module-loading policy; see dmesg): %w", path, err)
	case errors.Is(err, unix.ENOEXEC):
		built := "another kernel"
		if env.vermagic != "" {
			built = fmt.Sprintf("%q", env.vermagic)
		}
		return fmt.Errorf("cannot load %s: wrong kernel: it was built for %s, not the running %s (vermagic mismatch, exec format error): %s: %w",
			path, built, env.release, rebuild, err)
	case errors.Is(err, unix.ENOENT):
		return fmt.Errorf("cannot load %s: it needs kernel symbols the running %s does not export (unknown symbols, see dmesg): %s: %w",
			path, env.release, rebuild, err)
	case errors.Is(err, unix.EINVAL):
		return fmt.Errorf("cannot load %s: the kernel rejected the module or its parameters %q (see dmesg): check [kmod] params, or %s: %w",
			path, params, rebuild, err)
	}
	return fmt.Errorf("cannot load %s: %w", path, err)
}

// moduleSuffixes are the file names a module may have, in order of preference.
var moduleSuffixes = []string{".ko", ".ko.zst", ".ko.xz", ".ko.gz"}

func hasModuleSuffix(name string) bool {
	for _, s := range moduleSuffixes {
		if strings.HasSuffix(name, s) {
			return true
		}
	}
	return false
}

// findModule resolves LoadOptions.Module: a path (it has a '/' or a module
// suffix) is used as is; a name is searched in the whole tree
// modulesDir/release, preferring updates/ and extra/ (where DKMS and
// out-of-tree modules go), then uncompressed files.
func findModule(module, modulesDir, release string) (string, error) {
	if strings.ContainsRune(module, '/') || hasModuleSuffix(module) {
		st, err := os.Stat(module)
		if err == nil && st.Mode().IsRegular() {
			return module, nil
		}
		reason := "not a regular file"
		if err != nil {
			reason = err.Error()
		}
		return "", fmt.Errorf("%w: [kmod] module is %s (%s): build it with `make module` (kmod/module/greenboost.ko) or install the DKMS package, or set [kmod] module to the path of greenboost.ko",
			ErrModuleNotFound, module, reason)
	}
	name := strings.ReplaceAll(module, "-", "_")
	root := filepath.Join(modulesDir, release)
	type match struct {
		path      string
		dirRank   int
		suffixIdx int
	}
	var matches []match
	walkErr := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if p == root {
				return err
			}
			return nil // unreadable subtree: keep looking elsewhere
		}
		if d.IsDir() {
			if p != root && (d.Name() == "build" || d.Name() == "source") {
				return fs.SkipDir // kernel headers, not modules
			}
			return nil
		}
		base := strings.ReplaceAll(d.Name(), "-", "_")
		for i, s := range moduleSuffixes {
			if base == name+s {
				if d.Type()&fs.ModeSymlink != 0 {
					if st, err := os.Stat(p); err != nil || !st.Mode().IsRegular() {
						return nil
					}
				}
				rel, _ := filepath.Rel(root, p)
				matches = append(matches, match{p, dirRank(rel), i})
			}
		}
		return nil
	})
	if len(matches) > 0 {
		sort.Slice(matches, func(i, j int) bool {
			a, b := matches[i], matches[j]
			if a.dirRank != b.dirRank {
				return a.dirRank < b.dirRank
			}
			if a.suffixIdx != b.suffixIdx {
				return a.suffixIdx < b.suffixIdx
			}
			return a.path < b.path
		})
		return matches[0].path, nil
	}
	where := fmt.Sprintf("looked for %s.ko[.zst|.xz|.gz] in %s", module, root)
	if walkErr != nil {
		where += fmt.Sprintf(" (%v)", walkErr)
	}
	return "", fmt.Errorf("%w: %s: build and install it (make module && make -C kmod/module modules_install), or install the deb/rpm package, whose DKMS source builds it for each kernel (dkms status %s), or set [kmod] module to the path of %s.ko",
		ErrModuleNotFound, where, ModuleName, ModuleName)
}

// dirRank orders module locations the way depmod's default search does:
// updates first, then extra, then the rest.
func dirRank(rel string) int {
	first, _, _ := strings.Cut(filepath.ToSlash(rel), "/")
	switch first {
	case "updates":
		return 0
	case "extra":
		return 1
	}
	return 2
}

// parseDevNumber parses a sysfs "dev" attribute, "MAJ:MIN\n".
func parseDevNumber(s string) (major, minor uint32, err error) {
	a, b, ok := strings.Cut(strings.TrimSpace(s), ":")
	if !ok {
		return 0, 0, fmt.Errorf("device number %q: want MAJ:MIN", strings.TrimSpace(s))
	}
	ma, err1 := strconv.ParseUint(a, 10, 32)
	mi, err2 := strconv.ParseUint(b, 10, 32)
	if err1 != nil || err2 != nil {
		return 0, 0, fmt.Errorf("device number %q: want MAJ:MIN", strings.TrimSpace(s))
	}
	return uint32(ma), uint32(mi), nil
}

// DeviceNumber returns the module's device number from
// /sys/class/greenboost/greenboost/dev.
func DeviceNumber() (major, minor uint32, err error) {
	return newLoader().deviceNumber()
}

func (l *loader) deviceNumber() (uint32, uint32, error) {
	attr := filepath.Join(l.sysDir, sysfsDevAttr)
	b, err := os.ReadFile(attr)
	if err != nil {
		return 0, 0, fmt.Errorf("greenboost device number: %w", err)
	}
	ma, mi, err := parseDevNumber(string(b))
	if err != nil {
		return 0, 0, fmt.Errorf("greenboost device number from %s: %w", attr, err)
	}
	return ma, mi, nil
}

// ensureNode waits for the device node at path to be the module's character
// device, and creates it (mode 0666, as the module's devnode
// callback asks of devtmpfs and udev) when udev does not within udevGrace (or
// runs not at all). A stale node with another device number is replaced.
func (l *loader) ensureNode(path string) error {
	start := time.Now()
	udev := fileExists(l.udevCtl)
	var lastErr error
	for {
		elapsed := time.Since(start)
		ma, mi, err := l.deviceNumber()
		if err == nil {
			want := unix.Mkdev(ma, mi)
			var st unix.Stat_t
			serr := unix.Stat(path, &st)
			switch {
			case serr == nil && st.Mode&unix.S_IFMT == unix.S_IFCHR && st.Rdev == want:
				return nil
			case !udev || elapsed >= l.udevGrace:
				if serr == nil {
					// a stale node (an earlier load with another number) or not a device
					if rerr := os.Remove(path); rerr != nil && !errors.Is(rerr, fs.ErrNotExist) {
						return fmt.Errorf("replace stale device node %s: %w", path, rerr)
					}
				}
				if merr := os.MkdirAll(filepath.Dir(path), 0o755); merr != nil {
					return fmt.Errorf("create device node %s: %w", path, merr)
				}
				merr := l.mknod(path, unix.S_IFCHR|0o666, int(want))
				if merr == nil {
					return nil
				}
				if !errors.Is(merr, unix.EEXIST) { // EEXIST: udev won the race; check again
					return fmt.Errorf("create device node %s (%d:%d): %w", path, ma, mi, merr)
				}
			}
			lastErr = fmt.Errorf("device node %s is not character device %d:%d", path, ma, mi)
		} else {
			lastErr = err
		}
		if elapsed >= l.nodeWait {
			return fmt.Errorf("greenboost module is loaded but its device node did not appear within %v (is it a GreenBoost Container Toolkit module? it must create /sys/%s): %w",
				l.nodeWait, sysfsDevAttr, lastErr)
		}
		time.Sleep(l.poll)
	}
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
