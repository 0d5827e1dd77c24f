package hook

import (
	"bytes"
	"encoding/json"
	"maps"
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
		if s.ID == "" {
			t.Fatal("accepted a state without a container id")
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
