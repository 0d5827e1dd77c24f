package hook

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"strings"
	"testing"
)

func FuzzReadState(f *testing.F) {
	f.Add([]byte(`{"ociVersion":"1.0.2","id":"c1","status":"created","pid":42,"bundle":"/b","annotations":{"greenboost.io/ram-limit":"64M"}}`))
	f.Add([]byte(`{"ociVersion":"1.0.0","id":"c1","status":"stopped","pid":0,"bundle":"/b"}`)) // crun's poststop
	f.Add([]byte(`{"id":""}`))
	f.Add([]byte(`{"id":"c1","pid":"42"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := ReadState(bytes.NewReader(data))
		if err != nil {
			return
		}
		if err := validID(s.ID); err != nil {
			t.Fatalf("accepted a state whose id no record can have: %v", err)
		}
		// What was accepted survives a round trip unchanged: the hook
		// relies on exactly these fields.
		again, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		s2, err := ReadState(bytes.NewReader(again))
		if err != nil {
			t.Fatalf("re-encoded state does not read: %v", err)
		}
		if s2.ID != s.ID || s2.Pid != s.Pid || s2.Bundle != s.Bundle || !maps.Equal(s2.Annotations, s.Annotations) {
			t.Fatalf("round trip changed the state: %+v -> %+v", s, s2)
		}
	})
}

// A container id the record writer would refuse fails at once, before the
// hook warns, sets a budget or collects: `../x` would name a file outside
// the record dir.
func TestReadStateRefusesAnInvalidID(t *testing.T) {
	for _, id := range []string{"../x", "a/b", "..", ".", "a\x00b"} {
		data, _ := json.Marshal(map[string]any{"id": id, "pid": 42, "bundle": "/b"})
		_, err := ReadState(bytes.NewReader(data))
		if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("invalid container id %q", id)) {
			t.Errorf("id %q: error = %v, want one naming the invalid id", id, err)
		}
	}
	// runc and crun take longer ids than a record file can be named after.
	for n, valid := range map[int]bool{250: true, 251: false} {
		data, _ := json.Marshal(map[string]any{"id": strings.Repeat("y", n), "pid": 42, "bundle": "/b"})
		_, err := ReadState(bytes.NewReader(data))
		if valid != (err == nil) || (err != nil && !strings.Contains(err.Error(), "at most 250 bytes")) {
			t.Errorf("id of %d bytes: error = %v, want valid %v", n, err, valid)
		}
	}
}

func TestPrestartRefusesAnInvalidIDUpFront(t *testing.T) {
	cfg, st := hookFixture(t, nil, nil)
	cfg.Limits.Enforce = false // the warning came first here
	st.ID = "../x"
	var warn bytes.Buffer
	err := runStage(t, New(cfg, "", &warn), Prestart, st)
	if err == nil || !strings.Contains(err.Error(), `invalid container id "../x"`) || warn.Len() != 0 {
		t.Fatalf("error = %v, warnings %q: want the invalid id refused before any warning", err, warn.String())
	}
}

// Without an absolute bundle the hook would read its requests from a
// config.json wherever it runs.
func TestPrestartNeedsAnAbsoluteBundle(t *testing.T) {
	for _, bundle := range []string{"", "bundle"} {
		cfg, st := hookFixture(t, nil, nil)
		st.Bundle = bundle
		err := runStage(t, New(cfg, "", io.Discard), Prestart, st)
		if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("bundle %q is not an absolute path", bundle)) {
			t.Errorf("bundle %q: error = %v, want it refused", bundle, err)
		}
	}
}

// A state over the limit is said to be too large, not cut short.
func TestReadStateTooLarge(t *testing.T) {
	big := `{"id":"c1","pid":42,"bundle":"/b","annotations":{"x":"` + strings.Repeat("a", maxStateSize) + `"}}`
	if _, err := ReadState(strings.NewReader(big)); err == nil || !strings.Contains(err.Error(), "over 1 MiB") {
		t.Fatalf("error = %v, want the state named too large", err)
	}
}
