/*
 * noxattrat.c - run a command as on a kernel older than 6.13: the
 * listxattrat and getxattrat system calls fail with ENOSYS (a seccomp
 * filter), so that a test can drive the scan's fallback to the l* calls
 * through /proc/self/fd (driver/dir_scan.c, scan_xattrs_at).  Test-only.
 *
 *	noxattrat CMD [ARG...]
 */
#include <errno.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/prctl.h>
#include <unistd.h>

#define NR_GETXATTRAT	464	/* one number on every architecture */
#define NR_LISTXATTRAT	465

int
main(int argc, char **argv)
{
	struct sock_filter f[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
		    offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, NR_GETXATTRAT, 2, 0),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, NR_LISTXATTRAT, 1, 0),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOSYS),
	};
	struct sock_fprog prog = { sizeof(f) / sizeof(f[0]), f };

	if (argc < 2) {
		fprintf(stderr, "usage: noxattrat CMD [ARG...]\n");
		return 2;
	}
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == -1 ||
	    prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) == -1) {
		perror("noxattrat: seccomp");
		return 2;
	}
	execvp(argv[1], argv + 1);
	perror(argv[1]);
	return 127;
}
