package vm

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"os"
	"path"
	"sort"
	"strings"
)

// Initramfs collects the entries of a "newc" cpio archive that the kernel
// unpacks into its rootfs. Parent directories are created implicitly; no
// root privileges or external cpio tool are needed.
type Initramfs struct {
	entries map[string]entry
}

type entry struct {
	mode uint32 // including the file type bits
	data []byte // file contents or symlink target
}

const (
	modeDir  = 0o040000
	modeFile = 0o100000
	modeLink = 0o120000
)

// NewInitramfs returns an empty archive (only "/" implied).
func NewInitramfs() *Initramfs {
	return &Initramfs{entries: map[string]entry{}}
}

func clean(name string) string {
	return strings.TrimPrefix(path.Clean("/"+name), "/")
}

func (r *Initramfs) mkdirAll(dir string) {
	dir = clean(dir)
	if dir == "" || dir == "." {
		return
	}
	if _, ok := r.entries[dir]; ok {
		return
	}
	r.mkdirAll(path.Dir(dir))
	r.entries[dir] = entry{mode: modeDir | 0o755}
}

// Dir adds a directory (and its parents).
func (r *Initramfs) Dir(name string) { r.mkdirAll(name) }

// File adds a regular file with the given contents and permission bits.
func (r *Initramfs) File(name string, data []byte, perm os.FileMode) {
	name = clean(name)
	r.mkdirAll(path.Dir(name))
	r.entries[name] = entry{mode: modeFile | uint32(perm.Perm()), data: data}
}

// CopyFile adds the host file src as name, keeping its permission bits.
func (r *Initramfs) CopyFile(name, src string) error {
	st, err := os.Stat(src)
	if err != nil {
		return fmt.Errorf("initramfs: %w", err)
	}
	data, err := os.ReadFile(src)
	if err != nil {
		return fmt.Errorf("initramfs: %w", err)
	}
	r.File(name, data, st.Mode())
	return nil
}

// Symlink adds a symbolic link name → target.
func (r *Initramfs) Symlink(name, target string) {
	name = clean(name)
	r.mkdirAll(path.Dir(name))
	r.entries[name] = entry{mode: modeLink | 0o777, data: []byte(target)}
}

// WriteTo writes the archive, gzip-compressed, to w.
func (r *Initramfs) WriteTo(w io.Writer) (int64, error) {
	var buf bytes.Buffer
	names := make([]string, 0, len(r.entries))
	for n := range r.entries {
		names = append(names, n)
	}
	sort.Strings(names) // parents sort before their children
	ino := uint32(1)
	for _, n := range names {
		e := r.entries[n]
		writeHeader(&buf, ino, e.mode, uint32(len(e.data)), n)
		buf.Write(e.data)
		pad4(&buf)
		ino++
	}
	writeHeader(&buf, 0, 0, 0, "TRAILER!!!")
	// The kernel accepts trailing zero padding; keep the archive 512-aligned.
	for buf.Len()%512 != 0 {
		buf.WriteByte(0)
	}
	cw := &countWriter{w: w}
	zw, err := gzip.NewWriterLevel(cw, gzip.BestSpeed)
	if err != nil {
		return 0, err
	}
	if _, err := zw.Write(buf.Bytes()); err != nil {
		return cw.n, err
	}
	if err := zw.Close(); err != nil {
		return cw.n, err
	}
	return cw.n, nil
}

// WriteFile writes the gzip-compressed archive to file.
func (r *Initramfs) WriteFile(file string) error {
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	if _, err := r.WriteTo(f); err != nil {
		f.Close()
		return fmt.Errorf("write initramfs %s: %w", file, err)
	}
	return f.Close()
}

func writeHeader(buf *bytes.Buffer, ino, mode, size uint32, name string) {
	nlink := uint32(1)
	if mode&0o170000 == modeDir {
		nlink = 2
	}
	// magic, ino, mode, uid, gid, nlink, mtime, filesize, devmajor,
	// devminor, rdevmajor, rdevminor, namesize, check
	fmt.Fprintf(buf, "070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X",
		ino, mode, 0, 0, nlink, 0, size, 0, 0, 0, 0, len(name)+1, 0)
	buf.WriteString(name)
	buf.WriteByte(0)
	pad4(buf)
}

func pad4(buf *bytes.Buffer) {
	for buf.Len()%4 != 0 {
		buf.WriteByte(0)
	}
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}
