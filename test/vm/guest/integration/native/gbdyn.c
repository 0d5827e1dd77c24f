// SPDX-License-Identifier: Apache-2.0
/*
 * gbdyn: a dynamically linked launcher for the VM integration tests and the
 * demo (test/vm). The container's programs are static (busybox, gballoc), and
 * the dynamic loader ignores LD_PRELOAD for those; running them through this
 * program makes ld.so load the preload library first, as it would for a real
 * CUDA application, before exec'ing the static program.
 *
 * Build: gcc -O2 -o gbdyn gbdyn.c
 */
#include <stdio.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: gbdyn PROGRAM [ARG]...\n");
		return 2;
	}
	execv(argv[1], argv + 1);
	perror(argv[1]);
	return 127;
}
