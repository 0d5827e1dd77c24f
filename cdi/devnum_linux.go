package cdi

import (
	"io/fs"
	"syscall"

	"golang.org/x/sys/unix"
)

func deviceNumbers(fi fs.FileInfo) (major, minor int64) {
	rdev := uint64(fi.Sys().(*syscall.Stat_t).Rdev)
	return int64(unix.Major(rdev)), int64(unix.Minor(rdev))
}
