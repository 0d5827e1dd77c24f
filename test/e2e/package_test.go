//go:build e2e

package e2e

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

const packageName = "greenboost-container-toolkit"

// TestPackage builds the deb and the rpm with `make package`, checks that they
// hold exactly the files they should (static binaries, the default config, the
// module's DKMS source as it is in the repository), and installs the deb with
// the real dpkg and dkms in a private mount namespace whose /etc, /usr and
// /var are overlays of the host's: the maintainer scripts run for real and
// nothing reaches the host.
func TestPackage(t *testing.T) {
	repo, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	dist := t.TempDir()
	// The commit `make build` (run by make package) stamps into the binaries.
	commit := gitHead(t, repo)
	if out, err := exec.Command("make", "-C", repo, "package", "DIST="+dist).CombinedOutput(); err != nil {
		t.Fatalf("make package: %v\n%s", err, out)
	}
	if after := gitHead(t, repo); after != commit {
		t.Fatalf("HEAD moved from %s to %s while make package ran: the binaries' commit cannot be checked; run the test again", commit, after)
	}
	deb := onlyFile(t, dist, "*.deb")
	rpm := onlyFile(t, dist, "*.rpm")
	version := strings.TrimSpace(mustOutput(t, "dpkg-deb", "-f", deb, "Version"))
	want := packagedFiles(t, repo, version)

	t.Run("deb contents", func(t *testing.T) {
		var got []string
		for _, line := range strings.Split(mustOutput(t, "dpkg-deb", "-c", deb), "\n") {
			f := strings.Fields(line)
			if len(f) >= 6 && strings.HasPrefix(f[0], "-") {
				got = append(got, strings.TrimPrefix(f[5], "."))
			}
		}
		checkFileList(t, got, want)
	})
	t.Run("rpm contents", func(t *testing.T) {
		got := strings.Fields(mustOutput(t, "rpm", "-qlp", rpm))
		checkFileList(t, got, want)
		scripts := mustOutput(t, "rpm", "-qp", "--scripts", rpm)
		if !strings.Contains(scripts, "version="+version+" ") {
			t.Errorf("rpm scripts do not carry version %s:\n%s", version, scripts)
		}
	})

	root := t.TempDir()
	mustOutput(t, "dpkg-deb", "-x", deb, root)
	// Every binary, packaged and in bin/ (make package ran make build),
	// answers --version with the version and the git commit it was built
	// from (DESIGN.md §4).
	t.Run("binaries", func(t *testing.T) {
		for _, name := range []string{"greenboost-runtime", "greenboost-hook", "greenboost-ctk", "containerd-shim-greenboost-v2"} {
			bin := filepath.Join(root, "usr/bin", name)
			if static, err := isStatic(bin); err != nil || !static {
				t.Errorf("%s: static %v (%v)", name, static, err)
			}
			for _, b := range []string{bin, filepath.Join(repo, "bin", name)} {
				checkVersionOutput(t, b, name, version, commit)
			}
		}
	})
	t.Run("default config", func(t *testing.T) {
		ctk := filepath.Join(root, "usr/bin/greenboost-ctk")
		cmd := exec.Command(ctk, "config", "show")
		cmd.Env = []string{"GREENBOOST_CONFIG=" + filepath.Join(root, "etc/greenboost/config.toml")}
		shown, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("the packaged config does not load: %v\n%s", err, shown)
		}
		// config show's first line names the file it read.
		header, body, _ := strings.Cut(string(shown), "\n")
		if header != "# "+cmd.Env[0][len("GREENBOOST_CONFIG="):]+" over the defaults" {
			t.Errorf("config show's first line %q does not name the packaged file", header)
		}
		if defaults := mustOutput(t, ctk, "config", "default"); body != defaults {
			t.Errorf("the packaged config is not the defaults:\n%s\nwant\n%s", body, defaults)
		}
	})
	t.Run("module source", func(t *testing.T) {
		for _, f := range gitFiles(t, repo, "kmod/module") {
			src, _ := os.ReadFile(filepath.Join(repo, f))
			got, err := os.ReadFile(filepath.Join(root, "usr/src/greenboost-"+version, filepath.Base(f)))
			if err != nil || !bytes.Equal(got, src) {
				t.Errorf("%s in the package differs from the repository (%v)", f, err)
			}
		}
	})
	t.Run("install and purge", func(t *testing.T) {
		installAndPurge(t, deb, version)
	})
}

// installAndPurge runs dpkg -i, systemd-analyze verify on the installed
// units, a DKMS build for the kernel the VM tests boot, and dpkg --purge, in
// a mount namespace with overlays on /etc, /usr and /var, and checks what
// each step left.
func installAndPurge(t *testing.T, deb, version string) {
	headers, _ := filepath.Glob("/usr/src/linux-headers-6.1.*-cloud-amd64")
	if len(headers) == 0 {
		t.Fatal("no /usr/src/linux-headers-6.1.*-cloud-amd64: run make deps")
	}
	kernel := strings.TrimPrefix(filepath.Base(headers[0]), "linux-headers-")
	tmp := t.TempDir()
	// Each step prints "== name" and its output; set -e stops at the first
	// failing one, and the test reads the sections.
	script := `set -eu
tmp=$1 deb=$2 version=$3 kernel=$4
for d in etc usr var; do
	mkdir -p "$tmp/$d-up" "$tmp/$d-work"
	mount -t overlay overlay -o "lowerdir=/$d,upperdir=$tmp/$d-up,workdir=$tmp/$d-work" "/$d"
done
echo "== install"; dpkg -i "$deb" 2>&1
echo "== dkms after install"; dkms status -m greenboost
echo "== dkms install"; sign_file=/nonexistent dkms install -m greenboost -v "$version" -k "$kernel" 2>&1
echo "== vermagic"; modinfo -F vermagic /lib/modules/"$kernel"/updates/dkms/greenboost.ko*
echo "== config"; env -u GREENBOOST_CONFIG greenboost-ctk config show >/dev/null && echo loads
echo "== units"; (cd /usr/lib/systemd/system && systemd-analyze verify greenboost-*.service greenboost-*.timer greenboost-*.path 2>&1) || echo "verify failed"
echo "== purge"; dpkg --purge ` + packageName + ` 2>&1
echo "== dkms after purge"; dkms status -m greenboost
echo "== left"; ls -d /usr/src/greenboost-"$version" /etc/greenboost /usr/bin/greenboost-* /lib/modules/"$kernel"/updates/dkms/greenboost.ko* 2>/dev/null || true
echo "== end"
`
	out, err := exec.Command("unshare", "--mount", "--propagation", "private",
		"sh", "-c", script, "sh", tmp, deb, version, kernel).CombinedOutput()
	sections := parseSections(string(out))
	if err != nil || sections["end"] == nil {
		t.Fatalf("install/purge in a private namespace: %v\n%s", err, out)
	}
	check := func(section string, ok bool, want string) {
		if !ok {
			t.Errorf("%s: want %s, got:\n%s", section, want, strings.Join(sections[section], "\n"))
		}
	}
	after := strings.Join(sections["dkms after install"], "\n")
	check("dkms after install", strings.Contains(after, "greenboost/"+version), "the postinst to add the module to DKMS")
	vermagic := strings.Join(sections["vermagic"], "")
	check("vermagic", strings.HasPrefix(vermagic, kernel+" "), "a module built for "+kernel)
	check("config", slices.Contains(sections["config"], "loads"), "/etc/greenboost/config.toml to load")
	check("units", len(sections["units"]) == 0, "systemd-analyze verify to find nothing in the installed units")
	check("dkms after purge", len(sections["dkms after purge"]) == 0, "the prerm to remove the module from DKMS")
	check("left", len(sections["left"]) == 0, "nothing of the package left after purge")
}

// parseSections splits "== name" headed output into its sections' lines.
func parseSections(out string) map[string][]string {
	sections := map[string][]string{}
	var cur string
	for _, line := range strings.Split(out, "\n") {
		if name, ok := strings.CutPrefix(line, "== "); ok {
			cur = name
			sections[cur] = []string{}
			continue
		}
		if cur != "" && strings.TrimSpace(line) != "" {
			sections[cur] = append(sections[cur], line)
		}
	}
	return sections
}

// packagedFiles is what the package must hold, derived from the repository:
// a new unit, engine snippet or module source file is expected in it too.
func packagedFiles(t *testing.T, repo, version string) []string {
	files := []string{
		"/usr/bin/greenboost-runtime", "/usr/bin/greenboost-hook", "/usr/bin/greenboost-ctk",
		"/usr/bin/containerd-shim-greenboost-v2",
		"/etc/greenboost/config.toml",
		"/usr/share/doc/" + packageName + "/LICENSE",
	}
	for dir, dst := range map[string]string{
		"packaging/systemd": "/usr/lib/systemd/system/",
		"packaging/udev":    "/usr/lib/udev/rules.d/",
		"packaging/engines": "/usr/share/greenboost/engines/",
		"kmod/module":       "/usr/src/greenboost-" + version + "/",
	} {
		for _, f := range gitFiles(t, repo, dir) {
			files = append(files, dst+filepath.Base(f))
		}
	}
	return files
}

func gitFiles(t *testing.T, repo, dir string) []string {
	out := mustOutput(t, "git", "-C", repo, "ls-files", dir)
	if strings.TrimSpace(out) == "" {
		t.Fatalf("git ls-files %s: nothing", dir)
	}
	return strings.Fields(out)
}

func checkFileList(t *testing.T, got, want []string) {
	t.Helper()
	slices.Sort(got)
	want = slices.Sorted(slices.Values(want))
	if !slices.Equal(got, want) {
		t.Errorf("files:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func onlyFile(t *testing.T, dir, pattern string) string {
	matches, _ := filepath.Glob(filepath.Join(dir, pattern))
	if len(matches) != 1 {
		t.Fatalf("make package made %v for %s, want one file", matches, pattern)
	}
	return matches[0]
}

func mustOutput(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, stderr)
	}
	return string(out)
}

// gitHead is the commit the Makefile stamps into the binaries: `git
// rev-parse --short HEAD` of the repository.
func gitHead(t *testing.T, repo string) string {
	t.Helper()
	cmd := exec.Command("git", "-C", repo, "rev-parse", "--short", "HEAD")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	commit := strings.TrimSpace(string(out))
	if err != nil || commit == "" {
		t.Fatalf("%s is not a git checkout with a commit (git rev-parse --short HEAD: %v: %s): the commit --version must print cannot be checked; run the tests in a clone of the repository", repo, err, strings.TrimSpace(stderr.String()))
	}
	return commit
}

// checkVersionOutput checks that `bin --version` exits 0 and starts with
// "NAME version VERSION" and "commit: COMMIT" (the runtime goes on with the
// low-level runtime's version).
func checkVersionOutput(t *testing.T, bin, name, version, commit string) {
	t.Helper()
	out, err := exec.Command(bin, "--version").CombinedOutput()
	lines := strings.Split(string(out), "\n")
	want := []string{name + " version " + version, "commit: " + commit}
	if err != nil || len(lines) < 2 || !slices.Equal(lines[:2], want) {
		t.Errorf("%s --version: %v, printed %q; want it to start with %q (the version, and the commit of HEAD that make build stamps)", bin, err, out, strings.Join(want, "\n")+"\n")
	}
}
