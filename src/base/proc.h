/*
 * proc.h - what every child autosync forks does first.
 */
#ifndef AS_PROC_H
#define AS_PROC_H

#include <sys/types.h>

/*
 * In a child just forked by parent (its pid, taken before the fork): ask
 * for SIGKILL when the parent dies (PR_SET_PDEATHSIG), then check that
 * the parent is still there, which closes the race of a parent killed
 * between fork() and the prctl().  Returns 0, or -1 when the parent is
 * already gone (or prctl failed): the child must _exit() at once.
 *
 * This is why no ssh, zfs send, receiving child or serve connection
 * outlives a SIGKILLed autosync (RELIABILITY.md §F 69).  The signal
 * comes when the *thread* that forked exits: fork from a thread that
 * outlives the child (the main thread, or a sender thread that waits for
 * its `zfs send`, serve_zfs.c).  The setting survives execve() of a
 * program that is not set-user-ID.
 */
int	proc_die_with_parent(pid_t parent);

#endif
