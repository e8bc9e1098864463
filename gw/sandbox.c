/*
 * The network process's sandbox (see sandbox.h).  Order matters: the
 * file system and the groups go while we are still root, then the ids
 * (which empties the effective and permitted capabilities), then what
 * is left of the capabilities, then no_new_privs; the seccomp filter
 * comes last, once the event loop exists.
 */
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/types.h>

#include <linux/capability.h>

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <seccomp.h>
#include <string.h>
#include <unistd.h>

#include "grgw.h"
#include "sandbox.h"

int
sandbox_user(const char *name, uid_t *uid, gid_t *gid, char *err,
    size_t errlen)
{
	struct passwd	*pw;

	errno = 0;
	if ((pw = getpwnam(name)) == NULL)
		return err_set(err, errlen, "user %s does not exist; create "
		    "it (adduser --system --group --no-create-home %s) or name "
		    "another in [daemon] user", name, name);
	if (pw->pw_uid == 0 || pw->pw_gid == 0)
		return err_set(err, errlen, "user %s has uid or gid 0; the "
		    "network process needs an unprivileged user", name);
	*uid = pw->pw_uid;
	*gid = pw->pw_gid;
	return 0;
}

static int
caps_clear(void)
{
	struct __user_cap_header_struct	 hdr = {
		.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0 };
	struct __user_cap_data_struct	 data[2];

	memset(data, 0, sizeof(data));
	return (int)syscall(SYS_capset, &hdr, data);
}

static int
caps_empty(void)
{
	struct __user_cap_header_struct	 hdr = {
		.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0 };
	struct __user_cap_data_struct	 data[2];
	int				 i;

	if (syscall(SYS_capget, &hdr, data) == -1)
		return 0;
	for (i = 0; i < 2; i++)
		if (data[i].effective != 0 || data[i].permitted != 0 ||
		    data[i].inheritable != 0)
			return 0;
	return 1;
}

/* The bounding set: only possible while CAP_SETPCAP is held. */
static void
bounding_clear(void)
{
	int	 cap;

	for (cap = 0; cap <= 63; cap++)
		if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) == -1 &&
		    errno == EINVAL)
			break;		/* past the last capability */
}

int
sandbox_drop(const char *root, uid_t uid, gid_t gid, char *err,
    size_t errlen)
{
	uid_t	 ru, eu, su;
	gid_t	 rg, eg, sg;

	if (uid == 0 || gid == 0)
		return err_set(err, errlen, "refusing to run as root");
	if (chroot(root) == -1 || chdir("/") == -1)
		return err_set(err, errlen, "chroot %s: %s", root,
		    strerror(errno));
	bounding_clear();
	if (setgroups(0, NULL) == -1)
		return err_set(err, errlen, "setgroups: %s", strerror(errno));
	if (setresgid(gid, gid, gid) == -1)
		return err_set(err, errlen, "setresgid %u: %s", (unsigned)gid,
		    strerror(errno));
	if (setresuid(uid, uid, uid) == -1)
		return err_set(err, errlen, "setresuid %u: %s", (unsigned)uid,
		    strerror(errno));
	if (caps_clear() == -1)
		return err_set(err, errlen, "capset: %s", strerror(errno));
	prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == -1)
		return err_set(err, errlen, "no_new_privs: %s",
		    strerror(errno));
	/* Trust nothing: read it all back. */
	if (getresuid(&ru, &eu, &su) == -1 || getresgid(&rg, &eg, &sg) == -1 ||
	    ru != uid || eu != uid || su != uid || rg != gid || eg != gid ||
	    sg != gid || setuid(0) != -1 || !caps_empty())
		return err_set(err, errlen, "the privileges were not all "
		    "dropped");
	return 0;
}

/* The calls the network process makes once it runs. */
static const int allowed[] = {
	SCMP_SYS(read), SCMP_SYS(readv), SCMP_SYS(write), SCMP_SYS(writev),
	SCMP_SYS(close), SCMP_SYS(recvfrom), SCMP_SYS(recvmsg),
	SCMP_SYS(sendto), SCMP_SYS(sendmsg), SCMP_SYS(bind), SCMP_SYS(listen),
	SCMP_SYS(accept), SCMP_SYS(accept4), SCMP_SYS(connect),
	SCMP_SYS(getsockname), SCMP_SYS(getpeername), SCMP_SYS(setsockopt),
	SCMP_SYS(getsockopt), SCMP_SYS(shutdown), SCMP_SYS(epoll_create1),
	SCMP_SYS(epoll_ctl), SCMP_SYS(epoll_wait), SCMP_SYS(epoll_pwait),
	SCMP_SYS(poll), SCMP_SYS(ppoll), SCMP_SYS(fcntl),
	SCMP_SYS(clock_gettime), SCMP_SYS(gettimeofday),
	SCMP_SYS(clock_nanosleep), SCMP_SYS(nanosleep), SCMP_SYS(mmap),
	SCMP_SYS(munmap), SCMP_SYS(mprotect), SCMP_SYS(madvise),
	SCMP_SYS(mremap), SCMP_SYS(brk), SCMP_SYS(mlock), SCMP_SYS(munlock),
	SCMP_SYS(getrandom), SCMP_SYS(rt_sigaction), SCMP_SYS(rt_sigprocmask),
	SCMP_SYS(rt_sigreturn), SCMP_SYS(exit), SCMP_SYS(exit_group),
	SCMP_SYS(getpid), SCMP_SYS(gettid), SCMP_SYS(getppid),
	SCMP_SYS(getuid), SCMP_SYS(geteuid), SCMP_SYS(getgid),
	SCMP_SYS(getegid), SCMP_SYS(eventfd2), SCMP_SYS(pipe2),
	SCMP_SYS(futex), SCMP_SYS(fstat), SCMP_SYS(newfstatat),
	SCMP_SYS(lseek), SCMP_SYS(sched_yield), SCMP_SYS(restart_syscall),
	SCMP_SYS(tgkill), SCMP_SYS(timerfd_create), SCMP_SYS(timerfd_settime),
	SCMP_SYS(sysinfo),	/* qsort() asks how much memory there is */
};

int
sandbox_seccomp(char *err, size_t errlen)
{
	scmp_filter_ctx	 ctx;
	size_t		 i;
	int		 rc;

	if ((ctx = seccomp_init(SCMP_ACT_KILL_PROCESS)) == NULL)
		return err_set(err, errlen, "seccomp_init failed");
	for (i = 0; i < nitems(allowed); i++)
		if ((rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, allowed[i],
		    0)) < 0)
			goto fail;
	/* Sockets of the IP families only; ioctl only to read a length. */
	if ((rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(socket), 1,
	    SCMP_A0(SCMP_CMP_EQ, AF_INET))) < 0 ||
	    (rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(socket), 1,
	    SCMP_A0(SCMP_CMP_EQ, AF_INET6))) < 0 ||
	    (rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(ioctl), 1,
	    SCMP_A1(SCMP_CMP_EQ, FIONREAD))) < 0)
		goto fail;
	/* A library that tries to open a file is told no, not killed. */
	if ((rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EACCES),
	    SCMP_SYS(openat), 0)) < 0 ||
	    (rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EACCES),
	    SCMP_SYS(open), 0)) < 0)
		goto fail;
	if ((rc = seccomp_load(ctx)) < 0)
		goto fail;
	seccomp_release(ctx);
	return 0;
fail:
	seccomp_release(ctx);
	return err_set(err, errlen, "seccomp: %s", strerror(-rc));
}
