package shim

import (
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/opencontainers/runtime-spec/specs-go"
)

// TestUnknownMembersSurvive: what a newer engine writes and specs.Process
// does not know comes back after an edit, numbers exactly, in objects and in
// array elements the edit kept; an element the edit changed is the edit's.
func TestUnknownMembersSurvive(t *testing.T) {
	in := `{"env":["A=1"],"args":["sh"],"cwd":"/","futureHint":{"x":18446744073709551615},` +
		`"rlimits":[{"type":"RLIMIT_NOFILE","hard":1024,"soft":1024,"futureRlimitField":true},{"type":"RLIMIT_NPROC","hard":1,"soft":1,"gone":1}]}`
	var p specs.Process
	if err := json.Unmarshal([]byte(in), &p); err != nil {
		t.Fatal(err)
	}
	p.Env = append(p.Env, "B=2")
	p.Rlimits[1].Soft = 2
	out, err := encodeKeepingUnknown(&p, []byte(in))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"B=2"`, `"futureHint":{"x":18446744073709551615}`, `"futureRlimitField":true`, `"soft":2`} {
		if !strings.Contains(string(out), want) {
			t.Errorf("%s lacks %s", out, want)
		}
	}
	if strings.Contains(string(out), `"gone"`) {
		t.Errorf("%s merged a member into an element the edit changed", out)
	}

	// Without unknown members the output is the edit's own encoding (in the
	// file's member order).
	known := `{"env":["A=1"],"cwd":"/","rlimits":[{"type":"RLIMIT_NOFILE","hard":1,"soft":1}]}`
	var k specs.Process
	if err := json.Unmarshal([]byte(known), &k); err != nil {
		t.Fatal(err)
	}
	k.Rlimits = nil
	out, err = encodeKeepingUnknown(&k, []byte(known))
	var got, want any
	wantJSON, _ := json.Marshal(&k)
	if err != nil || json.Unmarshal(out, &got) != nil || json.Unmarshal(wantJSON, &want) != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("a process with only known members came out as %s (%v), want %s", out, err, wantJSON)
	}
}

// foldClass groups keys exactly as strings.EqualFold (encoding/json's key
// match) does, including the non-ASCII folds.
func TestFoldClass(t *testing.T) {
	keys := []string{"env", "ENV", "Env", "enV", "cwd", "args", "k", "K", "\u212a", "s", "S", "\u017f", "ß", "ẞ", "oomScoreAdj", "OOMSCOREADJ", "x-1", "X-1", ""}
	for _, a := range keys {
		for _, b := range keys {
			if same := foldClass(a) == foldClass(b); same != strings.EqualFold(a, b) {
				t.Errorf("foldClass(%q) == foldClass(%q) is %v, strings.EqualFold %v", a, b, same, !same)
			}
		}
	}
}

// Keys that differ only in case (rdma device names) each keep their own
// unknown members: a member goes to its exact key before a folded one.
func TestUnknownMembersKeepTheirExactKey(t *testing.T) {
	in := `{"rdma":{"a":{"hcaHandles":1,"x-ext":"a-only"},"A":{"hcaHandles":2}}}`
	var r specs.LinuxResources
	if err := json.Unmarshal([]byte(in), &r); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 20; i++ { // map order varies from run to run
		out, err := encodeKeepingUnknown(&r, []byte(in))
		if err != nil {
			t.Fatal(err)
		}
		var got map[string]map[string]map[string]any
		if err := json.Unmarshal(out, &got); err != nil {
			t.Fatal(err)
		}
		if got["rdma"]["a"]["x-ext"] != "a-only" || got["rdma"]["A"]["x-ext"] != nil {
			t.Fatalf("%s: x-ext moved off device a", out)
		}
	}
}

// A member the types know is the edit's: a list the edit emptied, which
// omitempty leaves out, does not come back from the original because other
// members were unknown (userNSDevices removes /dev/greenboost's node).
func TestKnownMembersTheEditDroppedStayDropped(t *testing.T) {
	in := `{"vendorX":1,"linux":{"devices":[{"path":"/dev/greenboost","type":"c","major":240,"minor":0}],"vendorY":{"a":1}}}`
	var s specs.Spec
	if err := json.Unmarshal([]byte(in), &s); err != nil {
		t.Fatal(err)
	}
	s.Linux.Devices = nil
	out, err := encodeKeepingUnknown(&s, []byte(in))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(out), "/dev/greenboost") {
		t.Errorf("%s: the device the edit removed came back", out)
	}
	for _, want := range []string{`"vendorX":1`, `"vendorY":{"a":1}`} {
		if !strings.Contains(string(out), want) {
			t.Errorf("%s lacks %s", out, want)
		}
	}
}

// Unknown members follow their array element, not its index: where the
// edits remove an element (CDI replacing a mount of the same destination,
// the user-namespace edit dropping a device node) or insert one before
// others, every element left alone keeps its own members, and one the edits
// made or replaced gets none.
func TestUnknownMembersFollowTheirElement(t *testing.T) {
	in := `{"mounts":[{"destination":"/a","x":"a"},{"destination":"/lib.so","source":"/old","x":"old"},{"destination":"/c","x":"c"},` +
		`{"destination":"/m","options":["ro"],"x":"m1"},{"destination":"/m","x":"m2"}],` +
		`"linux":{"devices":[{"path":"/dev/greenboost","type":"c","major":1,"minor":3,"x":"gb"},{"path":"/dev/fuse","type":"c","major":10,"minor":229,"x":"fuse"}]}}`
	for _, tt := range []struct {
		name            string
		edit            func(s *specs.Spec)
		mounts, devices []string // each element's x, in order; "" for none
	}{
		{"nothing changed", func(*specs.Spec) {}, []string{"a", "old", "c", "m1", "m2"}, []string{"gb", "fuse"}},
		{"a mount in the middle replaced at the end", func(s *specs.Spec) {
			s.Mounts = append(slices.Delete(s.Mounts, 1, 2), specs.Mount{Destination: "/lib.so", Source: "/new"})
		}, []string{"a", "c", "m1", "m2", ""}, []string{"gb", "fuse"}},
		{"the first device node removed", func(s *specs.Spec) {
			s.Linux.Devices = s.Linux.Devices[1:]
		}, []string{"a", "old", "c", "m1", "m2"}, []string{"fuse"}},
		{"a mount and a device inserted first", func(s *specs.Spec) {
			s.Mounts = slices.Insert(s.Mounts, 0, specs.Mount{Destination: "/new"})
			s.Linux.Devices = slices.Insert(s.Linux.Devices, 0, specs.LinuxDevice{Path: "/dev/new", Type: "c"})
		}, []string{"", "a", "old", "c", "m1", "m2"}, []string{"", "gb", "fuse"}},
		{"of two mounts at one destination, the first removed", func(s *specs.Spec) {
			s.Mounts = slices.Delete(s.Mounts, 3, 4)
		}, []string{"a", "old", "c", "m2"}, []string{"gb", "fuse"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var s specs.Spec
			if err := json.Unmarshal([]byte(in), &s); err != nil {
				t.Fatal(err)
			}
			tt.edit(&s)
			out, err := encodeKeepingUnknown(&s, []byte(in))
			if err != nil {
				t.Fatal(err)
			}
			type element struct{ X string }
			var got struct {
				Mounts []element
				Linux  struct{ Devices []element }
			}
			if err := json.Unmarshal(out, &got); err != nil {
				t.Fatal(err)
			}
			xs := func(elements []element) []string {
				var x []string
				for _, e := range elements {
					x = append(x, e.X)
				}
				return x
			}
			if !slices.Equal(xs(got.Mounts), tt.mounts) || !slices.Equal(xs(got.Linux.Devices), tt.devices) {
				t.Errorf("%s: mounts' x %q, devices' x %q; want %q, %q", out, xs(got.Mounts), xs(got.Linux.Devices), tt.mounts, tt.devices)
			}
		})
	}
}

// Members that match one field by case folding are each decoded into it, in
// order (encoding/json, and so runc): the patched spec has the field once,
// with the edit, and what each of them has that the edits do not use.
func TestMembersOfOneFieldKeepWhatEachHas(t *testing.T) {
	in := `{"Process":{"env":["A=1"],"cwd":"/x"},"vendor":1,"process":{"env":["B=2"],"args":["sh"]}}`
	var m specMembers
	if err := json.Unmarshal([]byte(in), &m); err != nil {
		t.Fatal(err)
	}
	m.Process.Env = append(m.Process.Env, "C=3")
	out, err := encodeKeepingUnknown(&m, []byte(in))
	if err != nil {
		t.Fatal(err)
	}
	var members map[string]json.RawMessage
	if err := json.Unmarshal(out, &members); err != nil {
		t.Fatal(err)
	}
	if len(members) != 2 || members["process"] == nil || string(members["vendor"]) != "1" {
		t.Fatalf("%s: want one process member and vendor", out)
	}
	var s specs.Spec
	if err := json.Unmarshal(out, &s); err != nil {
		t.Fatal(err)
	}
	if s.Process.Cwd != "/x" || !slices.Equal(s.Process.Args, []string{"sh"}) || !slices.Equal(s.Process.Env, []string{"B=2", "C=3"}) {
		t.Fatalf("%s: want cwd /x from the first member, args from the second, env as edited", out)
	}
}
