package shim

import (
	"bytes"
	"encoding/json"
	"testing"
)

// FuzzSplitObject: for any valid JSON object, splitObject finds the members
// encoding/json finds, in order, each value exactly as written.
func FuzzSplitObject(f *testing.F) {
	for _, seed := range []string{
		`{}`, ` { } `, `{"a":1}`, "{\n\t\"a\" : [1, {\"b\": \"}\"}],\r\n\"c\":null }",
		`{"k\"ey":"v\\\"al]","\u00e9":true,"":-1.5e+3,"x":{"y":[[],{}]}}`,
		`{"a":1,"a":2,"A":"dup"}`, `[1]`, `"s"`, `null`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		members, ok := splitObject(data)
		if !json.Valid(data) {
			return // splitObject takes only what encoding/json accepted
		}
		dec := json.NewDecoder(bytes.NewReader(data))
		if tok, _ := dec.Token(); tok != json.Delim('{') {
			if ok {
				t.Fatalf("%q is not an object, split into %q", data, members)
			}
			return
		}
		if !ok {
			t.Fatalf("object %q not split", data)
		}
		i := 0
		for ; dec.More(); i++ {
			tok, err := dec.Token()
			if err != nil {
				t.Fatal(err)
			}
			var value json.RawMessage
			if err := dec.Decode(&value); err != nil {
				t.Fatal(err)
			}
			if i >= len(members) {
				t.Fatalf("%q: split into %d members, encoding/json finds more", data, len(members))
			}
			m := members[i]
			if m.key != tok.(string) || !bytes.Equal(m.value, value) {
				t.Fatalf("%q: member %d split as %q: %q, encoding/json reads %q: %q", data, i, m.key, m.value, tok, value)
			}
			var rawKey string
			if json.Unmarshal(m.rawKey, &rawKey) != nil || rawKey != m.key {
				t.Fatalf("%q: member %d key %q written as %q", data, i, m.key, m.rawKey)
			}
		}
		if i != len(members) {
			t.Fatalf("%q: split into %d members, encoding/json finds %d", data, len(members), i)
		}
	})
}
