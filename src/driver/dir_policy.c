/*
 * dir_policy.c - the safe receive policy (see dir_policy.h).
 */
#include <sys/stat.h>

#include <string.h>

#include "driver/dir_policy.h"
#include "base/banned.h"

int
dir_policy_entry(struct as_entry *e, struct as_err *err)
{
	uint32_t type = e->mode & S_IFMT;

	if (type == S_IFBLK || type == S_IFCHR)
		return as_err_set(err, AS_E_UNSAFE_PATH, 0, "'%.*s' is a "
		    "device node, which a safe receive does not create (the "
		    "sender is not trusted with privileged objects; receive "
		    "without --safe, or serve.conf without 'safe', to keep "
		    "it)", (int)e->path_len, e->path);
	e->mode &= ~(uint32_t)(S_ISUID | S_ISGID);
	return 0;
}

int
dir_policy_xattr(const struct as_xattr *x)
{
	return x->name_len > 5 && memcmp(x->name, "user.", 5) == 0;
}
