/*
 * Client side of the daemon's control socket, used by the CLI.
 */
#include <sys/socket.h>
#include <sys/un.h>

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "grgw.h"
#include "daemon.h"

void
control_path(const struct grgw_config *cfg, char *buf, size_t size)
{
	char dir[PATH_MAX];

	config_site_dir(cfg, dir, sizeof(dir));
	snprintf(buf, size, "%s/control.sock", dir);
}

int
control_connect(const struct grgw_config *cfg)
{
	struct sockaddr_un sun;
	int fd;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	control_path(cfg, sun.sun_path, sizeof(sun.sun_path));
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1)
		return -1;
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1) {
		close(fd);
		return -1;
	}
	return fd;
}

static long long
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int
control_request(int fd, const char *req, struct strbuf *sb, int timeout_ms)
{
	long long deadline = timeout_ms < 0 ? -1 : now_ms() + timeout_ms;
	char buf[4096];
	size_t len = strlen(req), off = 0;
	ssize_t n;

	while (off < len) {
		n = write(fd, req + off, len - off);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		off += (size_t)n;
	}
	for (;;) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		int wait = -1;

		if (deadline >= 0) {
			long long left = deadline - now_ms();

			if (left <= 0) {
				errno = ETIMEDOUT;
				return -1;
			}
			wait = (int)left;
		}
		if (poll(&pfd, 1, wait) == -1) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (pfd.revents == 0)
			continue;
		n = read(fd, buf, sizeof(buf) - 1);
		if (n == -1 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		if (n == 0)
			return sb->failed ? -1 : 0;
		buf[n] = '\0';
		strbuf_printf(sb, "%s", buf);
		if (sb->len > 1 << 20) {
			errno = EMSGSIZE;
			return -1;
		}
	}
}
