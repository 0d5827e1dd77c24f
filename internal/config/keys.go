package config

import (
	"bytes"
	"fmt"
	"reflect"
	"strings"
	"unicode/utf8"

	"github.com/pelletier/go-toml/v2/unstable"
)

// checkKeyCase fails for a key that names a known key in another case
// (`RAM` for `ram`). TOML keys are case-sensitive, but the decoder matches
// struct fields regardless of case, so `ram = "1G"` and `RAM = "2G"` in one
// table would load silently as the last. Keys no field matches in any case
// are left to the decoder's unknown-key error, and syntax errors to its own.
func checkKeyCase(data []byte) error {
	if !mayHoldFoldedKey(data) {
		return nil // the common case, without a second parse
	}
	return checkParsedKeyCase(data)
}

// checkParsedKeyCase is checkKeyCase on every key of the parsed data.
func checkParsedKeyCase(data []byte) error {
	var p unstable.Parser
	p.Reset(data)
	var table []string
	for p.NextExpression() {
		e := p.Expression()
		switch e.Kind {
		case unstable.Table, unstable.ArrayTable:
			table = keyParts(e.Key())
			if err := checkKeyPath(table); err != nil {
				return err
			}
		case unstable.KeyValue:
			if err := checkKeyValue(table, e); err != nil {
				return err
			}
		}
	}
	return nil
}

// mayHoldFoldedKey says whether data could hold a key that matches one of
// ours only by case folding: every key of ours is lower-case ASCII, so such
// a key has an upper-case ASCII letter or a non-ASCII byte. A line's keys
// are before its first '=', except in a table header or an inline table
// (one line in TOML 1.0), which are read whole; comment lines hold none.
func mayHoldFoldedKey(data []byte) bool {
	for line := range bytes.Lines(data) {
		text := bytes.TrimLeft(line, " \t")
		if len(text) > 0 && text[0] == '#' {
			continue
		}
		keys := line
		if before, _, found := bytes.Cut(text, []byte("=")); found && !bytes.HasPrefix(text, []byte("[")) && !bytes.ContainsRune(line, '{') {
			keys = before
		}
		if bytes.ContainsFunc(keys, foldable) {
			return true
		}
	}
	return false
}

// foldable says whether r can make a key match a lower-case ASCII one only
// by case folding.
func foldable(r rune) bool {
	return 'A' <= r && r <= 'Z' || r >= utf8.RuneSelf
}

// checkKeyValue checks the key of the key-value kv in table, and the keys of
// an inline table it holds.
func checkKeyValue(table []string, kv *unstable.Node) error {
	key := append(append([]string{}, table...), keyParts(kv.Key())...)
	if err := checkKeyPath(key); err != nil {
		return err
	}
	if v := kv.Value(); v.Kind == unstable.InlineTable {
		for it := v.Children(); it.Next(); {
			if err := checkKeyValue(key, it.Node()); err != nil {
				return err
			}
		}
	}
	return nil
}

func keyParts(it unstable.Iterator) []string {
	var parts []string
	for it.Next() {
		parts = append(parts, string(it.Node().Data))
	}
	return parts
}

// checkKeyPath follows key through Config's fields (by their toml tags) and
// maps (any key).
func checkKeyPath(key []string) error {
	t := reflect.TypeFor[Config]()
	for i, part := range key {
		switch t.Kind() {
		case reflect.Map:
			t = t.Elem()
			continue
		case reflect.Struct:
		default:
			return nil
		}
		field, exact := fieldByTag(t, part)
		if field == nil {
			return nil
		}
		if !exact {
			given := strings.Join(key[:i+1], ".")
			want := strings.Join(append(append([]string{}, key[:i]...), tagName(*field)), ".")
			return fmt.Errorf("unknown key %s: keys are case-sensitive; did you mean %s?", given, want)
		}
		t = field.Type
	}
	return nil
}

// fieldByTag returns t's field named name by its toml tag, and whether the
// case matches; nil where no field matches in any case.
func fieldByTag(t reflect.Type, name string) (*reflect.StructField, bool) {
	var folded *reflect.StructField
	for i := range t.NumField() {
		f := t.Field(i)
		switch tag := tagName(f); {
		case tag == name:
			return &f, true
		case strings.EqualFold(tag, name) && folded == nil:
			folded = &f
		}
	}
	return folded, false
}

func tagName(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("toml"), ",")
	return name
}
