/*
 * sandbox.c: what the network process gives up before it reads anything
 * from the network: root, every capability, the file system, and all
 * system calls but the few it needs.
 */
#ifndef GRGW_SANDBOX_H
#define GRGW_SANDBOX_H

#include <sys/types.h>

#include <stddef.h>

/* The uid and gid of a user, who must not be root.  0, or -1 and err. */
int	sandbox_user(const char *name, uid_t *uid, gid_t *gid, char *err,
	    size_t errlen);

/*
 * As root: chroot into root (an empty directory), drop every
 * supplementary group, become uid/gid, lose every capability (effective,
 * permitted, inheritable, ambient, and the bounding set where the
 * process may drop it), set PR_SET_NO_NEW_PRIVS, and check that all of
 * it took.  0, or -1 and err (the caller must then exit).
 */
int	sandbox_drop(const char *root, uid_t uid, gid_t gid, char *err,
	    size_t errlen);

/*
 * Allow only the system calls an event loop with UDP and TCP sockets
 * needs (sockets of the IP families only; files cannot be opened); any
 * other call kills the process.  0, or -1 and err.
 */
int	sandbox_seccomp(char *err, size_t errlen);

#endif /* GRGW_SANDBOX_H */
