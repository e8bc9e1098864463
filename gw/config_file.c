/*
 * Reading a configuration file from disk: the file itself (a regular
 * file of bounded size), the lines fed to the pure parser of config.c,
 * and the files it names (present, readable; secret files private and,
 * for keys, holding a key).  Every problem becomes a "file:line:" error.
 */
#include <sys/stat.h>
#include <sys/types.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "grgw.h"

#define CONFIG_FILE_MAX		(1024 * 1024)

/* Read a whole regular file of at most CONFIG_FILE_MAX bytes. */
static int
read_config_file(struct config_parser *p, const char *path, char **out,
    size_t *outlen)
{
	struct stat	 st;
	char		*buf = NULL, *nbuf;
	size_t		 cap, have = 0;
	ssize_t		 n;
	int		 fd, rc = -1;

	*out = NULL;
	*outlen = 0;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd == -1) {
		config_parse_error_at(p, 0, "cannot open: %s", strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) == -1) {
		config_parse_error_at(p, 0, "cannot examine: %s", strerror(errno));
		goto cleanup;
	}
	if (!S_ISREG(st.st_mode)) {
		config_parse_error_at(p, 0, "is not a regular file; expected a "
		    "configuration file");
		goto cleanup;
	}
	if (st.st_size > CONFIG_FILE_MAX) {
		config_parse_error_at(p, 0, "is %lld bytes long; expected at most %d "
		    "bytes", (long long)st.st_size, CONFIG_FILE_MAX);
		goto cleanup;
	}
	cap = (size_t)st.st_size + 1;
	if ((buf = malloc(cap)) == NULL) {
		config_parse_error_at(p, 0, "cannot read: %s", strerror(errno));
		goto cleanup;
	}
	for (;;) {
		if (have == cap) {
			/* It grew since fstat; allow up to one byte over. */
			cap = cap * 2 > CONFIG_FILE_MAX + 1 ?
			    CONFIG_FILE_MAX + 1 : cap * 2;
			if (have == cap) {
				config_parse_error_at(p, 0, "is longer than %d bytes; "
				    "expected a smaller file",
				    CONFIG_FILE_MAX);
				goto cleanup;
			}
			if ((nbuf = realloc(buf, cap)) == NULL) {
				config_parse_error_at(p, 0, "cannot read: %s",
				    strerror(errno));
				goto cleanup;
			}
			buf = nbuf;
		}
		n = read(fd, buf + have, cap - have);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1) {
			config_parse_error_at(p, 0, "cannot read: %s", strerror(errno));
			goto cleanup;
		}
		if (n == 0)
			break;
		have += (size_t)n;
	}
	if (have > CONFIG_FILE_MAX) {
		config_parse_error_at(p, 0, "is longer than %d bytes; expected a "
		    "smaller file", CONFIG_FILE_MAX);
		goto cleanup;
	}
	*out = buf;
	*outlen = have;
	buf = NULL;
	rc = 0;

cleanup:
	free(buf);
	close(fd);
	return rc;
}

static void
check_readable(struct config_parser *p, const struct config_file_ref *r)
{
	struct stat	 st;
	int		 fd;

	fd = open(r->path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd == -1) {
		if (errno == ENOENT)
			config_parse_error_at(p, r->line, "%s %s does not "
			    "exist; expected a readable file", r->key,
			    r->path);
		else
			config_parse_error_at(p, r->line, "%s %s cannot be "
			    "opened: %s; expected a readable file", r->key,
			    r->path, strerror(errno));
		return;
	}
	if (fstat(fd, &st) == -1)
		config_parse_error_at(p, r->line, "%s %s cannot be examined: "
		    "%s", r->key, r->path, strerror(errno));
	else if (!S_ISREG(st.st_mode))
		config_parse_error_at(p, r->line, "%s %s is not a regular "
		    "file; expected a readable file", r->key, r->path);
	close(fd);
}

static void
check_secret(struct config_parser *p, const struct config_file_ref *r)
{
	struct grgw_psk	 psk;
	char		 err[PATH_MAX * 2 + 256];

	if (secret_file_check(r->path, err, sizeof(err)) == -1) {
		if (errno == ENOENT && r->kind == CONFIG_FILE_KEY)
			config_parse_error_at(p, r->line, "%s %s does not "
			    "exist; expected a key file (grgw keygen > %s; "
			    "chmod 600 %s)", r->key, r->path, r->path,
			    r->path);
		else
			config_parse_error_at(p, r->line, "%s %s", r->key,
			    err);
		return;
	}
	if (r->kind != CONFIG_FILE_KEY)
		return;
	if (psk_load(r->path, &psk, err, sizeof(err)) == -1) {
		config_parse_error_at(p, r->line, "%s %s", r->key, err);
		return;
	}
	psk_free(&psk);
}

/*
 * run_dir holds the record of what `down` removes, the control socket
 * and charon's files: no one but root may be able to swap any directory
 * on its way (a link followed is fine where only root could place it).
 * Its parent must exist; the daemon makes run_dir and the site's
 * directory below it.
 */
static void
check_run_dir(struct config_parser *p, const struct config_file_ref *r)
{
	char		 path[PATH_MAX], real[PATH_MAX], *slash;
	struct stat	 st;

	snprintf(path, sizeof(path), "%s", r->path);
	while (strlen(path) > 1 && path[strlen(path) - 1] == '/')
		path[strlen(path) - 1] = '\0';
	if (stat(path, &st) == -1) {
		if ((slash = strrchr(path, '/')) != NULL)
			*(slash == path ? slash + 1 : slash) = '\0';
		if (stat(path, &st) == -1 || !S_ISDIR(st.st_mode)) {
			config_parse_error_at(p, r->line, "%s %s: its parent "
			    "%s does not exist; expected a directory whose "
			    "parent exists, such as %s", r->key, r->path,
			    path, GRGW_DEFAULT_RUN_DIR);
			return;
		}
	} else if (!S_ISDIR(st.st_mode)) {
		config_parse_error_at(p, r->line, "%s %s is not a directory",
		    r->key, r->path);
		return;
	}
	if (realpath(path, real) == NULL) {
		config_parse_error_at(p, r->line, "%s %s cannot be examined: "
		    "%s", r->key, r->path, strerror(errno));
		return;
	}
	/* Every directory from there up to /. */
	for (;;) {
		if (stat(real, &st) == -1 || !S_ISDIR(st.st_mode)) {
			config_parse_error_at(p, r->line, "%s %s: %s cannot be "
			    "examined", r->key, r->path, real);
			return;
		}
		if ((st.st_uid != 0 && st.st_uid != geteuid()) ||
		    (st.st_mode & (S_IWGRP | S_IWOTH))) {
			config_parse_error_at(p, r->line, "%s %s: %s can be "
			    "changed by another user than root (owner %u, mode "
			    "%04o); expected a directory only root can "
			    "change, such as %s", r->key, r->path, real,
			    (unsigned)st.st_uid, (unsigned)(st.st_mode & 07777),
			    GRGW_DEFAULT_RUN_DIR);
			return;
		}
		if (strcmp(real, "/") == 0)
			return;
		slash = strrchr(real, '/');
		*(slash == real ? slash + 1 : slash) = '\0';
	}
}

static void
check_files(struct config_parser *p)
{
	struct config_file_ref	 refs[CONFIG_FILE_REFS_MAX];
	size_t			 i, n;

	n = config_parse_files(p, refs, nitems(refs));
	for (i = 0; i < n; i++) {
		if (refs[i].kind == CONFIG_FILE_READABLE)
			check_readable(p, &refs[i]);
		else if (refs[i].kind == CONFIG_FILE_RUNDIR)
			check_run_dir(p, &refs[i]);
		else
			check_secret(p, &refs[i]);
	}
}

/* Every recorded error, one per line, as much as fits in err. */
static void
errors_join(const struct config_parser *p, char *err, size_t errlen)
{
	size_t	 i, n, o = 0;
	int	 w;

	if (err == NULL || errlen == 0)
		return;
	err[0] = '\0';
	n = config_parse_error_count(p);
	for (i = 0; i < n && o < errlen; i++) {
		w = snprintf(err + o, errlen - o, "%s\n",
		    config_parse_error(p, i));
		if (w < 0)
			break;
		o += (size_t)w;
	}
}

/* Feed text to the parser line by line (the last one may lack '\n'). */
static void
parse_text(struct config_parser *p, const char *text, size_t len)
{
	const char	*nl;
	size_t		 start = 0;

	while (start < len) {
		nl = memchr(text + start, '\n', len - start);
		if (nl == NULL) {
			config_parse_line(p, text + start, len - start);
			break;
		}
		config_parse_line(p, text + start,
		    (size_t)(nl - (text + start)));
		start = (size_t)(nl - text) + 1;
	}
}

int
config_load(const char *path, struct grgw_config *out, char *err,
    size_t errlen)
{
	struct config_parser	*p;
	char			*text = NULL;
	size_t			 len = 0;
	int			 rc = -1;

	if (err != NULL && errlen > 0)
		err[0] = '\0';
	if (out != NULL)
		memset(out, 0, sizeof(*out));
	if (path == NULL) {
		errno = EINVAL;
		return -1;
	}
	if ((p = config_parse_new(path)) == NULL)
		return err_set(err, errlen, "%s: out of memory\n", path);
	if (read_config_file(p, path, &text, &len) == 0) {
		parse_text(p, text, len);
		check_files(p);
		rc = config_parse_finish(p, out);
	}
	if (rc == -1)
		errors_join(p, err, errlen);
	free(text);
	config_parse_free(p);
	if (rc == -1)
		errno = EINVAL;
	return rc;
}
