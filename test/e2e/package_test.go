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
// module's DKMS source as it is in the repository), and installs each with
// its real package manager (dpkg; rpm) and dkms in a private mount namespace
// whose /etc, /usr, /var and /run are overlays of the host's: the maintainer
// scripts run for real and nothing reaches the host.
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
		// rpm lists the directories it owns too: those only this package fills.
		got := strings.Fields(mustOutput(t, "rpm", "-qlp", rpm))
		checkFileList(t, got, append(slices.Clone(want), ownedDirs(version)...))
		license := "/usr/share/doc/" + packageName + "/LICENSE"
		if got := strings.Fields(mustOutput(t, "rpm", "-qLp", rpm)); !slices.Equal(got, []string{license}) {
			t.Errorf("rpm license files (%%license) %v, want [%s]", got, license)
		}
		scripts := mustOutput(t, "rpm", "-qp", "--scripts", rpm)
		if !strings.Contains(scripts, "version="+version+" ") {
			t.Errorf("rpm scripts do not carry version %s:\n%s", version, scripts)
		}
		for _, s := range []string{"postinstall", "preuninstall", "postuninstall"} {
			if !strings.Contains(scripts, s+" scriptlet") {
				t.Errorf("rpm has no %s scriptlet:\n%s", s, scripts)
			}
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
		installAndPurge(t, repo, deb, version)
	})
	t.Run("rpm reinstall and erase", func(t *testing.T) {
		rpmReinstallAndErase(t, repo, rpm, version)
	})
}

// headerKernels are the kernels with headers (/lib/modules/K/build), for
// each of which the postinst builds the module: here Debian 12's 6.1 and
// 6.12, the kernels the VM tests boot (the running kernel has none).
func headerKernels(t *testing.T) []string {
	var kernels []string
	builds, _ := filepath.Glob("/lib/modules/*/build")
	for _, b := range builds {
		if fi, err := os.Stat(b); err == nil && fi.IsDir() {
			kernels = append(kernels, filepath.Base(filepath.Dir(b)))
		}
	}
	if !slices.ContainsFunc(kernels, func(k string) bool { return strings.HasPrefix(k, "6.1.") && strings.HasSuffix(k, "-cloud-amd64") }) {
		t.Fatalf("no /lib/modules/6.1.*-cloud-amd64/build among %v: run make deps", kernels)
	}
	return kernels
}

// inNamespace runs script with sh in a private mount namespace whose /etc,
// /usr, /var and /run are overlays of the host's (the maintainer scripts run
// for real and nothing reaches the host; no systemd runs there, so units are
// enabled offline and never started). The script sees $pkg, $version, $repo,
// $kernels and $1 (the package file), and these helpers: modules (each
// kernel's installed greenboost.ko), stamps (their mtimes), enabled (the
// units' enablement), state (makes what running the package leaves: records,
// logs, the CDI spec, and another spec that is not ours). Each step prints
// "== name" and its output; set -e stops at the first failing one, and the
// test reads the sections. dkms status's stderr (readelf warnings about the
// kernels' modules) is for the log only.
func inNamespace(t *testing.T, repo, version string, kernels []string, script, pkgFile string) map[string][]string {
	t.Helper()
	preamble := `set -eu
pkg=` + packageName + ` version=` + version + ` repo='` + repo + `' kernels="` + strings.Join(kernels, " ") + `"
tmp='` + t.TempDir() + `'
for d in etc usr var run; do
	mkdir -p "$tmp/$d-up" "$tmp/$d-work"
	mount -t overlay overlay -o "lowerdir=/$d,upperdir=$tmp/$d-up,workdir=$tmp/$d-work" "/$d"
done
modules() { for k in $kernels; do ls /lib/modules/"$k"/updates/dkms/greenboost.ko* 2>/dev/null || true; done; }
stamps() { for k in $kernels; do stat -c '%n %y' /lib/modules/"$k"/updates/dkms/greenboost.ko* 2>/dev/null || true; done; }
wants="/etc/systemd/system/timers.target.wants/greenboost-gc.timer /etc/systemd/system/multi-user.target.wants/greenboost-cdi.service /etc/systemd/system/multi-user.target.wants/greenboost-cdi-refresh.path"
enabled() { for w in $wants; do if [ -L "$w" ]; then echo "enabled ${w##*/}"; else echo "disabled ${w##*/}"; fi; done; }
state() {
	mkdir -p /run/greenboost/containers /var/log/greenboost /var/run/cdi
	echo '{}' >/run/greenboost/containers/gone.json
	echo log >/var/log/greenboost/runtime.log
	echo spec >/var/run/cdi/greenboost.io-vram.yaml
	echo other >/var/run/cdi/other.yaml
}
`
	out, err := exec.Command("unshare", "--mount", "--propagation", "private",
		"sh", "-c", preamble+script+"echo '== end'\n", "sh", pkgFile).CombinedOutput()
	sections := parseSections(string(out))
	if err != nil || sections["end"] == nil {
		t.Fatalf("in a private namespace: %v\n%s", err, out)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("output:\n%s", out)
		}
	})
	return sections
}

// checker reports a section whose lines are not as wanted.
func checker(t *testing.T, sections map[string][]string) func(section string, ok bool, want string) {
	return func(section string, ok bool, want string) {
		t.Helper()
		if !ok {
			t.Errorf("%s: want %s, got:\n%s", section, want, strings.Join(sections[section], "\n"))
		}
	}
}

// installedEverywhere: dkms status says "greenboost/VERSION, K, x86_64:
// installed" for each kernel with headers, and nothing else.
func installedEverywhere(lines []string, version string, kernels []string) bool {
	for _, k := range kernels {
		if !slices.Contains(lines, "greenboost/"+version+", "+k+", x86_64: installed") {
			return false
		}
	}
	return len(lines) == len(kernels)
}

// installAndPurge runs dpkg -i, systemd-analyze verify on the installed
// units, dpkg -i of the same deb again, and dpkg --purge, and checks what
// each step left: the postinst builds the module through DKMS for every
// kernel with headers and enables the units on first install only; a
// reinstall keeps the module as it was built and what the admin disabled;
// purge removes the module, the state, the logs, the CDI spec and the
// units' enablement.
func installAndPurge(t *testing.T, repo, deb, version string) {
	kernels := headerKernels(t)
	sections := inNamespace(t, repo, version, kernels, `
echo "== install"; dpkg -i "$1" 2>&1
echo "== dkms after install"; dkms status -m greenboost 2>/dev/null
echo "== stamps after install"; stamps
echo "== vermagic"; for k in $kernels; do echo "$k: $(modinfo -F vermagic /lib/modules/"$k"/updates/dkms/greenboost.ko*)"; done
echo "== installed files"
cmp /usr/lib/systemd/system/greenboost-cdi.service "$repo"/packaging/systemd/greenboost-cdi.service && echo boot-unit
cmp /var/lib/dpkg/info/"$pkg".postrm "$repo"/packaging/scripts/postrm && echo postrm
echo "== enabled"; enabled
echo "== config"; env -u GREENBOOST_CONFIG greenboost-ctk config show >/dev/null && echo loads
echo "== units"; (cd /usr/lib/systemd/system && systemd-analyze verify greenboost-*.service greenboost-*.timer 2>&1) || echo "verify failed"
# The admin turns the timer off; a reinstall must leave it off.
echo "== admin disables the timer"; systemctl disable greenboost-gc.timer 2>&1
echo "== reinstall"; dpkg -i "$1" 2>&1
echo "== dkms after reinstall"; dkms status -m greenboost 2>/dev/null
echo "== stamps after reinstall"; stamps
echo "== enabled after reinstall"; enabled
echo "== admin enables the timer"; systemctl enable greenboost-gc.timer 2>&1
state
echo "== purge"; dpkg --purge "$pkg" 2>&1
echo "== dkms after purge"; dkms status -m greenboost 2>/dev/null
echo "== left"; ls -d /usr/src/greenboost-"$version" /etc/greenboost /usr/bin/greenboost-* /run/greenboost /var/log/greenboost \
	/var/run/cdi/greenboost.io-vram.yaml $wants 2>/dev/null || true; modules
echo "== kept"; cat /var/run/cdi/other.yaml
`, deb)
	check := checker(t, sections)
	check("dkms after install", installedEverywhere(sections["dkms after install"], version, kernels),
		"the postinst to add the module to DKMS and install it for each of "+strings.Join(kernels, ", "))
	for _, k := range kernels {
		check("vermagic", slices.ContainsFunc(sections["vermagic"], func(l string) bool { return strings.HasPrefix(l, k+": "+k+" ") }), "a module built for "+k)
	}
	check("installed files", slices.Equal(sections["installed files"], []string{"boot-unit", "postrm"}),
		"/usr/lib/systemd/system/greenboost-cdi.service and dpkg's postrm to be packaging/'s files")
	check("enabled", slices.Equal(sections["enabled"], []string{"enabled greenboost-gc.timer", "enabled greenboost-cdi.service", "enabled greenboost-cdi-refresh.path"}),
		"greenboost-gc.timer, greenboost-cdi.service and greenboost-cdi-refresh.path enabled (offline) by the first install")
	check("config", slices.Contains(sections["config"], "loads"), "/etc/greenboost/config.toml to load")
	check("units", len(sections["units"]) == 0, "systemd-analyze verify to find nothing in the installed units")
	check("dkms after reinstall", installedEverywhere(sections["dkms after reinstall"], version, kernels),
		"the module still registered and installed for every kernel after dpkg -i of the same deb")
	check("stamps after reinstall", len(sections["stamps after install"]) == len(kernels) && slices.Equal(sections["stamps after reinstall"], sections["stamps after install"]),
		"each kernel's greenboost.ko kept as the install built it:\n"+strings.Join(sections["stamps after install"], "\n"))
	check("enabled after reinstall", slices.Equal(sections["enabled after reinstall"], []string{"disabled greenboost-gc.timer", "enabled greenboost-cdi.service", "enabled greenboost-cdi-refresh.path"}),
		"the timer the admin disabled left disabled, greenboost-cdi.service left enabled")
	check("dkms after purge", len(sections["dkms after purge"]) == 0, "the prerm to remove the module from DKMS")
	check("left", len(sections["left"]) == 0, "nothing of the package left after purge: files, records, logs, the CDI spec, enablement, modules")
	check("kept", slices.Equal(sections["kept"], []string{"other"}), "another CDI spec left alone")
}

// rpmReinstallAndErase installs the rpm (rpm --nodeps: this is Debian),
// reinstalls it as dnf reinstall does (rpm runs the new %post, then the old
// %preun with 1), and erases it: the reinstall must leave the module
// registered and installed as it was, the erase remove it, the units'
// enablement, the records and the CDI spec, but keep the logs (rpm has no
// purge).
func rpmReinstallAndErase(t *testing.T, repo, rpm, version string) {
	kernels := headerKernels(t)
	sections := inNamespace(t, repo, version, kernels, `
echo "== install"; rpm -i --nodeps "$1" 2>&1
echo "== dkms after install"; dkms status -m greenboost 2>/dev/null
echo "== stamps after install"; stamps
echo "== enabled"; enabled
echo "== reinstall"; rpm -U --replacepkgs --nodeps "$1" 2>&1
echo "== dkms after reinstall"; dkms status -m greenboost 2>/dev/null
echo "== stamps after reinstall"; stamps
echo "== enabled after reinstall"; enabled
state
echo "== erase"; rpm -e --nodeps "$pkg" 2>&1
echo "== dkms after erase"; dkms status -m greenboost 2>/dev/null
echo "== left"; ls -d /usr/src/greenboost-"$version" /usr/bin/greenboost-* /run/greenboost /var/run/cdi/greenboost.io-vram.yaml $wants 2>/dev/null || true; modules
echo "== kept"; cat /var/log/greenboost/runtime.log /var/run/cdi/other.yaml
`, rpm)
	check := checker(t, sections)
	check("dkms after install", installedEverywhere(sections["dkms after install"], version, kernels),
		"the %post to add the module to DKMS and install it for each of "+strings.Join(kernels, ", "))
	check("enabled", slices.Equal(sections["enabled"], []string{"enabled greenboost-gc.timer", "enabled greenboost-cdi.service", "enabled greenboost-cdi-refresh.path"}),
		"the units enabled by the first install")
	check("dkms after reinstall", installedEverywhere(sections["dkms after reinstall"], version, kernels),
		"the module still registered and installed for every kernel after the reinstall's old %preun")
	check("stamps after reinstall", len(sections["stamps after install"]) == len(kernels) && slices.Equal(sections["stamps after reinstall"], sections["stamps after install"]),
		"each kernel's greenboost.ko kept as the install built it:\n"+strings.Join(sections["stamps after install"], "\n"))
	check("enabled after reinstall", slices.Equal(sections["enabled after reinstall"], []string{"enabled greenboost-gc.timer", "enabled greenboost-cdi.service", "enabled greenboost-cdi-refresh.path"}),
		"the units still enabled")
	check("dkms after erase", len(sections["dkms after erase"]) == 0, "the %preun to remove the module from DKMS")
	check("left", len(sections["left"]) == 0, "nothing of the package left after erase but the logs: files, records, the CDI spec, enablement, modules")
	check("kept", slices.Equal(sections["kept"], []string{"log", "other"}), "the logs and another CDI spec left alone")
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
		"/usr/share/doc/" + packageName + "/copyright",
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

// ownedDirs are the directories the rpm owns (nfpm.yaml's type: dir).
func ownedDirs(version string) []string {
	return []string{
		"/etc/greenboost", "/usr/share/greenboost", "/usr/share/greenboost/engines",
		"/usr/src/greenboost-" + version, "/usr/share/doc/" + packageName,
	}
}

// gitFiles lists dir's files as the working tree has them: tracked and not
// deleted, or new and not ignored (build outputs are).
func gitFiles(t *testing.T, repo, dir string) []string {
	out := mustOutput(t, "git", "-C", repo, "ls-files", "--cached", "--others", "--exclude-standard", "--", dir)
	var files []string
	for _, f := range strings.Fields(out) {
		if _, err := os.Stat(filepath.Join(repo, f)); err == nil && !slices.Contains(files, f) {
			files = append(files, f)
		}
	}
	if len(files) == 0 {
		t.Fatalf("git ls-files %s: nothing", dir)
	}
	return files
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
