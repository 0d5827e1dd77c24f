package shim

import (
	"reflect"
	"testing"
)

func TestParseArgs(t *testing.T) {
	tests := []struct {
		name string
		argv []string
		want Args
	}{
		{"create with --bundle", []string{"create", "--bundle", "/b", "--pid-file", "/p", "id"}, Args{Verb: "create", Bundle: "/b", ID: "id"}},
		{"create with -b", []string{"create", "-b", "/b", "id"}, Args{Verb: "create", Bundle: "/b", ID: "id"}},
		{"create with --bundle=", []string{"create", "--bundle=/b", "id"}, Args{Verb: "create", Bundle: "/b", ID: "id"}},
		{"create with -bundle (go style)", []string{"create", "-bundle", "/b", "id"}, Args{Verb: "create", Bundle: "/b", ID: "id"}},
		{"create without bundle", []string{"create", "id"}, Args{Verb: "create", ID: "id"}},
		{"create with the id before its flags", []string{"create", "id", "--bundle", "/b", "--console-socket", "/s"}, Args{Verb: "create", Bundle: "/b", ID: "id"}},
		{"crun's create flags", []string{"create", "-f", "cfg.json", "--preserve-fds", "2", "--no-pivot", "id"}, Args{Verb: "create", ID: "id"}},
		{"run", []string{"run", "-b", "/b", "-d", "id"}, Args{Verb: "run", Bundle: "/b", ID: "id"}},
		{"docker's global flags", []string{"--root", "/run/runc", "--log", "/l.json", "--log-format", "json", "--systemd-cgroup", "create", "--bundle", "/b", "id"},
			Args{Verb: "create", Bundle: "/b", Log: "/l.json", LogFormat: "json", ID: "id"}},
		{"global flags with =", []string{"--root=/r", "--log=/l", "--debug", "create", "-b=/b", "id"}, Args{Verb: "create", Bundle: "/b", Log: "/l", Debug: true, ID: "id"}},
		{"start is pass-through", []string{"--root", "/r", "start", "id"}, Args{Verb: "start"}},
		{"delete does not look for a bundle", []string{"delete", "--force", "-b", "/x", "id"}, Args{Verb: "delete"}},
		{"unknown verb", []string{"frobnicate", "x"}, Args{Verb: "frobnicate"}},
		{"version", []string{"--version"}, Args{}},
		{"nothing", nil, Args{}},
		{"value that looks like a verb", []string{"--root", "create", "state", "id"}, Args{Verb: "state"}},
		{"bundle after --", []string{"create", "--", "-b", "/b"}, Args{Verb: "create", ID: "-b"}},
		{"exec with --process", []string{"--root", "/r", "exec", "--process", "/p.json", "--detach", "--pid-file", "/pid", "c1"},
			Args{Verb: "exec", GlobalArgs: []string{"--root", "/r"}, Process: "/p.json", ID: "c1"}},
		{"exec with -p=", []string{"exec", "-p=/p.json", "c1"}, Args{Verb: "exec", GlobalArgs: []string{}, Process: "/p.json", ID: "c1"}},
		{"exec of a command", []string{"exec", "-e", "A=1", "c1", "sh"}, Args{Verb: "exec", GlobalArgs: []string{}, ID: "c1"}},
		{"exec with runc 1.2's --pidfd-socket", []string{"exec", "--pidfd-socket", "/s", "-p", "/p.json", "c1", "-c"}, Args{Verb: "exec", GlobalArgs: []string{}, Process: "/p.json", ID: "c1"}},
		{"create with runc 1.2's --pidfd-socket", []string{"create", "--pidfd-socket", "/s", "-b", "/b", "c1"}, Args{Verb: "create", Bundle: "/b", ID: "c1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ParseArgs(tt.argv); !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("ParseArgs(%q) = %+v, want %+v", tt.argv, got, tt.want)
			}
		})
	}
}

func TestModifiesSpec(t *testing.T) {
	for verb, want := range map[string]bool{"create": true, "run": true, "start": false, "delete": false, "exec": false, "": false} {
		if got := (Args{Verb: verb}).ModifiesSpec(); got != want {
			t.Errorf("ModifiesSpec(%q) = %v", verb, got)
		}
	}
}
