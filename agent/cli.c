/* Command-line parsing and the short commands (version, validate). */
#include "agent/cli.h"

#include <getopt.h>
#include <openssl/conf.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agent/agent.h"
#include "agent/plan_cmd.h"
#include "common/log.h"
#include "proxy/tls_keys.h"
#include "reconciler/load.h"
#include "reconciler/rc.h"

/* Exit statuses, the same for every command (README "Exit status", albd(1)). */
static const char exit_codes[] = "exit status: 0 ok; 1 error or invalid manifests; 2 plan found "
                                 "changes; 64 usage error\n";

static const char usage[] =
    "usage: albd <command> [options]\n"
    "\n"
    "commands:\n"
    "  run       serve the manifests of a folder, reconciling on every change\n"
    "  plan      show what applying the manifests would change\n"
    "  validate  check the manifests\n"
    "  version   print the version and the commit it was built from\n"
    "  help      print this, or with a command, that command's options\n"
    "\n"
    "`albd COMMAND --help` (or `albd help COMMAND`) shows a command's options.\n";

static const char usage_run[] =
    "usage: albd run -m DIR [options]\n"
    "serve the manifests in DIR; SIGHUP reconciles now (every file), SIGTERM/SIGINT stop\n"
    "\n"
    "  -m, --manifests DIR         the manifest folder (required); watched for changes\n"
    "  -a, --admin ADDR|off        admin endpoint: /healthz /readyz /status /config /metrics\n"
    "                              (default 127.0.0.1:9901; keep it on loopback)\n"
    "      --probe ADDR            a second endpoint serving /healthz and /readyz only\n"
    "                              (e.g. 0.0.0.0:9902 for the kubelet)\n"
    "      --admin-host NAME       a name accepted in the Host header of both endpoints\n"
    "                              besides IP addresses and localhost (repeatable, at most 8)\n"
    "  -w, --workers N             worker threads, 0 = one per CPU albd may run on (its\n"
    "                              affinity mask; default 0); more workers than those CPUs\n"
    "                              take turns, each yielding after 1 ms without a pause\n"
    "      --worker-scheduling S   batch (default): workers run as SCHED_BATCH and, woken on\n"
    "                              a busy CPU, wait for the running task's slice instead of\n"
    "                              preempting it, then handle all that arrived at once (less\n"
    "                              CPU and lower tail latency when albd shares its CPUs);\n"
    "                              normal: SCHED_OTHER, each wake-up may preempt\n"
    "      --shutdown-grace S      on SIGTERM, keep accepting for S seconds while /readyz\n"
    "                              answers 503, so load balancers stop sending (default 0)\n"
    "  -d, --drain-timeout S       then let in-flight requests finish for at most S\n"
    "                              seconds (default 30)\n"
    "      --share-ports           open listening ports even when another process already\n"
    "                              listens on them (SO_REUSEPORT splits the traffic); for a\n"
    "                              hand-over between two albd, else refused\n"
    "      --strict                apply all or nothing: any invalid resource (or a port\n"
    "                              that will not bind) keeps the whole running configuration;\n"
    "                              by default only the invalid resources keep their last good\n"
    "                              version (or stay absent) and everything else applies\n"
    "      --refuse-foreign        a document whose apiVersion is not albd/... (a\n"
    "                              kustomization.yaml, a Deployment) is an error; by default\n"
    "                              it is skipped with a note (log, /status)\n"
    "      --session-ticket-key FILE  TLS session-ticket key (48 or 80 bytes), repeatable\n"
    "                              (at most 8; the first encrypts); default: generated, rotated\n"
    "      --session-tickets N     TLS 1.3 session tickets sent after a full handshake, 1-8\n"
    "                              (default 1: a client uses each once and every resumption\n"
    "                              brings a new one; more serve clients that open several\n"
    "                              connections at once, at ~13 us of CPU per ticket)\n"
    "      --cert-cache DIR        where certificates fetched from a CertificateService are\n"
    "                              cached (0700/0600); default $STATE_DIRECTORY/certs or\n"
    "                              /var/lib/albd/certs\n"
    "      --ready-when-any        /readyz answers 200 while some listeners still wait for\n"
    "                              their first service certificate (default: all must serve)\n"
    "  -l, --log-level L           error, warn, info (default) or debug\n"
    "      --log-format F          text, json (one object per line: ts, level, msg) or auto\n"
    "                              (default; also $ALBD_LOG_FORMAT): text on a terminal or\n"
    "                              journald (with <N> priority prefixes), json otherwise\n"
    "  -h, --help                  print this\n"
    "\n"
    "Under systemd (NOTIFY_SOCKET set) albd sends READY=1 after the first apply, RELOADING=1\n"
    "on SIGHUP and STOPPING=1 on SIGTERM. Exit status 0 after a signal; 1 when it cannot\n"
    "start (endpoint or port in use, unreadable ticket key).\n";

static const char usage_validate[] =
    "usage: albd validate -m DIR [--refuse-foreign]\n"
    "check the manifests in DIR as `albd run` would load them (all or nothing), without\n"
    "serving; one \"file:line:col: error: ...\" line per problem on stderr (\"warning:\" and\n"
    "\"note:\" lines do not make it invalid); files matching DIR/.albdignore are not read\n"
    "\n"
    "  -m, --manifests DIR   the manifest folder (required)\n"
    "      --refuse-foreign  a document whose apiVersion is not albd/... is an error\n"
    "                        (default: skipped with a note)\n"
    "  -h, --help            print this\n"
    "\n"
    "exit status: 0 valid, 1 invalid, 64 usage error\n";

static const char usage_version[] = "usage: albd version\n"
                                    "print the version and the commit it was built from\n";

static const char usage_help[] = "usage: albd help [COMMAND]\n"
                                 "print the commands, or one command's options\n";

/* The usage text of command name, or NULL when there is no such command. */
static const char *command_usage(const char *name)
{
    if (strcmp(name, "run") == 0)
        return usage_run;
    if (strcmp(name, "plan") == 0)
        return ag_plan_usage;
    if (strcmp(name, "validate") == 0)
        return usage_validate;
    if (strcmp(name, "version") == 0)
        return usage_version;
    if (strcmp(name, "help") == 0)
        return usage_help;
    return NULL;
}

/* A usage error: the message, a pointer to --help, exit 64. */
__attribute__((format(printf, 2, 3))) static int usage_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "albd %s: ", cmd);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n(albd %s --help lists the options)\n", cmd);
    return AG_EXIT_USAGE;
}

int ag_load_all_or_nothing(const char *dir, bool refuse_foreign, struct rc_model **out,
                           struct rc_errs *errs)
{
    struct rc_load_opts o = {.now = time(NULL),
                             .strict = true,
                             .refuse_foreign = refuse_foreign,
                             .release_parsed = true};
    int rc = rc_load_dir_ex(dir, &o, out, errs, NULL);
    if (rc == 0)
        return 0;
    rc_model_unref(*out);
    *out = NULL;
    return -1;
}

static int cmd_validate(int argc, char **argv)
{
    const char *dir = NULL;
    bool refuse_foreign = false;
    enum { OPT_FOREIGN = 256 };
    static const struct option opts[] = {{"manifests", required_argument, NULL, 'm'},
                                         {"refuse-foreign", no_argument, NULL, OPT_FOREIGN},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "m:h", opts, NULL)) != -1) {
        switch (c) {
        case 'm':
            dir = optarg;
            break;
        case OPT_FOREIGN:
            refuse_foreign = true;
            break;
        case 'h':
            fputs(usage_validate, stdout);
            return AG_EXIT_OK;
        default:
            return usage_error("validate", "unknown option or missing value");
        }
    }
    if (optind != argc)
        return usage_error("validate", "unexpected argument \"%s\"", argv[optind]);
    if (!dir)
        return usage_error("validate", "-m DIR is required");
    struct rc_model *m = NULL;
    struct rc_errs errs;
    rc_errs_init(&errs);
    int rc = ag_load_all_or_nothing(dir, refuse_foreign, &m, &errs);
    rc_errs_sort(&errs);
    rc_errs_print(&errs, stderr);
    if (rc == 0)
        printf("%s: valid (%zu listeners, %zu server groups, %zu certificates)\n", dir,
               m->n_listeners, m->n_groups, m->n_certificates);
    else
        fprintf(stderr, "%s: %zu error(s)\n", dir, rc_errs_count_errors(&errs));
    rc_model_unref(m);
    rc_errs_cleanup(&errs);
    return rc == 0 ? AG_EXIT_OK : AG_EXIT_ERROR;
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

/* Seconds from 0 to 86400 (fractions allowed) as milliseconds, or -1. */
static long parse_seconds(const char *s)
{
    char *end;
    double v = strtod(s, &end);
    if (end == s || *end || !(v >= 0 && v <= 86400))
        return -1;
    return (long)(v * 1000);
}

static int cmd_run(int argc, char **argv)
{
    struct ag_options o = {.admin_addr = "127.0.0.1:9901",
                           .workers = 0,
                           .drain_ms = 30000,
                           .debounce_ms = 20,
                           .session_tickets = PX_TLS_TICKETS_DEFAULT};
    enum {
        OPT_GRACE = 256,
        OPT_SHARE,
        OPT_FOREIGN,
        OPT_LOG_FORMAT,
        OPT_CERT_CACHE,
        OPT_READY_ANY,
        OPT_SCHED,
        OPT_TICKETS
    };
    const char *env_format = getenv("ALBD_LOG_FORMAT");
    int log_format = env_format ? px_log_parse_format(env_format) : PX_LOG_FORMAT_AUTO;
    if (log_format < 0)
        return usage_error("run", "ALBD_LOG_FORMAT is one of text, json, auto");
    static const struct option opts[] = {{"manifests", required_argument, NULL, 'm'},
                                         {"admin", required_argument, NULL, 'a'},
                                         {"workers", required_argument, NULL, 'w'},
                                         {"drain-timeout", required_argument, NULL, 'd'},
                                         {"shutdown-grace", required_argument, NULL, OPT_GRACE},
                                         {"share-ports", no_argument, NULL, OPT_SHARE},
                                         {"worker-scheduling", required_argument, NULL, OPT_SCHED},
                                         {"log-level", required_argument, NULL, 'l'},
                                         {"log-format", required_argument, NULL, OPT_LOG_FORMAT},
                                         {"strict", no_argument, NULL, 's'},
                                         {"refuse-foreign", no_argument, NULL, OPT_FOREIGN},
                                         {"session-ticket-key", required_argument, NULL, 't'},
                                         {"session-tickets", required_argument, NULL, OPT_TICKETS},
                                         {"probe", required_argument, NULL, 'p'},
                                         {"admin-host", required_argument, NULL, 'H'},
                                         {"cert-cache", required_argument, NULL, OPT_CERT_CACHE},
                                         {"ready-when-any", no_argument, NULL, OPT_READY_ANY},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    int c;
    char *end;
    long ms;
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
            if (end == optarg || *end || o.workers < 0 || o.workers > 1024)
                return usage_error("run", "--workers takes a number from 0 (one per CPU) to 1024");
            break;
        case 'd':
            if ((ms = parse_seconds(optarg)) < 0)
                return usage_error("run", "--drain-timeout takes seconds from 0 to 86400");
            o.drain_ms = (unsigned)ms;
            break;
        case OPT_GRACE:
            if ((ms = parse_seconds(optarg)) < 0)
                return usage_error("run", "--shutdown-grace takes seconds from 0 to 86400");
            o.grace_ms = (unsigned)ms;
            break;
        case OPT_SHARE:
            o.share_ports = true;
            break;
        case OPT_SCHED:
            if (strcmp(optarg, "batch") != 0 && strcmp(optarg, "normal") != 0)
                return usage_error("run", "--worker-scheduling is batch or normal");
            o.sched_normal = strcmp(optarg, "normal") == 0;
            break;
        case OPT_CERT_CACHE:
            if (optarg[0] == '\0')
                return usage_error("run", "--cert-cache takes a folder");
            o.cert_cache_dir = optarg;
            break;
        case OPT_READY_ANY:
            o.ready_when_any = true;
            break;
        case 'l': {
            int l = parse_log_level(optarg);
            if (l < 0)
                return usage_error("run", "--log-level is one of error, warn, info, debug");
            px_log_set_level((enum px_log_level)l);
            break;
        }
        case OPT_LOG_FORMAT:
            if ((log_format = px_log_parse_format(optarg)) < 0)
                return usage_error("run", "--log-format is one of text, json, auto");
            break;
        case 's':
            o.strict = true;
            break;
        case OPT_FOREIGN:
            o.refuse_foreign = true;
            break;
        case 't':
            if (o.n_ticket_key_files == sizeof o.ticket_key_files / sizeof o.ticket_key_files[0])
                return usage_error("run", "at most 8 --session-ticket-key files");
            o.ticket_key_files[o.n_ticket_key_files++] = optarg;
            break;
        case OPT_TICKETS: {
            long n = strtol(optarg, &end, 10);
            if (end == optarg || *end || n < 1 || n > PX_TLS_TICKETS_MAX)
                return usage_error("run", "--session-tickets takes a number from 1 to 8");
            o.session_tickets = (unsigned)n;
            break;
        }
        case 'p':
            o.probe_addr = optarg;
            break;
        case 'H':
            if (o.n_admin_hosts == sizeof o.admin_hosts / sizeof o.admin_hosts[0])
                return usage_error("run", "at most 8 --admin-host names");
            if (!host_name_ok(optarg))
                return usage_error("run", "--admin-host takes a host name (letters, digits, "
                                          "'-', '.'), without port");
            o.admin_hosts[o.n_admin_hosts++] = optarg;
            break;
        case 'h':
            fputs(usage_run, stdout);
            return AG_EXIT_OK;
        default:
            return usage_error("run", "unknown option or missing value");
        }
    }
    if (optind != argc)
        return usage_error("run", "unexpected argument \"%s\"", argv[optind]);
    if (!o.manifest_dir)
        return usage_error("run", "-m DIR is required");
    px_log_set_format((enum px_log_format)log_format);
    if (o.cert_cache_dir == NULL)
        o.cert_cache_dir = ag_cert_cache_default();
    return ag_run(&o);
}

const char *ag_cli_commit(void)
{
    return ALBD_COMMIT;
}

const char *ag_cert_cache_default(void)
{
    static char cache[4096];
    /* systemd's StateDirectory= (its first entry), else the FHS place. */
    const char *st = getenv("STATE_DIRECTORY");
    size_t n = st && st[0] == '/' ? strcspn(st, ":") : 0;
    if (n && n < sizeof cache - 8)
        snprintf(cache, sizeof cache, "%.*s/certs", (int)n, st);
    else
        snprintf(cache, sizeof cache, "/var/lib/albd/certs");
    return cache;
}

/* Whether OpenSSL can hash with SHA-256, which every load needs (document
 * digests, certificate fingerprints): an OpenSSL configuration that
 * activates no provider able to (only the base provider, say) would
 * otherwise fail each load as if memory had run out. Prints why not. */
static bool crypto_ready(void)
{
    EVP_MD *md = EVP_MD_fetch(NULL, "SHA256", NULL);
    if (md != NULL) {
        EVP_MD_free(md);
        return true;
    }
    char *conf = CONF_get1_default_config_file();
    fprintf(stderr,
            "albd: OpenSSL offers no SHA-256: the providers its configuration activates (%s%s) "
            "cannot hash; activate the default (or fips) provider there\n",
            getenv("OPENSSL_CONF") ? "$OPENSSL_CONF " : "", conf ? conf : "openssl.cnf");
    OPENSSL_free(conf);
    ERR_clear_error();
    return false;
}

int ag_cli_main(int argc, char **argv)
{
    if (argc < 2) {
        fputs(usage, stderr);
        fputs(exit_codes, stderr);
        return AG_EXIT_USAGE;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
        if (argc > 2 && (strcmp(argv[2], "--help") == 0 || strcmp(argv[2], "-h") == 0)) {
            fputs(usage_version, stdout);
            return AG_EXIT_OK;
        }
        if (argc > 2)
            return usage_error("version", "takes no argument");
        printf("albd %s (commit %s)\n", ALBD_VERSION, ALBD_COMMIT);
        return AG_EXIT_OK;
    }
    if (strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0) {
        if (argc == 2) {
            fputs(usage, stdout);
            fputs(exit_codes, stdout);
            return AG_EXIT_OK;
        }
        const char *u = argc == 3 ? command_usage(argv[2]) : NULL;
        if (argc == 3 && strcmp(argv[2], "--help") == 0)
            u = usage_help;
        if (!u) {
            fprintf(stderr, "albd help: no command \"%s\"\n\n%s", argv[2], usage);
            return AG_EXIT_USAGE;
        }
        fputs(u, stdout);
        return AG_EXIT_OK;
    }
    /* Subcommand options are parsed from argv[1] on, as if it were argv[0]. */
    bool help = false;
    for (int i = 2; i < argc && !help; i++)
        help = strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0;
    if ((strcmp(cmd, "validate") == 0 || strcmp(cmd, "plan") == 0 || strcmp(cmd, "run") == 0) &&
        !help && !crypto_ready())
        return AG_EXIT_ERROR;
    if (strcmp(cmd, "validate") == 0)
        return cmd_validate(argc - 1, argv + 1);
    if (strcmp(cmd, "plan") == 0)
        return ag_plan_main(argc - 1, argv + 1);
    if (strcmp(cmd, "run") == 0)
        return cmd_run(argc - 1, argv + 1);
    fprintf(stderr, "albd: unknown command \"%s\"\n\n%s", cmd, usage);
    return AG_EXIT_USAGE;
}
