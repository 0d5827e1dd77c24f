// SPDX-License-Identifier: Apache-2.0
/*
 * A stand-in for libgreenboost_cuda.so in the VM integration tests and the
 * demo (test/vm). Loaded through LD_PRELOAD by a dynamic program in the
 * container, its constructor reports on stderr what the real library relies
 * on: GREENBOOST_ACTIVE=1 and an /dev/greenboost it may open read-write
 * (the device cgroup rule). The line is parsed by the test:
 *
 *	PRELOAD libgreenboost_cuda.so active=1 open=0 exe=/bin/gbdyn
 *
 * open= is 0 when open(2) succeeded, else the errno.
 *
 * Build: gcc -shared -fPIC -O2 -o libgreenboost_cuda.so preload.c
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

__attribute__((constructor)) static void gb_preload_init(void)
{
	const char *active = getenv("GREENBOOST_ACTIVE");
	char exe[256], line[512];
	ssize_t n;
	int fd, err = 0, len;

	fd = open("/dev/greenboost", O_RDWR | O_CLOEXEC);
	if (fd < 0)
		err = errno;
	else
		close(fd);
	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	exe[n < 0 ? 0 : n] = '\0';
	len = snprintf(line, sizeof(line),
		       "PRELOAD libgreenboost_cuda.so active=%s open=%d exe=%s (%s)\n",
		       active ? active : "unset", err, exe,
		       err ? strerror(err) : "/dev/greenboost opened read-write");
	if (len > 0 && write(2, line, (size_t)len) < 0) {
		/* nothing to do */
	}
}
