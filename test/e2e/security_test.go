//go:build e2e

package e2e

import (
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestSecurity holds the security regressions of DESIGN.md §9.
func TestSecurity(t *testing.T) {
	s := getSuite(t)

	// Static binaries: LD_PRELOAD and ld.so.preload cannot reach them.
	t.Run("static-binaries", func(t *testing.T) {
		for _, b := range []string{s.runtimeBin, s.hookBin} {
			static, err := isStatic(b)
			if err != nil {
				t.Fatal(err)
			}
			if !static {
				t.Errorf("%s is dynamically linked: LD_PRELOAD or an ld.so.preload could load code into it", b)
			}
		}
	})

	for _, ll := range s.lowLevels() {
		t.Run(ll.name, func(t *testing.T) {
			if ll.name == "crun" {
				prepareCrun(t)
			}
			t.Run("evil-image-preload", func(t *testing.T) { testEvilImage(t, s, ll) })
			for _, v := range []struct {
				name string
				// link makes the symlink in rootfs, given the host directory
				// it tries to reach.
				link func(rootfs, hostDir string) error
			}{
				{"absolute-dir-symlink", func(rootfs, hostDir string) error {
					return os.Symlink(hostDir, filepath.Join(rootfs, filepath.Dir(libContainerPath)))
				}},
				{"relative-dir-symlink", func(rootfs, hostDir string) error {
					return os.Symlink(strings.Repeat("../", 12)+strings.TrimPrefix(hostDir, "/"), filepath.Join(rootfs, filepath.Dir(libContainerPath)))
				}},
				{"absolute-file-symlink", func(rootfs, hostDir string) error {
					p := filepath.Join(rootfs, libContainerPath)
					if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
						return err
					}
					return os.Symlink(filepath.Join(hostDir, "libgreenboost_cuda.so"), p)
				}},
			} {
				t.Run("library-path-"+v.name, func(t *testing.T) { testLibrarySymlink(t, s, ll, v.link) })
			}
		})
	}
}

// makeEvilRootfs turns a rootfs into a hostile image: its library sits at the
// same absolute path as on the host and is listed in /etc/ld.so.preload, and
// programs a careless hook might run (ldconfig, ...) leave host markers too.
func (s *suite) makeEvilRootfs(root string) error {
	if err := copyFile(s.evilLib, filepath.Join(root, s.evilLib)); err != nil {
		return err
	}
	// The same directory inside the rootfs takes the container's markers.
	if err := os.MkdirAll(filepath.Join(root, s.evilDir), 0o777); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(root, "etc", "ld.so.preload"), []byte(s.evilLib+"\n"), 0o644); err != nil {
		return err
	}
	script := "#!/bin/sh\necho \"exe=$0 $*\" > " + s.evilDir + "/exec-$$\n"
	for _, p := range []string{"sbin/ldconfig", "sbin/ldconfig.real", "usr/sbin/ldconfig", "usr/bin/greenboost-hook", "usr/sbin/runc", "usr/bin/crun"} {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(root, p)), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(root, p), []byte(script), 0o755); err != nil {
			return err
		}
	}
	return nil
}

// assertEvilLibWorksOnHost is the positive control: the evil library, if
// loaded by a host process, does leave a marker in the host's evil dir.
func (s *suite) assertEvilLibWorksOnHost(t *testing.T) {
	t.Helper()
	clearDir(t, s.evilDir)
	envBin, err := exec.LookPath("env")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(envBin, "true")
	cmd.Env = []string{"LD_PRELOAD=" + s.evilLib}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("control run of the evil library on the host: %v: %s", err, out)
	}
	if len(s.evilMarkers(t)) == 0 {
		t.Fatalf("control: the evil library left no marker in %s when preloaded on the host; the test would prove nothing", s.evilDir)
	}
	clearDir(t, s.evilDir)
}

func testEvilImage(t *testing.T, s *suite, ll lowLevel) {
	s.assertEvilLibWorksOnHost(t)
	dir := s.testDir(t)
	cfg := s.writeConfig(t, dir, ll.path)
	b := s.newBundle(t, filepath.Join(dir, "bundle"), bundleOpts{
		args:   []string{"/bin/sh", "-c", dynProgram + " true; ls " + s.evilDir},
		env:    []string{"LD_PRELOAD=" + s.evilLib, "GREENBOOST_RAM_LIMIT=1G"},
		rootfs: s.makeEvilRootfs,
	})
	c := s.newContainer(t, b, ll, true, cfg)
	if _, err := c.create(); err != nil {
		t.Fatal(err)
	}
	// The hooks really ran (so they had their chance to load the library).
	if _, err := os.Stat(cfg.recordPath(c.id)); err != nil {
		t.Errorf("no record after create: the prestart hook did not run: %v", err)
	}
	startWaitDelete(t, c)
	if _, err := os.Stat(cfg.recordPath(c.id)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("record still there after delete: the poststop hook did not run: %v", err)
	}
	// The attack is live inside the container: the evil library ran there.
	if !strings.Contains(c.output(), "evil-") {
		t.Errorf("the evil library did not run inside the container, so this test proves nothing; output: %q", c.output())
	}
	if m := s.evilMarkers(t); len(m) != 0 {
		t.Errorf("the image's LD_PRELOAD / ld.so.preload library or programs ran in a host process (wrapper or hook): %v", m)
	}
}

func testLibrarySymlink(t *testing.T, s *suite, ll lowLevel, link func(rootfs, hostDir string) error) {
	dir := s.testDir(t)
	hostDir := filepath.Join(dir, "host-target")
	if err := os.MkdirAll(hostDir, 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := s.writeConfig(t, dir, ll.path)
	b := s.newBundle(t, filepath.Join(dir, "bundle"), bundleOpts{
		rootfs: func(root string) error { return link(root, hostDir) },
	})
	c := s.newContainer(t, b, ll, true, cfg)

	checkHost := func(when string) {
		t.Helper()
		ents, err := os.ReadDir(hostDir)
		if err != nil {
			t.Fatalf("%s: the host target directory: %v", when, err)
		}
		if len(ents) != 0 {
			var names []string
			for _, e := range ents {
				names = append(names, e.Name())
			}
			t.Errorf("%s: the library mount escaped the rootfs: host directory %s now holds %v", when, hostDir, names)
		}
		if m := mountsUnder(hostDir); len(m) != 0 {
			t.Errorf("%s: mounts on the host under %s: %v", when, hostDir, m)
		}
	}

	stderr, err := c.create()
	checkHost("after create")
	if err != nil {
		// Failing cleanly is acceptable: a message, no container, no record.
		t.Logf("create refused the symlinked library path: %v", err)
		if strings.TrimSpace(stderr) == "" {
			t.Errorf("create failed without a message")
		}
		if c.exists() {
			t.Errorf("the failed create left container %s behind", c.id)
		}
		if _, err := os.Stat(cfg.recordPath(c.id)); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("the failed create left a record (stat: %v)", err)
		}
		return
	}
	if err := c.start(); err != nil {
		t.Fatal(err)
	}
	if err := c.wait(); err != nil {
		t.Fatal(err)
	}
	checkHost("after the container ran")
	if err := c.delete(); err != nil {
		t.Fatal(err)
	}
	checkHost("after delete")
	// The mount was confined to the rootfs: the container still works and
	// sees the read-only library through its own symlink.
	p := parseProbe(c.output())
	if p.get("DONE") != "1" || p.get("LIB") != "present" || p.get("LIBWRITE") != "fail" || len(p.markers("greenboost")) == 0 {
		t.Errorf("the container did not get a working read-only library through the symlinked path:\n%s", c.output())
	}
}
