package request

import (
	"strings"
	"testing"

	"github.com/greenboost/greenboost-container-toolkit/internal/config"
)

var defaults = [2]Value{{Key: "limits.ram", Raw: "2G"}, {Key: "limits.nvme", Raw: "unlimited"}}

func TestPrecedence(t *testing.T) {
	tests := []struct {
		name        string
		annotations map[string]string
		env         []string
		ram, nvme   uint64
	}{
		{"config defaults", nil, nil, 2 << 30, 0},
		{"env", nil, []string{"GREENBOOST_RAM_LIMIT=64M", "GREENBOOST_NVME_LIMIT=1T"}, 64 << 20, 1 << 40},
		{"annotation beats env", map[string]string{AnnotationRAM: "128M"}, []string{"GREENBOOST_RAM_LIMIT=64M"}, 128 << 20, 0},
		{"last env entry wins", nil, []string{"GREENBOOST_RAM_LIMIT=1M", "GREENBOOST_RAM_LIMIT=3M"}, 3 << 20, 0},
		{"unlimited asked", nil, []string{"GREENBOOST_RAM_LIMIT=unlimited"}, 0, 0},
		{"other env ignored", nil, []string{"PATH=/bin", "NOEQUALS"}, 2 << 30, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := Parse(tt.annotations, tt.env)
			if err != nil {
				t.Fatal(err)
			}
			ram, nvme, err := req.Limits(defaults[0], defaults[1])
			if err != nil {
				t.Fatal(err)
			}
			if ram != tt.ram || nvme != tt.nvme {
				t.Fatalf("got ram=%d nvme=%d, want %d %d", ram, nvme, tt.ram, tt.nvme)
			}
		})
	}
}

func TestBadValueNamesKeyValueAndForm(t *testing.T) {
	for _, tt := range []struct {
		annotations map[string]string
		env         []string
		key, value  string
		why         string // the parser's reason, kept
	}{
		{nil, []string{"GREENBOOST_RAM_LIMIT=bogus"}, EnvRAM, "bogus", ""},
		{map[string]string{AnnotationNVMe: "1Q"}, nil, AnnotationNVMe, "1Q", ""},
		{nil, []string{"GREENBOOST_RAM_LIMIT=0.0001K"}, EnvRAM, "0.0001K", "less than one byte"},
		{map[string]string{AnnotationRAM: "16777216T"}, nil, AnnotationRAM, "16777216T", "too large"},
	} {
		req, err := Parse(tt.annotations, tt.env)
		if err != nil {
			t.Fatal(err)
		}
		_, _, err = req.Limits(defaults[0], defaults[1])
		if err == nil {
			t.Fatalf("%s=%s accepted", tt.key, tt.value)
		}
		msg := err.Error()
		if !strings.Contains(msg, tt.key) || !strings.Contains(msg, `"`+tt.value+`"`) || !strings.Contains(msg, "expected") || strings.Contains(msg, "\n") {
			t.Fatalf("error %q must be one line naming %s, %q and the expected form", msg, tt.key, tt.value)
		}
		if !strings.Contains(msg, tt.why) {
			t.Fatalf("error %q lost the reason %q", msg, tt.why)
		}
	}
}

func TestDisable(t *testing.T) {
	for _, tt := range []struct {
		annotations map[string]string
		env         []string
		want        bool
		wantErr     string // what the error names, besides "expected true or false"
	}{
		{nil, nil, false, ""},
		{nil, []string{"GREENBOOST_DISABLE=1"}, true, ""},
		{nil, []string{"GREENBOOST_DISABLE=0"}, false, ""},
		{nil, []string{"GREENBOOST_DISABLE="}, false, ""},
		{nil, []string{"GREENBOOST_DISABLE=TRUE"}, true, ""},
		{map[string]string{AnnotationDisable: "true"}, nil, true, ""},
		{map[string]string{AnnotationDisable: "false"}, nil, false, ""},
		// The annotation, when present, decides: it comes first, as for budgets.
		{map[string]string{AnnotationDisable: "false"}, []string{"GREENBOOST_DISABLE=1"}, false, ""},
		{map[string]string{AnnotationDisable: "true"}, []string{"GREENBOOST_DISABLE=0"}, true, ""},
		{map[string]string{AnnotationDisable: ""}, []string{"GREENBOOST_DISABLE=1"}, true, ""},
		// A value that is not a boolean fails, whatever the other says.
		{map[string]string{AnnotationDisable: "yes"}, []string{"GREENBOOST_DISABLE=1"}, false, `invalid greenboost.io/disable "yes"`},
		{nil, []string{"GREENBOOST_DISABLE=yes"}, false, `invalid GREENBOOST_DISABLE "yes"`},
		{map[string]string{AnnotationDisable: " "}, []string{"GREENBOOST_DISABLE=on"}, false, `invalid GREENBOOST_DISABLE "on"`},
	} {
		req, err := Parse(tt.annotations, tt.env)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), "expected true or false") {
				t.Errorf("Parse(%v, %v): %v, want an error naming %s and the expected form", tt.annotations, tt.env, err, tt.wantErr)
			}
			continue
		}
		if err != nil || req.Disable != tt.want {
			t.Errorf("Parse(%v, %v) = %v, %v; want Disable %v", tt.annotations, tt.env, req.Disable, err, tt.want)
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add("greenboost.io/ram-limit", "1G", "GREENBOOST_NVME_LIMIT=2T")
	f.Add("greenboost.io/disable", "true", "GREENBOOST_RAM_LIMIT=")
	f.Add("x", "y", "=")
	f.Fuzz(func(t *testing.T, key, value, envEntry string) {
		req, err := Parse(map[string]string{key: value}, []string{envEntry})
		if err != nil {
			if strings.Contains(err.Error(), "\n") || !strings.Contains(err.Error(), "expected") {
				t.Fatalf("error is not one line with the expected form: %q", err)
			}
			return
		}
		ram, nvme, err := req.Limits(defaults[0], defaults[1])
		if err != nil {
			if strings.Contains(err.Error(), "\n") || !strings.Contains(err.Error(), "expected") {
				t.Fatalf("error is not one line with the expected form: %q", err)
			}
			return
		}
		if req.RAM.Key == "" && ram != 2<<30 || req.NVMe.Key == "" && nvme != 0 {
			t.Fatalf("defaults not applied: %d %d", ram, nvme)
		}
	})
}

// [limits] max-ram and max-nvme bound what a container may ask for, from any
// source: its annotations, its env (an image's ENV too) and its profile.
func TestResolveWithinCaps(t *testing.T) {
	cfg := config.Default()
	cfg.Path = "/etc/greenboost/config.toml"
	cfg.Limits.RAM, cfg.Limits.MaxRAM = "8G", "16G"
	cfg.Limits.MaxNVMe = "1T"
	cfg.Limits.NVMe = "100G"
	cfg.Limits.Profiles = map[string]config.Profile{"small": {RAM: "1G"}}
	for _, tt := range []struct {
		name        string
		annotations map[string]string
		env         []string
		profile     string
		ram, nvme   uint64
		wantErr     []string
	}{
		{"the defaults", nil, nil, "", 8 << 30, 100 << 30, nil},
		{"at the cap", nil, []string{"GREENBOOST_RAM_LIMIT=16G"}, "", 16 << 30, 100 << 30, nil},
		{"a profile", nil, nil, "small", 1 << 30, 100 << 30, nil},
		{"env above", nil, []string{"GREENBOOST_RAM_LIMIT=17G"}, "", 0, 0, []string{`GREENBOOST_RAM_LIMIT "17G"`, `limits.max-ram = "16G"`, "/etc/greenboost/config.toml", "16G or less"}},
		{"unlimited asked", map[string]string{AnnotationNVMe: "unlimited"}, nil, "small", 0, 0, []string{`greenboost.io/nvme-limit "unlimited"`, "limits.max-nvme"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			req, err := Parse(tt.annotations, tt.env)
			if err != nil {
				t.Fatal(err)
			}
			ram, nvme, err := req.Resolve(cfg, tt.profile)
			if tt.wantErr == nil {
				if err != nil || ram != tt.ram || nvme != tt.nvme {
					t.Fatalf("Resolve = %d, %d, %v; want %d, %d", ram, nvme, err, tt.ram, tt.nvme)
				}
				return
			}
			if err == nil {
				t.Fatalf("Resolve = %d, %d; want an error", ram, nvme)
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}
