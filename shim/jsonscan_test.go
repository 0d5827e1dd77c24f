package shim

import (
	"bytes"
	"encoding/json"
	"testing"
)

// FuzzSplitJSON: for any valid JSON object, splitObject finds the members
// encoding/json finds, in order, each value exactly as written; for any
// array, splitArray finds its elements so.
func FuzzSplitJSON(f *testing.F) {
	for _, seed := range []string{
		`{}`, ` { } `, `{"a":1}`, "{\n\t\"a\" : [1, {\"b\": \"}\"}],\r\n\"c\":null }",
		`{"k\"ey":"v\\\"al]","\u00e9":true,"":-1.5e+3,"x":{"y":[[],{}]}}`,
		`{"a":1,"a":2,"A":"dup"}`, `[1]`, ` [ "]" , {"a":[]} ,null,-0.5] `, `[]`, `"s"`, `null`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		members, ok := splitObject(data)
		if !json.Valid(data) {
			return // splitObject takes only what encoding/json accepted
		}
		dec := json.NewDecoder(bytes.NewReader(data))
		tok, _ := dec.Token()
		checkSplitArray(t, data, tok == json.Delim('['))
		if tok != json.Delim('{') {
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

func checkSplitArray(t *testing.T, data []byte, isArray bool) {
	elements, ok := splitArray(data)
	if ok != isArray {
		t.Fatalf("%q: splitArray says array %v", data, ok)
	}
	var want []json.RawMessage
	if !isArray || json.Unmarshal(data, &want) != nil {
		return
	}
	if len(elements) != len(want) {
		t.Fatalf("%q: split into %d elements, encoding/json finds %d", data, len(elements), len(want))
	}
	for i := range want {
		var w bytes.Buffer
		_ = json.Compact(&w, want[i])
		var g bytes.Buffer
		if err := json.Compact(&g, elements[i]); err != nil || !bytes.Equal(g.Bytes(), w.Bytes()) || len(bytes.TrimSpace(elements[i])) != len(elements[i]) {
			t.Fatalf("%q: element %d split as %q, encoding/json reads %q", data, i, elements[i], want[i])
		}
	}
}
