package vm

import (
	"bytes"
	"compress/gzip"
	"io"
	"strconv"
	"testing"
)

type cpioEntry struct {
	mode uint32
	data string
}

// readNewc parses a newc archive (what the kernel's initramfs unpacker reads).
func readNewc(t *testing.T, b []byte) map[string]cpioEntry {
	t.Helper()
	out := map[string]cpioEntry{}
	off := 0
	field := func(i int) uint32 {
		v, err := strconv.ParseUint(string(b[off+6+8*i:off+6+8*i+8]), 16, 32)
		if err != nil {
			t.Fatalf("bad header field at %d: %v", off, err)
		}
		return uint32(v)
	}
	align := func(n int) int { return (n + 3) &^ 3 }
	for {
		if string(b[off:off+6]) != "070701" {
			t.Fatalf("bad magic at %d: %q", off, b[off:off+6])
		}
		mode, size, namesize := field(1), int(field(6)), int(field(11))
		name := string(b[off+110 : off+110+namesize-1])
		dataOff := align(off + 110 + namesize)
		if name == "TRAILER!!!" {
			return out
		}
		out[name] = cpioEntry{mode: mode, data: string(b[dataOff : dataOff+size])}
		off = align(dataOff + size)
	}
}

func TestInitramfs(t *testing.T) {
	r := NewInitramfs()
	r.File("init", []byte("#!/bin/busybox sh\n"), 0o755)
	r.File("/lib/modules/6.1.0/extra/greenboost.ko", []byte("\x7fELF"), 0o644)
	r.Symlink("bin/sh", "busybox")
	r.Dir("proc")
	var buf bytes.Buffer
	if _, err := r.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	zr, err := gzip.NewReader(&buf)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	if len(raw)%512 != 0 {
		t.Errorf("archive length %d not 512-aligned", len(raw))
	}
	got := readNewc(t, raw)
	want := map[string]cpioEntry{
		"init":                                  {modeFile | 0o755, "#!/bin/busybox sh\n"},
		"lib":                                   {modeDir | 0o755, ""},
		"lib/modules":                           {modeDir | 0o755, ""},
		"lib/modules/6.1.0":                     {modeDir | 0o755, ""},
		"lib/modules/6.1.0/extra":               {modeDir | 0o755, ""},
		"lib/modules/6.1.0/extra/greenboost.ko": {modeFile | 0o644, "\x7fELF"},
		"bin":                                   {modeDir | 0o755, ""},
		"bin/sh":                                {modeLink | 0o777, "busybox"},
		"proc":                                  {modeDir | 0o755, ""},
	}
	if len(got) != len(want) {
		t.Errorf("entries %v, want %d", got, len(want))
	}
	for name, w := range want {
		if g, ok := got[name]; !ok || g != w {
			t.Errorf("%s = %+v (present %v), want %+v", name, g, ok, w)
		}
	}
}
