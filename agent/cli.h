/* The command line: exit statuses shared by every command, and the
 * dispatch from argv to run, validate, plan, version and help. */
#ifndef ALBD_AGENT_CLI_H
#define ALBD_AGENT_CLI_H

#include <stdbool.h>

struct rc_errs;
struct rc_model;

/* Exit statuses of every command (README "Exit status", albd(1)). */
enum {
    AG_EXIT_OK = 0,
    AG_EXIT_ERROR = 1,   /* an error, or invalid manifests */
    AG_EXIT_CHANGES = 2, /* plan: applying would change something */
    AG_EXIT_USAGE = 64,  /* a usage error (BSD sysexits EX_USAGE) */
};

/* Loads dir all or nothing, as `albd validate` and `albd plan` do:
 * refuse_foreign makes a document of another API an error instead of a
 * note. Returns 0 with *out set (one reference), or -1 with *out NULL when
 * errs holds an error. Notes and warnings go to errs either way. */
int ag_load_all_or_nothing(const char *dir, bool refuse_foreign, struct rc_model **out,
                           struct rc_errs *errs);
/* The certificate cache `albd run` and `albd plan` use without
 * --cert-cache: $STATE_DIRECTORY/certs (systemd's StateDirectory=), else
 * /var/lib/albd/certs. A static buffer; main thread. */
const char *ag_cert_cache_default(void);

/* Parses the command line and runs the chosen command; returns the exit
 * status (see DESIGN.md "Processes, interfaces, files"). */
int ag_cli_main(int argc, char **argv);

/* The commit this binary was built from (git describe, or "unknown"):
 * static string. */
const char *ag_cli_commit(void);

#endif
