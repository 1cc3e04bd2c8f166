/*
 * zfstool.c - test-only front end to the zfs driver's functions that no
 * verb calls yet (never installed):
 *
 *   zfstool mount DATASET [MOUNTPOINT]   zfs_mount_ro()
 *   zfstool umount DATASET               zfs_unmount()
 *   zfstool mount -r DATASET [MOUNTPOINT] zfs_mount_tree_ro()
 *   zfstool umount -r DATASET            zfs_unmount_tree()
 *   zfstool held ROOT                    zfs_list_held(), one per line
 *
 * Exits with the error's class like autosync does.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "base/log.h"
#include "driver/zfs.h"

int
main(int argc, char **argv)
{
	struct as_err err;
	char **v = NULL;
	size_t n = 0, i;
	int rc = -1;

	log_set_progname("zfstool");
	if (getenv("ZFSTOOL_DEBUG") != NULL)
		log_set_level(LOG_LVL_DEBUG);
	as_err_clear(&err);
	if (argc >= 4 && argc <= 5 && strcmp(argv[1], "mount") == 0 &&
	    strcmp(argv[2], "-r") == 0)
		rc = zfs_mount_tree_ro(argv[3], argc == 5 ? argv[4] : NULL,
		    &err);
	else if (argc == 4 && strcmp(argv[1], "umount") == 0 &&
	    strcmp(argv[2], "-r") == 0)
		rc = zfs_unmount_tree(argv[3], &err);
	else if (argc >= 3 && argc <= 4 && strcmp(argv[1], "mount") == 0)
		rc = zfs_mount_ro(argv[2], argc == 4 ? argv[3] : NULL, &err);
	else if (argc == 3 && strcmp(argv[1], "umount") == 0)
		rc = zfs_unmount(argv[2], &err);
	else if (argc == 3 && strcmp(argv[1], "held") == 0) {
		rc = zfs_list_held(argv[2], &v, &n, &err);
		for (i = 0; i < n; i++) {
			printf("%s\n", v[i]);
			free(v[i]);
		}
		free(v);
	} else {
		fprintf(stderr, "usage: zfstool mount DS [MP] | umount DS | "
		    "held ROOT\n");
		return 2;
	}
	if (rc == -1) {
		fprintf(stderr, "zfstool: %s\n", err.msg);
		return as_exit_code(err.code);
	}
	return 0;
}
