//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

const (
	podmanImage        = "localhost/gb-e2e-podman:1"
	podmanPreloadImage = "localhost/gb-e2e-podman-preload:1"    // with ENV LD_PRELOAD of its own
	podmanSpecPath     = "/var/run/cdi/greenboost.io-vram.yaml" // where podman 4.3 finds it (see TestPodman)
	podmanDeviceExt    = "greenboost.io/vram=ext"
	podmanDeviceSmall  = "greenboost.io/vram=small"
	podmanSmallRAM     = "512M"
)

// podman is a podman CLI whose storage, run root, libpod tmp dir, network
// config and containers.conf are all under dir. Podman has no daemon: what
// outlives a command is conmon (one per running container) and the cleanup
// process it starts, both stopped by PID at the end.
type podman struct {
	s      *suite
	dir    string
	cfg    gbConfig // GreenBoost config named by the CDI spec's hooks
	ctkBin string
	env    []string
	global []string
}

func newPodman(t *testing.T, s *suite) *podman {
	t.Helper()
	for _, b := range []string{"podman", "conmon", "tar"} {
		if _, err := exec.LookPath(b); err != nil {
			t.Fatalf("%s not found on PATH: install podman (Debian 12: make deps)", b)
		}
	}
	p := &podman{s: s, ctkBin: filepath.Join(s.repo, "bin", "greenboost-ctk")}
	if fi, err := os.Stat(p.ctkBin); err != nil || fi.Mode()&0o111 == 0 {
		t.Fatalf("%s is missing or not executable: run `make build` first", p.ctkBin)
	}
	p.dir = filepath.Join(s.tmp, fmt.Sprintf("podman%d", s.counter.next()))
	if err := os.MkdirAll(p.dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.cleanup(t) })

	// The GreenBoost config, plus a profile that becomes device =small.
	p.cfg = s.writeConfig(t, filepath.Join(p.dir, "gb"), s.runc)
	appendFile(t, p.cfg.path, fmt.Sprintf("\n[limits.profiles.small]\nram = %q\n", podmanSmallRAM))

	// Root lacks CAP_SYS_RESOURCE here, so podman's default ulimits
	// (nofile 1048576) cannot be set: ask for ones within the hard limits.
	conf := filepath.Join(p.dir, "containers.conf")
	confText := `[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
`
	if err := os.WriteFile(conf, []byte(confText), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, e := range os.Environ() {
		// The hooks must find their config through the spec, not our env.
		if !strings.HasPrefix(e, "GREENBOOST_") && !strings.HasPrefix(e, "CONTAINERS_") {
			p.env = append(p.env, e)
		}
	}
	p.env = append(p.env, "CONTAINERS_CONF="+conf)
	p.global = []string{
		"--root", filepath.Join(p.dir, "root"),
		"--runroot", filepath.Join(p.dir, "runroot"),
		"--tmpdir", filepath.Join(p.dir, "libpod-tmp"),
		"--network-config-dir", filepath.Join(p.dir, "cni"),
		"--storage-driver", "vfs",
		"--cgroup-manager", "cgroupfs",
		"--events-backend", "file",
	}

	p.installSpec(t)
	p.importImage(t, podmanImage)
	p.importImage(t, podmanPreloadImage, "ENV LD_PRELOAD="+imageLibPath)
	return p
}

// installSpec writes the spec with `greenboost-ctk cdi generate` to
// /var/run/cdi (the only place besides /etc/cdi podman 4.3 looks) and puts
// back the file that was there before, if any, when the test ends.
func (p *podman) installSpec(t *testing.T) {
	t.Helper()
	old, err := os.ReadFile(podmanSpecPath)
	hadOld := err == nil
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("reading the existing %s: %v", podmanSpecPath, err)
	}
	var oldMode fs.FileMode = 0o644
	if hadOld {
		if fi, err := os.Stat(podmanSpecPath); err == nil {
			oldMode = fi.Mode().Perm()
		}
		t.Logf("backed up the existing %s; it is restored when the test ends", podmanSpecPath)
	}
	t.Cleanup(func() {
		if !hadOld {
			if err := os.Remove(podmanSpecPath); err != nil && !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("removing the test's %s: %v", podmanSpecPath, err)
			}
			return
		}
		tmp := podmanSpecPath + ".gb-e2e-restore"
		if err := os.WriteFile(tmp, old, oldMode); err != nil {
			t.Errorf("restoring %s: %v", podmanSpecPath, err)
			return
		}
		if err := os.Rename(tmp, podmanSpecPath); err != nil {
			t.Errorf("restoring %s: %v", podmanSpecPath, err)
		}
	})
	out, err := p.ctk(p.cfg.path, "cdi", "generate", "--output", podmanSpecPath)
	if err != nil {
		t.Fatalf("greenboost-ctk cdi generate --output %s: %v\n%s", podmanSpecPath, err, out)
	}
	fi, err := os.Stat(podmanSpecPath)
	if err != nil {
		t.Fatalf("cdi generate wrote no %s: %v", podmanSpecPath, err)
	}
	if fi.Mode().Perm() != 0o644 {
		t.Errorf("%s has mode %v, want 0644", podmanSpecPath, fi.Mode().Perm())
	}
}

// importImage makes image from the suite's rootfs with `podman import`.
func (p *podman) importImage(t *testing.T, image string, changes ...string) {
	t.Helper()
	tarPath := filepath.Join(p.dir, "rootfs.tar")
	if _, err := os.Stat(tarPath); err != nil {
		if out, err := exec.Command("tar", "-C", p.s.baseRootfs, "-cf", tarPath, ".").CombinedOutput(); err != nil {
			t.Fatalf("tar of the rootfs: %v: %s", err, out)
		}
	}
	args := []string{"import", "--change", "ENV PATH=/bin:/dyn"}
	for _, c := range changes {
		args = append(args, "--change", c)
	}
	if _, stderr, err := p.podman(append(args, tarPath, image)...); err != nil {
		t.Fatalf("podman import %s: %v: %s", image, err, stderr)
	}
}

// podman runs the podman CLI with the test's global options.
func (p *podman) podman(args ...string) (stdout, stderr string, err error) {
	return runTool(p.env, "podman", append(append([]string(nil), p.global...), args...)...)
}

func (p *podman) mustRun(t *testing.T, args ...string) string {
	t.Helper()
	stdout, stderr, err := p.podman(args...)
	if err != nil {
		t.Fatalf("podman %s: %v\nstdout: %s\nstderr: %s", strings.Join(args, " "), err, stdout, stderr)
	}
	return stdout
}

// ctk runs bin/greenboost-ctk with GREENBOOST_CONFIG=cfg and returns its
// combined output.
func (p *podman) ctk(cfg string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, p.ctkBin, args...)
	cmd.Env = append(append([]string(nil), p.env...), "GREENBOOST_CONFIG="+cfg)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// readCID reads the container id podman wrote to a --cidfile.
func readCID(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("podman's --cidfile: %v", err)
	}
	id := strings.TrimSpace(string(data))
	if len(id) != 64 {
		t.Fatalf("podman's --cidfile holds %q, want a container id", id)
	}
	return id
}

// cleanup removes every container and image, stops what podman left running
// (conmon, cleanup processes: anything naming our directory) by PID, and
// removes the directory.
func (p *podman) cleanup(t *testing.T) {
	if _, stderr, err := p.podman("rm", "-a", "-f", "-t", "0"); err != nil {
		t.Logf("podman rm -a -f: %v: %s", err, stderr)
	}
	if _, stderr, err := p.podman("rmi", "-a", "-f"); err != nil {
		t.Logf("podman rmi -a -f: %v: %s", err, stderr)
	}
	for _, pid := range pidsMentioning(p.dir) {
		t.Logf("killing leftover process %d (%s)", pid, cmdline(pid))
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	if !waitFor(5*time.Second, func() bool { return len(pidsMentioning(p.dir)) == 0 }) {
		t.Errorf("processes of the test's podman still alive: %v", pidsMentioning(p.dir))
	}
	removeAll(p.dir)
}

func appendFile(t *testing.T, path, text string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(text); err != nil {
		f.Close()
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// replaceInFile replaces old (which must be there) by new in the file.
func replaceInFile(t *testing.T, path, old, new string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(data, []byte(old)) {
		t.Fatalf("%s does not contain %q", path, old)
	}
	if err := os.WriteFile(path, bytes.ReplaceAll(data, []byte(old), []byte(new)), 0o644); err != nil {
		t.Fatal(err)
	}
}

// fileSize is the size of path, 0 if it does not exist.
func fileSize(path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return fi.Size()
}

// readFrom returns what path holds from offset on.
func readFrom(path string, offset int64) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		return ""
	}
	data, _ := io.ReadAll(f)
	return string(data)
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return lines[len(lines)-1]
}

func containsLine(s, line string) bool {
	for _, l := range strings.Split(s, "\n") {
		if strings.TrimSpace(l) == line {
			return true
		}
	}
	return false
}

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
