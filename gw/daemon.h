/*
 * daemon.c: the gateway daemon.
 */
#ifndef GRGW_DAEMON_H
#define GRGW_DAEMON_H

#include "grgw.h"

/*
 * Run the daemon until `down` or a signal.  cfg is borrowed.  When
 * ready_fd >= 0, one line is written to it once start-up has succeeded
 * ("ok") or failed ("error <message>") and the fd is closed.
 * Returns the process exit code.
 */
int	daemon_run(const struct grgw_config *cfg, int ready_fd);

#endif /* GRGW_DAEMON_H */
