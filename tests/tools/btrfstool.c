/*
 * btrfstool.c - test-only front end to btrfs driver functions that no
 * verb exposes alone (never installed):
 *
 *   btrfstool nested PATH      btrfs_nested(), one relative path a line
 *
 * Exits with the error's class like autosync does.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "base/log.h"
#include "driver/btrfs.h"

int
main(int argc, char **argv)
{
	struct as_err err;
	char **v = NULL;
	size_t n = 0, i;
	int rc;

	log_set_progname("btrfstool");
	as_err_clear(&err);
	if (argc != 3 || strcmp(argv[1], "nested") != 0) {
		fprintf(stderr, "usage: btrfstool nested PATH\n");
		return 2;
	}
	rc = btrfs_nested(argv[2], &v, &n, &err);
	for (i = 0; i < n; i++)
		printf("%s\n", v[i]);
	btrfs_rels_free(v, n);
	if (rc == -1) {
		fprintf(stderr, "btrfstool: %s\n", err.msg);
		return as_exit_code(err.code);
	}
	return 0;
}
