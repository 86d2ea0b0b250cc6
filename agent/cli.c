/* Command-line parsing and the short commands (version, validate). */
#include "agent/cli.h"

#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agent/agent.h"
#include "agent/plan_cmd.h"
#include "proxy/log.h"
#include "reconciler/rc.h"

static const char usage[] =
    "usage: albd <command> [options]\n"
    "\n"
    "commands:\n"
    "  run -m DIR [--admin ADDR|off] [--probe ADDR] [--admin-host NAME]... [--workers N]\n"
    "      [--drain-timeout SECONDS] [--log-level L] [--session-ticket-key FILE]... [--strict]\n"
    "        serve the manifests in DIR (SIGHUP: reconcile now; SIGTERM/SIGINT: drain, exit 0);\n"
    "        --admin (default 127.0.0.1:9901) serves /healthz /readyz /status /config /metrics,\n"
    "        --probe only /healthz and /readyz; --admin-host: a name accepted in their Host\n"
    "        header besides IP addresses and localhost\n"
    "  plan -m DIR [--against URL|--state FILE] [-o text|json]\n"
    "        show what applying DIR would change against a running albd's admin URL, a saved\n"
    "        /config state, or nothing; exit 0 no changes, 2 changes, 1 error\n"
    "  validate -m DIR\n"
    "        check the manifests; exit 0 valid, 1 invalid (one file:line:col: line per problem)\n"
    "  version\n"
    "        print the version\n";

static int cmd_validate(int argc, char **argv)
{
    const char *dir = NULL;
    static const struct option opts[] = {{"manifests", required_argument, NULL, 'm'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "m:h", opts, NULL)) != -1) {
        switch (c) {
        case 'm':
            dir = optarg;
            break;
        case 'h':
            fputs(usage, stdout);
            return 0;
        default:
            fputs(usage, stderr);
            return 64;
        }
    }
    if (!dir || optind != argc) {
        fputs("albd validate: -m DIR is required\n", stderr);
        return 64;
    }
    struct rc_model *m = NULL;
    struct rc_errs errs;
    rc_errs_init(&errs);
    int rc = rc_load_dir(dir, time(NULL), &m, &errs);
    rc_errs_sort(&errs);
    rc_errs_print(&errs, stderr);
    if (rc == 0)
        printf("%s: valid (%zu listeners, %zu server groups, %zu certificates)\n", dir,
               m->n_listeners, m->n_groups, m->n_certificates);
    else
        fprintf(stderr, "%s: %zu error(s)\n", dir, rc_errs_count_errors(&errs));
    rc_model_unref(m);
    rc_errs_cleanup(&errs);
    return rc == 0 ? 0 : 1;
}

static int parse_log_level(const char *s)
{
    static const char *const names[] = {"error", "warn", "info", "debug"};
    for (int i = 0; i < 4; i++)
        if (strcmp(s, names[i]) == 0)
            return i;
    return -1;
}

/* A host name as Host would carry it: letters, digits, '-' and '.'. */
static bool host_name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 253)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!(s[i] >= 'a' && s[i] <= 'z') && !(s[i] >= 'A' && s[i] <= 'Z') &&
            !(s[i] >= '0' && s[i] <= '9') && s[i] != '-' && s[i] != '.')
            return false;
    return true;
}

static int cmd_run(int argc, char **argv)
{
    struct ag_options o = {
        .admin_addr = "127.0.0.1:9901", .workers = 0, .drain_ms = 30000, .debounce_ms = 20};
    static const struct option opts[] = {{"manifests", required_argument, NULL, 'm'},
                                         {"admin", required_argument, NULL, 'a'},
                                         {"workers", required_argument, NULL, 'w'},
                                         {"drain-timeout", required_argument, NULL, 'd'},
                                         {"log-level", required_argument, NULL, 'l'},
                                         {"strict", no_argument, NULL, 's'},
                                         {"session-ticket-key", required_argument, NULL, 't'},
                                         {"probe", required_argument, NULL, 'p'},
                                         {"admin-host", required_argument, NULL, 'H'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    int c;
    char *end;
    while ((c = getopt_long(argc, argv, "m:a:w:d:l:h", opts, NULL)) != -1) {
        switch (c) {
        case 'm':
            o.manifest_dir = optarg;
            break;
        case 'a':
            o.admin_addr = strcmp(optarg, "off") == 0 ? NULL : optarg;
            break;
        case 'w':
            o.workers = (int)strtol(optarg, &end, 10);
            if (*end || o.workers < 0 || o.workers > 1024) {
                fprintf(stderr,
                        "albd run: --workers takes a number from 0 (one per CPU) to 1024\n");
                return 64;
            }
            break;
        case 'd': {
            double s = strtod(optarg, &end);
            if (*end || s < 0 || s > 86400) {
                fprintf(stderr, "albd run: --drain-timeout takes seconds from 0 to 86400\n");
                return 64;
            }
            o.drain_ms = (unsigned)(s * 1000);
            break;
        }
        case 'l': {
            int l = parse_log_level(optarg);
            if (l < 0) {
                fprintf(stderr, "albd run: --log-level is one of error, warn, info, debug\n");
                return 64;
            }
            px_log_set_level((enum px_log_level)l);
            break;
        }
        case 's':
            o.strict = true;
            break;
        case 't':
            if (o.n_ticket_key_files == sizeof o.ticket_key_files / sizeof o.ticket_key_files[0]) {
                fprintf(stderr, "albd run: at most 8 --session-ticket-key files\n");
                return 64;
            }
            o.ticket_key_files[o.n_ticket_key_files++] = optarg;
            break;
        case 'p':
            o.probe_addr = optarg;
            break;
        case 'H':
            if (o.n_admin_hosts == sizeof o.admin_hosts / sizeof o.admin_hosts[0]) {
                fprintf(stderr, "albd run: at most 8 --admin-host names\n");
                return 64;
            }
            if (!host_name_ok(optarg)) {
                fprintf(stderr,
                        "albd run: --admin-host takes a host name (letters, digits, '-', '.'), "
                        "without port\n");
                return 64;
            }
            o.admin_hosts[o.n_admin_hosts++] = optarg;
            break;
        case 'h':
            fputs(usage, stdout);
            return 0;
        default:
            fputs(usage, stderr);
            return 64;
        }
    }
    if (!o.manifest_dir || optind != argc) {
        fputs("albd run: -m DIR is required\n", stderr);
        return 64;
    }
    return ag_run(&o);
}

int ag_cli_main(int argc, char **argv)
{
    if (argc < 2) {
        fputs(usage, stderr);
        return 64;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
        printf("albd %s\n", ALBD_VERSION);
        return 0;
    }
    if (strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0) {
        fputs(usage, stdout);
        return 0;
    }
    /* Subcommand options are parsed from argv[1] on, as if it were argv[0]. */
    if (strcmp(cmd, "validate") == 0)
        return cmd_validate(argc - 1, argv + 1);
    if (strcmp(cmd, "plan") == 0)
        return ag_plan_main(argc - 1, argv + 1);
    if (strcmp(cmd, "run") == 0)
        return cmd_run(argc - 1, argv + 1);
    fprintf(stderr, "albd: unknown command \"%s\"\n\n%s", cmd, usage);
    return 64;
}
