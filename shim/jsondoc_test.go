package shim

import (
	"encoding/json"
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
	unknown, err := decodeKeepingUnknown([]byte(in), &p)
	if err != nil || unknown == nil {
		t.Fatalf("unknown members not noticed: %v", err)
	}
	p.Env = append(p.Env, "B=2")
	p.Rlimits[1].Soft = 2
	out, err := encodeKeepingUnknown(&p, unknown)
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

	known := `{"env":["A=1"],"cwd":"/"}`
	if unknown, err := decodeKeepingUnknown([]byte(known), &specs.Process{}); err != nil || unknown != nil {
		t.Errorf("a process with only known members: %q, %v; want nothing kept aside", unknown, err)
	}
	if _, err := decodeKeepingUnknown([]byte(`{"env":"A=1"}`), &specs.Process{}); err == nil {
		t.Error("a malformed process decoded")
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
	unknown, err := decodeKeepingUnknown([]byte(in), &r)
	if err != nil || unknown == nil {
		t.Fatalf("unknown members not noticed: %v", err)
	}
	for i := 0; i < 20; i++ { // map order varies from run to run
		out, err := encodeKeepingUnknown(&r, unknown)
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
	unknown, err := decodeKeepingUnknown([]byte(in), &s)
	if err != nil || unknown == nil {
		t.Fatalf("unknown members not noticed: %v", err)
	}
	s.Linux.Devices = nil
	out, err := encodeKeepingUnknown(&s, unknown)
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
