//go:build e2e

package e2e

// Helpers of the containerd / nerdctl tests (containerd_test.go): a private
// containerd 1.6 (Debian's) per test, a busybox image built from the suite's
// rootfs and imported from a docker-archive tarball, and nerdctl v1.7.7 built
// from the Go module proxy once and cached.

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pelletier/go-toml/v2"
)

const (
	ctrdRuntimeType = "io.containerd.greenboost.v2"
	ctrdShimBinary  = "containerd-shim-greenboost-v2"
	ctrdNamespace   = "gbe2e"
	// ctrdImage is what `ctr images import` names the docker-archive's
	// RepoTag "gb-busybox:e2e"; nerdctl accepts the short form.
	ctrdImage      = "docker.io/library/gb-busybox:e2e"
	ctrdImageShort = "gb-busybox:e2e"
	// ctrdPauseImage is CRI's sandbox_image in the config
	// startContainerdRelease writes.
	ctrdPauseImage      = "docker.io/library/gb-pause:e2e"
	ctrdPauseImageShort = "gb-pause:e2e"

	nerdctlVersion = "v1.7.7"
	// testBuildCache keeps what the tests build from the Go module proxy
	// (nerdctl, runtime-tools' validation suite) between runs: the builds
	// take minutes on a small machine.
	testBuildCache = "/var/cache/greenboost-test"
)

// ctrdWaitScript is appended to the probe: the container then waits until
// the test creates /gbctl/stop, so the test can look at the record while
// the container runs.
const ctrdWaitScript = `
i=0; while [ ! -e /gbctl/stop ] && [ $i -lt 1200 ]; do sleep 0.1; i=$((i+1)); done
echo GB:STOPPED=1
`

// ctrd is one containerd daemon started by a test.
type ctrd struct {
	s       *suite
	rel     ctrdRelease
	dir     string
	sock    string
	logPath string
	cfg     gbConfig
	env     []string // PATH with the repo's bin/ first, GREENBOOST_CONFIG
	cmd     *exec.Cmd
	exited  chan struct{}

	mu  sync.Mutex
	ids []string // containers to force-remove at the end
}

// ctrdRequire checks the binaries the containerd tests need.
func ctrdRequire(t *testing.T, s *suite, rel ctrdRelease) string {
	t.Helper()
	for _, tool := range []string{rel.containerd, rel.ctr} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s not found: Debian's containerd (1.6) comes from its package (test/deps.sh installs it), 1.7 and 2.x from proxyBinaries", tool)
		}
	}
	shimBin := filepath.Join(s.repo, "bin", ctrdShimBinary)
	if fi, err := os.Stat(shimBin); err != nil || fi.Mode()&0o111 == 0 {
		t.Fatalf("%s is missing or not executable: run `make build` first", shimBin)
	}
	return shimBin
}

// ctrdRelease is a containerd the tests start: Debian's 1.6 from PATH, or a
// 1.7 or 2.x built from the Go module proxy (containerd17, containerd2).
type ctrdRelease struct {
	containerd, ctr string
	// binDir, when set, comes before the system's directories on
	// containerd's PATH: it holds the release's own runc shim.
	binDir string
	// baseConfig returns the config.toml, before `greenboost-ctk runtime
	// configure`, of a daemon with its root and state under dir, serving
	// gRPC on sock.
	baseConfig func(t *testing.T, dir, sock string) string
	// criPlugin holds CRI's runtimes in that config.
	criPlugin string
}

// debianContainerd is Debian 12's containerd 1.6, config version 2.
var debianContainerd = ctrdRelease{
	containerd: "containerd",
	ctr:        "ctr",
	criPlugin:  "io.containerd.grpc.v1.cri",
	baseConfig: func(t *testing.T, dir, sock string) string {
		return fmt.Sprintf(`# written by test/e2e (containerd_helpers_test.go)
version = 2
root = %q
state = %q
[grpc]
  address = %q
[ttrpc]
  address = %q
[debug]
  level = "debug"
[plugins."io.containerd.internal.v1.opt"]
  path = %q
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = %q
  # A pod sandbox asks oom_score_adj -998, which needs CAP_SYS_RESOURCE that
  # root lacks on these machines: keep it at containerd's own.
  restrict_oom_score_adj = true
`, filepath.Join(dir, "root"), filepath.Join(dir, "state"), sock, sock+".ttrpc", filepath.Join(dir, "opt"), ctrdPauseImage)
	},
}

// containerd17Version is the containerd 1.7 the tests build: the release
// line whose shim library the shim is built on, and what many nodes still
// run.
const containerd17Version = "v1.7.35"

// containerd17 returns containerd 1.7, built from the Go module proxy on
// first use with its own runc shim. It reads the same config (version 2) as
// Debian's 1.6.
func containerd17(t *testing.T) ctrdRelease {
	t.Helper()
	dir := proxyBinaries(t, proxyModule{name: "containerd", path: "github.com/containerd/containerd", version: containerd17Version},
		"cmd/containerd", "cmd/ctr", "cmd/containerd-shim-runc-v2")
	rel := debianContainerd
	rel.binDir = dir
	rel.containerd = filepath.Join(dir, "containerd")
	rel.ctr = filepath.Join(dir, "ctr")
	return rel
}

// ctrdReleases are the containerd releases the tests run on, each readied
// inside its subtest (1.7 and 2.x are built on first use, so a failing
// build fails only its own subtests).
var ctrdReleases = []struct {
	name  string
	ready func(*testing.T) ctrdRelease
	// criCDI: CRI injects the CDI devices a container asks for
	// (enable_cdi); containerd 1.6 has no CDI.
	criCDI bool
}{
	{"containerd-1.6", func(*testing.T) ctrdRelease { return debianContainerd }, false},
	{"containerd-" + strings.TrimPrefix(containerd17Version, "v"), containerd17, true},
	{"containerd-" + strings.TrimPrefix(containerd2Version, "v"), containerd2, true},
}

// forEachContainerd runs test as a subtest on each containerd release.
func forEachContainerd(t *testing.T, test func(t *testing.T, rel ctrdRelease)) {
	onContainerds(t, false, test)
}

// forEachCRICDIContainerd runs test as a subtest on each release whose CRI
// injects CDI devices.
func forEachCRICDIContainerd(t *testing.T, test func(t *testing.T, rel ctrdRelease)) {
	onContainerds(t, true, test)
}

func onContainerds(t *testing.T, criCDIOnly bool, test func(t *testing.T, rel ctrdRelease)) {
	for _, r := range ctrdReleases {
		if criCDIOnly && !r.criCDI {
			continue
		}
		t.Run(r.name, func(t *testing.T) { test(t, r.ready(t)) })
	}
}

// startContainerdRelease starts containerd rel with its own root, state and
// socket under a test directory and a config whose runtime entries
// `greenboost-ctk runtime configure --runtime containerd` added. Its
// environment carries GREENBOOST_CONFIG (cfg) and a PATH where bin/ comes
// first, so containerd finds the shim and the shim finds greenboost-runtime
// next to itself, then the release's binDir. It is stopped by PID when the
// test ends.
func startContainerdRelease(t *testing.T, s *suite, cfg gbConfig, rel ctrdRelease) *ctrd {
	t.Helper()
	ctrdRequire(t, s, rel)
	dir := s.testDir(t)
	d := &ctrd{
		s:       s,
		rel:     rel,
		dir:     dir,
		sock:    filepath.Join(dir, "c.sock"),
		logPath: filepath.Join(dir, "containerd.log"),
		cfg:     cfg,
		exited:  make(chan struct{}),
	}
	path := filepath.Join(s.repo, "bin") + ":"
	if rel.binDir != "" {
		path += rel.binDir + ":"
	}
	d.env = append(ctrdCleanEnv(),
		"PATH="+path+"/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"GREENBOOST_CONFIG="+cfg.path)
	confPath := filepath.Join(dir, "containerd.toml")
	if err := os.WriteFile(confPath, []byte(rel.baseConfig(t, dir, d.sock)), 0o644); err != nil {
		t.Fatal(err)
	}
	// The runtime entries come from `greenboost-ctk runtime configure`: the
	// file has no runtimes table (as Debian's), so CRI loads only if it also
	// added runc's; containerd uses our root, state and sockets only if the
	// rest was kept.
	ctk := filepath.Join(s.repo, "bin", "greenboost-ctk")
	if out, err := exec.Command(ctk, "runtime", "configure", "--runtime", "containerd", "--config", confPath).CombinedOutput(); err != nil {
		t.Fatalf("greenboost-ctk runtime configure --runtime containerd: %v\n%s", err, out)
	}
	checkCRIRuntimes(t, rel, confPath)
	logf, err := os.Create(d.logPath)
	if err != nil {
		t.Fatal(err)
	}
	d.cmd = exec.Command(rel.containerd, "--config", confPath)
	d.cmd.Env = d.env
	d.cmd.Stdout, d.cmd.Stderr = logf, logf
	d.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := d.cmd.Start(); err != nil {
		logf.Close()
		t.Fatalf("starting containerd: %v", err)
	}
	go func() {
		_ = d.cmd.Wait()
		logf.Close()
		close(d.exited)
	}()
	t.Cleanup(func() { d.stop(t) })

	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, _, err := d.ctr("version"); err == nil {
			break
		}
		select {
		case <-d.exited:
			t.Fatalf("containerd exited during start-up:\n%s", d.logTail())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("containerd did not answer on %s within 30s:\n%s", d.sock, d.logTail())
		}
		time.Sleep(100 * time.Millisecond)
	}
	// The CRI plugin loaded with the runtime entries.
	plugins := d.mustCtr(t, "plugins", "ls")
	criOK := false
	for _, l := range strings.Split(plugins, "\n") {
		if f := strings.Fields(l); len(f) >= 4 && f[0] == "io.containerd.grpc.v1" && f[1] == "cri" {
			criOK = f[len(f)-1] == "ok"
		}
	}
	if !criOK {
		t.Fatalf("containerd's CRI plugin did not load with the greenboost runtime entry:\n%s\n%s", plugins, d.logTail())
	}
	return d
}

// checkCRIRuntimes reads the config as containerd does (config dump) and
// checks CRI's runtimes: ours on the shim, and runc, CRI's default.
func checkCRIRuntimes(t *testing.T, rel ctrdRelease, confPath string) {
	t.Helper()
	dump, err := exec.Command(rel.containerd, "--config", confPath, "config", "dump").Output()
	if err != nil {
		t.Fatalf("containerd config dump: %v", err)
	}
	var cfg struct {
		Plugins map[string]struct {
			Containerd struct {
				Runtimes map[string]struct {
					RuntimeType string `toml:"runtime_type"`
				} `toml:"runtimes"`
			} `toml:"containerd"`
		} `toml:"plugins"`
	}
	if err := toml.Unmarshal(dump, &cfg); err != nil {
		t.Fatalf("containerd config dump: %v\n%s", err, dump)
	}
	runtimes := cfg.Plugins[rel.criPlugin].Containerd.Runtimes
	if runtimes["greenboost"].RuntimeType != ctrdRuntimeType || runtimes["runc"].RuntimeType != "io.containerd.runc.v2" {
		t.Fatalf("CRI runtimes as containerd reads them: %+v; want greenboost on %s and runc", runtimes, ctrdRuntimeType)
	}
}

// ctrdCleanEnv is the test process's environment without what the tests set.
func ctrdCleanEnv() []string {
	var env []string
	for _, e := range os.Environ() {
		k, _, _ := strings.Cut(e, "=")
		switch k {
		case "PATH", "GREENBOOST_CONFIG", "CONTAINERD_ADDRESS", "CONTAINERD_NAMESPACE", "CONTAINERD_SNAPSHOTTER":
			continue
		}
		env = append(env, e)
	}
	return env
}

// stop removes what the test left running, then stops containerd and its
// shims by PID.
func (d *ctrd) stop(t *testing.T) {
	d.mu.Lock()
	ids := append([]string(nil), d.ids...)
	d.mu.Unlock()
	for _, id := range ids {
		_, _, _ = d.ctr("task", "kill", "-s", "KILL", id)
		_, _, _ = d.ctr("task", "delete", "-f", id)
		_, _, _ = d.ctr("container", "delete", id)
	}
	if d.cmd.Process != nil {
		_ = d.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-d.exited:
		case <-time.After(15 * time.Second):
			_ = d.cmd.Process.Kill()
			<-d.exited
		}
	}
	// Shims outlive containerd by design; ours carry our socket's address.
	for _, pid := range livePids(func(args []string) bool { return slices.Contains(args, d.sock) }) {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	if t.Failed() {
		t.Logf("containerd log (%s), last lines:\n%s", d.logPath, d.logTail())
	}
}

// logged reports whether one line of containerd's log contains all parts.
func (d *ctrd) logged(parts ...string) bool {
	data, _ := os.ReadFile(d.logPath)
	for _, line := range strings.Split(string(data), "\n") {
		all := true
		for _, p := range parts {
			if !strings.Contains(line, p) {
				all = false
				break
			}
		}
		if all {
			return true
		}
	}
	return false
}

func (d *ctrd) logTail() string {
	data, _ := os.ReadFile(d.logPath)
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > 60 {
		lines = lines[len(lines)-60:]
	}
	return strings.Join(lines, "\n")
}

// taskStatus is the task's status in `ctr task ls`, "" when not listed,
// "?" when ctr fails (as while a dead shim is being cleaned up).
func (d *ctrd) taskStatus(id string) string {
	out, _, err := d.ctr("task", "ls")
	if err != nil {
		return "?"
	}
	for _, l := range strings.Split(out, "\n") {
		if f := strings.Fields(l); len(f) >= 3 && f[0] == id {
			return f[2]
		}
	}
	return ""
}

// shimPids lists the shim processes serving container id for this containerd.
func (d *ctrd) shimPids(id string) []int {
	return livePids(func(args []string) bool {
		if !slices.Contains(args, d.sock) {
			return false
		}
		for i := 0; i+1 < len(args); i++ {
			if args[i] == "-id" && args[i+1] == id {
				return true
			}
		}
		return false
	})
}

// ctrdShimSocket is where a shim of this containerd serves container id
// (containerd's shim.SocketAddress, 1.6 and 1.7).
func ctrdShimSocket(address, id string) string {
	sum := sha256.Sum256([]byte(filepath.Join(address, ctrdNamespace, id)))
	return filepath.Join("/run/containerd/s", hex.EncodeToString(sum[:]))
}

// track marks a container id for removal at the end of the test.
func (d *ctrd) track(id string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.ids = append(d.ids, id)
}

// ctr runs ctr against this containerd in the test namespace.
func (d *ctrd) ctr(args ...string) (stdout, stderr string, err error) {
	return d.ctrIn(ctrdNamespace, args...)
}

// ctrIn runs ctr against this containerd in namespace ns.
func (d *ctrd) ctrIn(ns string, args ...string) (stdout, stderr string, err error) {
	return d.run(cmdTimeout, d.rel.ctr, append([]string{"--address", d.sock, "--namespace", ns}, args...)...)
}

func (d *ctrd) mustCtr(t *testing.T, args ...string) string {
	t.Helper()
	out, errOut, err := d.ctr(args...)
	if err != nil {
		t.Fatalf("ctr %s: %v\nstdout: %s\nstderr: %s", strings.Join(args, " "), err, out, errOut)
	}
	return out
}

func (d *ctrd) run(timeout time.Duration, name string, args ...string) (string, string, error) {
	cmd := exec.Command(name, args...)
	cmd.Env = d.env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		return "", "", err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return stdout.String(), stderr.String(), err
	case <-time.After(timeout):
		_ = cmd.Process.Kill()
		<-done
		return stdout.String(), stderr.String(), fmt.Errorf("%s timed out after %v", name, timeout)
	}
}

// importImage imports the suite's busybox image into this containerd's
// test namespace.
func (d *ctrd) importImage(t *testing.T) {
	t.Helper()
	d.importImageTo(t, ctrdNamespace, busyboxTar.get(t, d.s), ctrdImage)
}

// importImageTo imports the image tarball tarPath, named image, into
// containerd namespace ns.
func (d *ctrd) importImageTo(t *testing.T, ns, tarPath, image string) {
	t.Helper()
	ctr := func(args ...string) string {
		out, errOut, err := d.ctrIn(ns, args...)
		if err != nil {
			t.Fatalf("ctr -n %s %s: %v\n%s%s", ns, strings.Join(args, " "), err, out, errOut)
		}
		return out
	}
	ctr("images", "import", tarPath)
	if out := ctr("images", "ls", "-q"); !strings.Contains(out, image) {
		t.Fatalf("imported %s into namespace %s but `ctr images ls` shows:\n%s", tarPath, ns, out)
	}
}

// ctlDir makes a host directory the test shares with a container at /gbctl.
func (d *ctrd) ctlDir(t *testing.T, name string) string {
	t.Helper()
	dir := filepath.Join(d.dir, "ctl-"+name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// imageTarball is a docker-archive of the suite's base rootfs (busybox-static,
// a dynamic program and its libraries), written once.
type imageTarball struct {
	tag  string   // the short name the archive carries
	cmd  []string // the image's Cmd
	once sync.Once
	path string
	err  error
}

var (
	busyboxTar = &imageTarball{tag: ctrdImageShort, cmd: []string{"/bin/sh"}}
	// pauseTar is the CRI sandbox image: a pod's first process must stay.
	pauseTar = &imageTarball{tag: ctrdPauseImageShort, cmd: []string{"/bin/sleep", "3600"}}
)

func (it *imageTarball) get(t *testing.T, s *suite) string {
	t.Helper()
	it.once.Do(func() {
		it.path, it.err = writeDockerArchive(s.baseRootfs, filepath.Join(s.tmp, strings.ReplaceAll(it.tag, ":", "-")+".tar"), it.tag, it.cmd)
	})
	if it.err != nil {
		t.Fatalf("building the image tarball %s: %v", it.tag, it.err)
	}
	return it.path
}

func writeDockerArchive(rootfs, out, tag string, cmd []string) (string, error) {
	var layer bytes.Buffer
	if err := tarTree(rootfs, &layer); err != nil {
		return "", err
	}
	diffID := sha256.Sum256(layer.Bytes())
	layerHex := hex.EncodeToString(diffID[:])
	config, err := json.Marshal(map[string]any{
		"architecture": "amd64",
		"os":           "linux",
		"created":      "2024-01-01T00:00:00Z",
		"config": map[string]any{
			"Env": []string{"PATH=/bin:/dyn"},
			"Cmd": cmd,
		},
		"rootfs":  map[string]any{"type": "layers", "diff_ids": []string{"sha256:" + layerHex}},
		"history": []map[string]string{{"created": "2024-01-01T00:00:00Z", "created_by": "greenboost test/e2e"}},
	})
	if err != nil {
		return "", err
	}
	cfgSum := sha256.Sum256(config)
	cfgName := hex.EncodeToString(cfgSum[:]) + ".json"
	manifest, err := json.Marshal([]map[string]any{{
		"Config":   cfgName,
		"RepoTags": []string{tag},
		"Layers":   []string{layerHex + "/layer.tar"},
	}})
	if err != nil {
		return "", err
	}
	f, err := os.Create(out)
	if err != nil {
		return "", err
	}
	defer f.Close()
	tw := tar.NewWriter(f)
	files := []struct {
		name string
		data []byte
	}{{cfgName, config}, {layerHex + "/layer.tar", layer.Bytes()}, {"manifest.json", manifest}}
	if err := tw.WriteHeader(&tar.Header{Name: layerHex + "/", Typeflag: tar.TypeDir, Mode: 0o755}); err != nil {
		return "", err
	}
	for _, e := range files {
		if err := tw.WriteHeader(&tar.Header{Name: e.name, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(e.data))}); err != nil {
			return "", err
		}
		if _, err := tw.Write(e.data); err != nil {
			return "", err
		}
	}
	if err := tw.Close(); err != nil {
		return "", err
	}
	return out, f.Close()
}

// tarTree writes the tree at root as a layer tarball owned by root.
func tarTree(root string, w io.Writer) error {
	tw := tar.NewWriter(w)
	var paths []string
	err := filepath.WalkDir(root, func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p != root {
			paths = append(paths, p)
		}
		return nil
	})
	if err != nil {
		return err
	}
	sort.Strings(paths)
	for _, p := range paths {
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		link := ""
		if fi.Mode()&fs.ModeSymlink != 0 {
			if link, err = os.Readlink(p); err != nil {
				return err
			}
		}
		hdr, err := tar.FileInfoHeader(fi, link)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		hdr.Name = filepath.ToSlash(rel)
		if fi.IsDir() {
			hdr.Name += "/"
		}
		hdr.Uid, hdr.Gid, hdr.Uname, hdr.Gname = 0, 0, "root", "root"
		hdr.ModTime = time.Unix(1704067200, 0)
		hdr.Format = tar.FormatPAX
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if fi.Mode().IsRegular() {
			f, err := os.Open(p)
			if err != nil {
				return err
			}
			_, err = io.Copy(tw, f)
			f.Close()
			if err != nil {
				return err
			}
		}
	}
	return tw.Close()
}

// lockedBuffer collects a command's output while the test reads it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// nerdctlBinary returns nerdctl v1.7.7, built from the Go module proxy into
// testBuildCache on first use.
func nerdctlBinary(t *testing.T) string {
	t.Helper()
	dir := proxyBinaries(t, proxyModule{name: "nerdctl", path: "github.com/containerd/nerdctl", version: nerdctlVersion}, "cmd/nerdctl")
	return filepath.Join(dir, "nerdctl")
}

// proxyModule is a module version whose commands proxyBinaries builds.
type proxyModule struct {
	name, path, version string
	// requires, for a module without a go.mod (moby keeps its requirements
	// in vendor.mod), returns the requirements of the module that builds it.
	requires func(t *testing.T) string
	// flags are extra `go build` flags (-tags, -ldflags).
	flags []string
}

// proxyBinaries builds the commands pkgs (paths in module m) from the Go
// module proxy, statically, into testBuildCache/NAME-VERSION (each renamed
// into place when built) on first use, and returns that directory.
// `go install ...@version` fails for some modules here (the proxy does not
// serve their version list, which go install reads for deprecations), so
// they are built from a throw-away module that requires them.
func proxyBinaries(t *testing.T, m proxyModule, pkgs ...string) string {
	t.Helper()
	dir := filepath.Join(testBuildCache, m.name+"-"+m.version)
	built := func(pkg string) bool {
		fi, err := os.Stat(filepath.Join(dir, filepath.Base(pkg)))
		return err == nil && fi.Mode()&0o111 != 0
	}
	if !slices.ContainsFunc(pkgs, func(p string) bool { return !built(p) }) {
		return dir
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatalf("%s cache: %v", m.name, err)
	}
	mod := t.TempDir()
	gomod := "module gbtest/" + m.name + "\n\ngo 1.21\n\nrequire " + m.path + " " + m.version + "\n"
	if m.requires != nil {
		gomod += m.requires(t)
	}
	if err := os.WriteFile(filepath.Join(mod, "go.mod"), []byte(gomod), 0o644); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	t.Logf("building %s %s from the Go module proxy into %s (once; takes minutes)", m.name, m.version, dir)
	for _, pkg := range pkgs {
		if built(pkg) {
			continue
		}
		bin := filepath.Join(dir, filepath.Base(pkg))
		args := append([]string{"build", "-mod=mod", "-trimpath", "-o", bin + ".tmp"}, m.flags...)
		cmd := exec.Command("go", append(args, m.path+"/"+pkg)...)
		cmd.Dir = mod
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOFLAGS=-buildvcs=false")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("building %s %s (needs the Go module proxy): %v\n%s", m.path+"/"+pkg, m.version, err, ctrdTail(string(out), 40))
		}
		if err := os.Rename(bin+".tmp", bin); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("built %s in %v", m.name, time.Since(start).Round(time.Second))
	return dir
}

// nerdctl runs nerdctl against this containerd.
func (d *ctrd) nerdctlCmd(bin string, args ...string) *exec.Cmd {
	base := []string{
		"--address", d.sock, "--namespace", ctrdNamespace,
		"--data-root", filepath.Join(d.dir, "nerdctl"),
		"--cgroup-manager", "cgroupfs",
		"--cni-netconfpath", filepath.Join(d.dir, "cni-conf"),
	}
	cmd := exec.Command(bin, append(base, args...)...)
	cmd.Env = d.env
	return cmd
}

// recordGone reports whether the hook's record of id is absent (and not
// unreadable for another reason).
func recordGone(cfg gbConfig, id string) (bool, error) {
	_, err := os.Stat(cfg.recordPath(id))
	if errors.Is(err, fs.ErrNotExist) {
		return true, nil
	}
	return false, err
}

// ctrdTail is the last n lines of s.
func ctrdTail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
