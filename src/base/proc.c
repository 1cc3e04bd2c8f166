/* proc.c - what every forked child does first; see proc.h. */
#include <sys/prctl.h>
#include <signal.h>
#include <unistd.h>

#include "base/proc.h"
#include "base/banned.h"

int
proc_die_with_parent(pid_t parent)
{
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) == -1)
		return -1;
	/* reparented already: the parent died before the prctl */
	return getppid() == parent ? 0 : -1;
}
