package config

import (
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/pelletier/go-toml/v2"
)

func writeConfig(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "config.toml")
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestLoadMissingFileGivesDefaults(t *testing.T) {
	path := filepath.Join(t.TempDir(), "absent.toml")
	cfg, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	want := Default()
	want.Path = path
	got, _ := cfg.Marshal()
	exp, _ := want.Marshal()
	if string(got) != string(exp) || cfg.Path != path {
		t.Fatalf("defaults differ:\n%s\nwant\n%s", got, exp)
	}
	if !cfg.Limits.Enforce || cfg.Kmod.Load != "auto" || cfg.Hook.StateDir != "/run/greenboost" {
		t.Fatalf("unexpected defaults: %+v", cfg)
	}
}

// designDefaults is the config of DESIGN.md §4, as written there: every
// default must be the contract's.
const designDefaults = `
[runtime]
runtimes = ["runc", "crun"]
log-file = "/var/log/greenboost/runtime.log"
log-level = "info"
[device]
host-path = "/dev/greenboost"
[library]
host-paths = ["/usr/local/lib/libgreenboost_cuda.so", "/usr/lib/x86_64-linux-gnu/libgreenboost_cuda.so", "/usr/lib64/libgreenboost_cuda.so"]
container-path = "/usr/lib/greenboost/libgreenboost_cuda.so"
[kmod]
load = "auto"
module = "greenboost"
params = ""
[limits]
ram = "unlimited"
nvme = "unlimited"
enforce = true
[hook]
path = "/usr/bin/greenboost-hook"
state-dir = "/run/greenboost"
`

// ourDefaults are the defaults of the keys this project adds to DESIGN.md's.
const ourDefaults = `
[limits]
max-ram = "unlimited"
max-nvme = "unlimited"
`

func TestDefaultsAreTheDesigns(t *testing.T) {
	// Decoded over nothing, so that a key left out here is a zero value,
	// not Default()'s compared with itself.
	design := &Config{}
	dec := toml.NewDecoder(strings.NewReader(strings.Replace(designDefaults, "[limits]\n", ourDefaults, 1)))
	dec.DisallowUnknownFields()
	dec.EnableUnmarshalerInterface()
	if err := dec.Decode(design); err != nil {
		t.Fatal(err)
	}
	design.Path = DefaultPath
	if !reflect.DeepEqual(Default(), design) {
		t.Fatalf("defaults differ from DESIGN.md §4:\n%+v\nwant\n%+v", Default(), design)
	}
	if Default().Path != "/etc/greenboost/config.toml" {
		t.Fatalf("default path %s", Default().Path)
	}
}

func TestDefaultRoundTrips(t *testing.T) {
	data, err := Default().Marshal()
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := Load(writeConfig(t, string(data)))
	if err != nil {
		t.Fatalf("the printed defaults do not load: %v\n%s", err, data)
	}
	again, _ := cfg.Marshal()
	if string(again) != string(data) {
		t.Fatalf("round trip changed the config:\n%s\nvs\n%s", again, data)
	}
}

// config show prints a profile as written: a tier it leaves out (which
// falls back to [limits]) is left out, not printed as an empty size.
func TestProfileTierLeftOutIsNotPrinted(t *testing.T) {
	cfg, err := Load(writeConfig(t, "[limits]\nnvme = \"2G\"\n[limits.profiles.small]\nram = \"1G\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	data, err := cfg.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(data), "nvme = ''") || !strings.Contains(string(data), "[limits.profiles.small]\nram = '1G'\n") {
		t.Fatalf("printed config:\n%s", data)
	}
	if _, nvme, err := cfg.ProfileLimits("small"); err != nil || nvme != "2G" {
		t.Fatalf("profile small's nvme = %q, %v; want [limits] nvme", nvme, err)
	}
}

func TestLoadOverridesOnlyGivenKeys(t *testing.T) {
	cfg, err := Load(writeConfig(t, `
[runtime]
runtimes = ["crun", "/usr/local/sbin/runc"]
[limits]
ram = "8G"
enforce = false
[limits.profiles.small]
ram = "1G"
`))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Runtime.Runtimes[0] != "crun" || cfg.Limits.RAM != "8G" || cfg.Limits.Enforce {
		t.Fatalf("values not read: %+v", cfg)
	}
	if cfg.Runtime.LogLevel != "info" || cfg.Limits.NVMe != "unlimited" {
		t.Fatalf("defaults lost: %+v", cfg)
	}
	ram, nvme, err := cfg.ProfileLimits("small")
	if err != nil || ram != "1G" || nvme != "unlimited" {
		t.Fatalf("profile small = %q %q %v", ram, nvme, err)
	}
	if _, _, err := cfg.ProfileLimits("huge"); err == nil || !strings.Contains(err.Error(), "limits.profiles.huge") {
		t.Fatalf("unknown profile error = %v", err)
	}
}

// DESIGN.md §4 allows integer bytes: in the file that is a string or a TOML
// integer, underscores and hex included.
func TestLoadTakesIntegerSizes(t *testing.T) {
	cfg, err := Load(writeConfig(t, `
[limits]
ram = 8_589_934_592
nvme = 0
[limits.profiles.small]
ram = 0x40000000
nvme = "2G"
`))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Limits.RAM != "8589934592" || cfg.Limits.NVMe != "0" {
		t.Fatalf("limits = %q %q", cfg.Limits.RAM, cfg.Limits.NVMe)
	}
	ram, nvme, err := cfg.ProfileLimits("small")
	if err != nil || ram != "1073741824" || nvme != "2G" {
		t.Fatalf("profile small = %q %q %v", ram, nvme, err)
	}
	// Above TOML's int64 but below 2^64 bytes, as the same digits in quotes.
	cfg, err = Load(writeConfig(t, "[limits]\nram = 9_223_372_036_854_775_808\n"))
	if err != nil || cfg.Limits.RAM != "9223372036854775808" {
		t.Fatalf("limits.ram = %v, %v", cfg, err)
	}
}

func TestLoadErrorsNameKeyAndFile(t *testing.T) {
	tests := []struct {
		name, content string
		want          []string
	}{
		{"unknown key", "[limits]\nram_limit = \"1G\"\n", []string{"limits.ram_limit", "unknown key"}},
		{"unknown table", "[nvidia]\nx = 1\n", []string{"nvidia"}},
		{"bad size", "[limits]\nram = \"lots\"\n", []string{"limits.ram", "lots", "unlimited"}},
		{"bad profile size", "[limits.profiles.small]\nnvme = \"-3\"\n", []string{"limits.profiles.small.nvme", "-3"}},
		{"bad cap", "[limits]\nmax-ram = \"half\"\n", []string{"limits.max-ram", "half"}},
		{"default above its cap", "[limits]\nmax-ram = \"16G\"\n", []string{"limits.ram", `"unlimited"`, "limits.max-ram", "16G or less"}},
		{"profile above its cap", "[limits]\nnvme = \"1T\"\nmax-nvme = \"1T\"\n[limits.profiles.big]\nnvme = \"2T\"\n", []string{"limits.profiles.big.nvme", `"2T"`, "limits.max-nvme"}},
		{"bad load", "[kmod]\nload = \"always\"\n", []string{"kmod.load", "always"}},
		{"bad level", "[runtime]\nlog-level = \"loud\"\n", []string{"runtime.log-level", "loud"}},
		{"wrong type", "[limits]\nenforce = \"yes\"\n", []string{"limits.enforce", "line 2", "expected true or false, not a TOML string"}},
		{"string for a list", "[runtime]\nruntimes = \"crun\"\n", []string{"runtime.runtimes", "expected a list of strings"}},
		{"integer for a string", "[runtime]\nlog-level = 3\n", []string{"runtime.log-level", "expected a string in quotes, not a TOML integer"}},
		{"string for a profile", "[limits.profiles]\nsmall = \"1G\"\n", []string{"limits.profiles.small", "line 2", "[limits.profiles.small] with ram = \"1G\"", "not a TOML string"}},
		{"integer for the profiles", "[limits]\nprofiles = 1\n", []string{"limits.profiles", "a table per profile", "not a TOML integer"}},
		{"string for a section", "limits = \"x\"\n", []string{"key limits", "a table: a [section] with its keys", "not a TOML string"}},
		{"relative path", "[device]\nhost-path = \"dev/greenboost\"\n", []string{"device.host-path"}},
		{"bad profile name", "[limits.profiles.\"-x\"]\nram = \"1G\"\n", []string{"limits.profiles.-x"}},
		{"profile named ext", "[limits.profiles.ext]\nram = \"1G\"\n", []string{"limits.profiles.ext"}},
		// CDI device names end with a letter or digit: cdi generate would fail
		{"profile name ending in -", "[limits.profiles.small-]\nram = \"1G\"\n", []string{"limits.profiles.small-", "ending with a letter or digit"}},
		{"empty runtimes", "[runtime]\nruntimes = []\n", []string{"runtime.runtimes"}},
		{"empty runtime", "[runtime]\nruntimes = [\"\", \"runc\"]\n", []string{"runtime.runtimes", "empty entry", "absolute path"}},
		{"relative runtime", "[runtime]\nruntimes = [\"runc\", \"./runc\"]\n", []string{"runtime.runtimes", `"./runc"`, "relative path", `a name looked up on PATH, such as "runc", or an absolute path`}},
		{"runtime in a relative folder", "[runtime]\nruntimes = [\"bin/crun\"]\n", []string{"runtime.runtimes", `"bin/crun"`, "relative path"}},
		{"library path LD_PRELOAD would split", "[library]\ncontainer-path = \"/usr/lib/my lib/libgreenboost_cuda.so\"\n", []string{"library.container-path", "colon or white space"}},
		{"relative module file", "[kmod]\nmodule = \"greenboost.ko\"\n", []string{"kmod.module", `"greenboost.ko"`, "relative path", "absolute path"}},
		{"module in a relative folder", "[kmod]\nmodule = \"build/greenboost.ko.xz\"\n", []string{"kmod.module", `"build/greenboost.ko.xz"`, "relative path"}},
		{"relative log file", "[runtime]\nlog-file = \"runtime.log\"\n", []string{"runtime.log-file", "runtime.log"}},
		{"empty default size", "[limits]\nnvme = \"\"\n", []string{"limits.nvme", "unlimited"}},
		{"lone i", "[limits]\nram = \"1i\"\n", []string{"limits.ram", "1i"}},
		{"negative TOML integer", "[limits]\nram = -1\n", []string{"limits.ram", "-1", "unlimited"}},
		{"size beyond TOML's integers", "[limits]\nram = 18446744073709551615\n", []string{"key limits.ram:", `"18446744073709551615"`, "too large", "expected " + SizeForm}},
		{"profile size beyond TOML's integers", "[limits.profiles.small]\nnvme = 99_999_999_999_999_999_999\n", []string{"key limits.profiles.small.nvme:", `"99999999999999999999"`, "too large"}},
		{"size as a TOML float", "[limits]\nram = 1.5\n", []string{"limits.ram", "1.5", "must be an integer"}},
		{"profile size as a TOML boolean", "[limits.profiles.small]\nnvme = true\n", []string{"limits.profiles.small.nvme", "true", "unlimited"}},
		{"syntax", "[limits\n", []string{"line 1"}},
		// TOML keys are case-sensitive; the decoder alone would take RAM as ram.
		{"key in another case", "[limits]\nram = \"1G\"\nRAM = \"2G\"\n", []string{"unknown key limits.RAM", "case-sensitive", "did you mean limits.ram?"}},
		{"table in another case", "[Limits]\nram = \"1G\"\n", []string{"unknown key Limits", "did you mean limits?"}},
		{"dotted key in another case", "limits.Enforce = false\n", []string{"unknown key limits.Enforce", "did you mean limits.enforce?"}},
		{"profile key in another case", "[limits]\nprofiles = { small = { Nvme = \"1G\" } }\n", []string{"unknown key limits.profiles.small.Nvme", "did you mean limits.profiles.small.nvme?"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeConfig(t, tt.content)
			_, err := Load(path)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range append(tt.want, path) {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

// checkKeyCase skips files whose keys have no foldable rune, which can match
// a tag only exactly if no tag has one either.
func TestKeysAreLowerCase(t *testing.T) {
	var walk func(path string, typ reflect.Type)
	walk = func(path string, typ reflect.Type) {
		switch typ.Kind() {
		case reflect.Map:
			walk(path+"NAME.", typ.Elem())
		case reflect.Struct:
			for i := range typ.NumField() {
				f := typ.Field(i)
				if name := tagName(f); name != "-" {
					if strings.ContainsFunc(name, foldable) {
						t.Errorf("key %s%s is not lower-case ASCII", path, name)
					}
					walk(path+name+".", f.Type)
				}
			}
		}
	}
	walk("", reflect.TypeFor[Config]())
}

// The second parse is skipped only where no key can differ from ours in
// case: upper-case or non-ASCII bytes in comment lines alone.
func TestMayHoldFoldedKey(t *testing.T) {
	for _, tt := range []struct {
		data string
		want bool
	}{
		// values, comments and lines without a key hold none
		{"[limits]\n# the T2 budget\n  # Default\nram = \"16G\" # Max\nnvme = \"1T\"\n", false},
		{"[library]\nhost-paths = [\"/opt/GB/lib.so\", \"/x=Y\"]\n", false},
		{"[kmod]\nparams = \"\"\"\nt3_path=/var/lib/X\"\"\"\n", false},
		// keys
		{"[limits]\nRAM = \"1G\"\n", true},
		{"[limits]\n\"Ram\" = \"1G\"\n", true},
		{"Limits.ram = \"1G\"\n", true},
		{"[Limits]\n", true},
		{"[limits.profiles.\"a=B\"]\n", true},
		{"[limits]\nram\u212a = \"1G\"\n", true}, // KELVIN SIGN folds to k
		{"[limits]\nprofiles = { small = { Ram = \"1G\" } }\n", true},
		{"[limits]\nr\xffm = \"1G\"\n", true},
		{"= \"1G\"\n", false}, // no key: the decoder's syntax error
		// lines a value runs over are read whole: conservative
		{"[library]\nhost-paths = [\n  \"/opt/GB/lib.so\",\n]\n", true},
	} {
		if got := mayHoldFoldedKey([]byte(tt.data)); got != tt.want {
			t.Errorf("mayHoldFoldedKey(%q) = %v, want %v", tt.data, got, tt.want)
		}
	}
}

// The quick look never passes over a key the parsed check refuses.
func FuzzKeyCase(f *testing.F) {
	for _, seed := range []string{
		"[limits]\nRAM = \"1G\"\n", "Limits.ram = 1\n", "[limits]\nprofiles = { a = { Ram = \"1G\" } }\n",
		"[limits.Profiles.x]\n", "[runtime]\nruntimes = [\"A\",\n\"B\"]\n", "[hook]\n\"Path\" = \"/x\"\n",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if err := checkParsedKeyCase(data); err != nil && !mayHoldFoldedKey(data) {
			t.Fatalf("%q: the quick look found nothing, the parsed check: %v", data, err)
		}
	})
}

// Profile names are the config's own, in any case; the keys in them are
// checked in inline tables as in sections.
func TestLoadKeepsProfileNamesAsWritten(t *testing.T) {
	cfg, err := Load(writeConfig(t, "[limits.profiles]\nBig = { ram = \"1G\" }\n[limits.profiles.SMALL]\nnvme = \"2G\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Limits.Profiles; len(got) != 2 || got["Big"].RAM != "1G" || got["SMALL"].NVMe != "2G" {
		t.Fatalf("profiles = %+v", got)
	}
}

func TestPathFromEnv(t *testing.T) {
	for _, tt := range []struct {
		name, value, want string
		set               bool
	}{
		{"unset", "", DefaultPath, false},
		{"empty", "", DefaultPath, true},
		{"set", "/tmp/x.toml", "/tmp/x.toml", true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv(PathEnv, tt.value)
			if !tt.set {
				os.Unsetenv(PathEnv)
			}
			if got := PathFromEnv(); got != tt.want {
				t.Fatalf("PathFromEnv() = %q, want %q", got, tt.want)
			}
		})
	}
}

// An empty path (GREENBOOST_CONFIG= or --config "") is the default file, as
// PathFromEnv has it, not the current directory: the path goes into hook
// entries.
func TestLoadEmptyPathIsTheDefault(t *testing.T) {
	t.Chdir(t.TempDir())
	cfg, err := Load("")
	if err != nil {
		// This machine's own /etc/greenboost/config.toml did not load:
		// still the default file it must name.
		if !strings.Contains(err.Error(), "config "+DefaultPath+":") {
			t.Fatalf("Load(\"\") error %q does not name %s", err, DefaultPath)
		}
		return
	}
	if cfg.Path != DefaultPath {
		t.Fatalf("Load(\"\").Path = %q, want %q", cfg.Path, DefaultPath)
	}
}

func TestRuntimesIsLenient(t *testing.T) {
	if got := Runtimes(writeConfig(t, "[runtime]\nruntimes = [\"/opt/crun\"]\n[bogus]\n")); len(got) != 1 || got[0] != "/opt/crun" {
		t.Fatalf("Runtimes = %v", got)
	}
	if got := Runtimes(writeConfig(t, "not toml [")); got[0] != "runc" {
		t.Fatalf("Runtimes on a broken file = %v, want the defaults", got)
	}
	if got := Runtimes("/nonexistent/config.toml"); got[0] != "runc" || got[1] != "crun" {
		t.Fatalf("Runtimes on a missing file = %v", got)
	}
	for _, bad := range []string{
		"[runtime]\nruntimes = \"crun\"\n",
		"[runtime]\nruntimes = [\"crun\", 1]\n",
		"[runtime]\nruntimes = []\n",
		"[runtime]\nruntimes = [\"crun\"]\n[limits\n",
	} {
		if got := Runtimes(writeConfig(t, bad)); !slices.Equal(got, Default().Runtime.Runtimes) {
			t.Errorf("Runtimes of %q = %v, want the defaults", bad, got)
		}
	}
}

// Runtimes reads the key itself rather than decoding the file: it must find
// what Load decodes in every form TOML allows.
func TestRuntimesAgreesWithLoad(t *testing.T) {
	for _, doc := range []string{
		"[runtime]\nruntimes = [\"/opt/crun\", \"runc\"]\n",
		"runtime.runtimes = [\"/opt/crun\"]\n",
		"runtime = { runtimes = [\"crun\"], log-level = \"debug\" }\n",
		"[runtime]\nlog-level = \"debug\"\nruntimes = [\n  'runc', # first\n  \"/opt/\\u0063run\",\n]\n[limits]\nram = \"1G\"\n",
		"[limits]\nram = \"1G\"\n[runtime]\nruntimes = [\"\"\"crun\"\"\"]\n",
		"[limits]\nram = \"1G\"\n",
	} {
		path := writeConfig(t, doc)
		cfg, err := Load(path)
		if err != nil {
			t.Fatalf("Load of %q: %v", doc, err)
		}
		if got := Runtimes(path); !slices.Equal(got, cfg.Runtime.Runtimes) {
			t.Errorf("Runtimes of %q = %q, Load decodes %q", doc, got, cfg.Runtime.Runtimes)
		}
	}
}

// TestPackagedConfigIsTheDefault: the packages install packaging/config.toml
// as /etc/greenboost/config.toml, which must say what the code defaults to.
func TestPackagedConfigIsTheDefault(t *testing.T) {
	packaged, err := os.ReadFile("../../packaging/config.toml")
	if err != nil {
		t.Fatal(err)
	}
	want, err := Default().Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if string(packaged) != string(want) {
		t.Errorf("packaging/config.toml is not the defaults; regenerate it: bin/greenboost-ctk config default > packaging/config.toml")
	}
}

// The path goes into hook entries, and runc runs hooks in the bundle: a
// relative one would name another file there.
func TestLoadMakesPathAbsolute(t *testing.T) {
	dir := t.TempDir()
	writeAt := filepath.Join(dir, "gb.toml")
	if err := os.WriteFile(writeAt, []byte("[limits]\nram = \"1G\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Chdir(dir)
	for _, rel := range []string{"gb.toml", "absent.toml"} {
		cfg, err := Load(rel)
		if err != nil {
			t.Fatal(err)
		}
		if want := filepath.Join(dir, rel); cfg.Path != want {
			t.Errorf("Load(%q).Path = %q, want %q", rel, cfg.Path, want)
		}
	}
}
