/* `albd plan`: diff the manifests against a running albd's /config, a saved
 * state file, or nothing. */
#include "agent/plan_cmd.h"

#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agent/cli.h"
#include "agent/http_get.h"
#include "reconciler/diff.h"
#include "reconciler/export.h"
#include "reconciler/load.h"
#include "reconciler/plan.h"
#include "reconciler/rc.h"
#include "reconciler/selector.h"

enum { CONFIG_MAX = 256 << 20 };

/* Appends one -l SELECTOR to the selector text (several -l are ANDed, like
 * requirements joined by commas). 0, or -1 when out of memory. */
static int selector_add(char **text, const char *more)
{
    size_t old = *text ? strlen(*text) : 0;
    char *t = realloc(*text, old + strlen(more) + 2);
    if (t == NULL)
        return -1;
    if (old > 0)
        t[old++] = ',';
    strcpy(t + old, more);
    *text = t;
    return 0;
}

/* GETs URL/config from a running albd's admin endpoint. */
static json_t *fetch_running(const char *url)
{
    char full[2048];
    size_t ul = strlen(url);
    while (ul > 0 && url[ul - 1] == '/')
        ul--;
    snprintf(full, sizeof full, "%.*s/config", (int)ul, url);
    char *body = NULL, err[512];
    size_t len = 0;
    if (ag_http_get(full, CONFIG_MAX, 30000, &body, &len, err, sizeof err) != 0) {
        fprintf(stderr, "albd plan: %s: %s\n", full, err);
        return NULL;
    }
    json_error_t je;
    json_t *j = json_loadb(body, len, 0, &je);
    free(body);
    if (!j)
        fprintf(stderr, "albd plan: %s: not JSON: line %d: %s\n", full, je.line, je.text);
    return j;
}

/* A service certificate plan did not find in the cache has unknown facts,
 * not removed ones: it takes the compared configuration's, so that the
 * plan shows only what is known to change (the loader's warning says plan
 * could not look). */
static void keep_unknown_facts(json_t *running, json_t *desired)
{
    json_t *dcerts = json_object_get(json_object_get(desired, "resources"), "Certificate");
    json_t *rcerts = json_object_get(json_object_get(running, "resources"), "Certificate");
    const char *name;
    json_t *res;
    json_object_foreach(dcerts, name, res)
    {
        json_t *spec = json_object_get(res, "spec");
        json_t *svc = json_object_get(json_object_get(spec, "source"), "service");
        json_t *rspec = json_object_get(json_object_get(rcerts, name), "spec");
        if (!json_is_true(json_object_get(svc, "pending")) || rspec == NULL)
            continue;
        json_object_del(svc, "pending");
        const char *k;
        json_t *v;
        json_object_foreach(rspec, k, v)
        {
            if (strcmp(k, "source") != 0 && json_object_get(spec, k) == NULL)
                json_object_set(spec, k, v);
        }
    }
}

const char ag_plan_usage[] =
    "usage: albd plan -m DIR [--against URL | --state FILE] [-o text|json] [-l SELECTOR]\n"
    "                 [--refuse-foreign] [--cert-cache DIR]\n"
    "show what applying the manifests in DIR would change; the manifests are loaded as\n"
    "`albd validate` does (errors on stderr)\n"
    "\n"
    "  -m, --manifests DIR   the manifest folder (required)\n"
    "  -a, --against URL     compare with a running albd: its admin endpoint's /config\n"
    "                        (e.g. http://127.0.0.1:9901)\n"
    "  -s, --state FILE      compare with a saved /config document\n"
    "                        (neither: compare with nothing, everything is added)\n"
    "  -o, --output FORMAT   text (default) or json (schemas/api/plan.json)\n"
    "  -l, --selector SEL    only resources whose labels match SEL (kubectl syntax:\n"
    "                        k=v, k!=v, k in (a,b), k notin (a,b), k, !k; comma = AND;\n"
    "                        several -l are ANDed)\n"
    "      --refuse-foreign  a document whose apiVersion is not albd/... is an error\n"
    "                        (default: skipped with a note on stderr)\n"
    "      --cert-cache DIR  where `albd run` caches certificates of a CertificateService\n"
    "                        (default as run's): their subject, names, expiry and\n"
    "                        fingerprint are read there; a warning says when one is not\n"
    "                        there (plan could not look)\n"
    "  -h, --help            print this\n"
    "\n"
    "A change of labels, annotations or namespace only is a change (shown as\n"
    "\"(metadata only)\"): /config would differ after applying it.\n"
    "exit status: 0 no changes, 2 changes, 1 error (invalid manifests, unreachable URL),\n"
    "64 usage error\n";

/* A usage error: the message, a pointer to --help, exit 64. Frees the
 * selector text gathered so far. */
static int usage_error(const char *msg, char *sel_text)
{
    free(sel_text);
    fprintf(stderr, "albd plan: %s\n(albd plan --help lists the options)\n", msg);
    return AG_EXIT_USAGE;
}

int ag_plan_main(int argc, char **argv)
{
    const char *dir = NULL, *against = NULL, *state = NULL, *format = "text";
    const char *cache = NULL;
    char *sel_text = NULL;
    bool refuse_foreign = false;
    enum { OPT_FOREIGN = 256 };
    static const struct option opts[] = {{"manifests", required_argument, NULL, 'm'},
                                         {"against", required_argument, NULL, 'a'},
                                         {"state", required_argument, NULL, 's'},
                                         {"output", required_argument, NULL, 'o'},
                                         {"selector", required_argument, NULL, 'l'},
                                         {"refuse-foreign", no_argument, NULL, OPT_FOREIGN},
                                         {"cert-cache", required_argument, NULL, 'C'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "m:a:s:o:l:h", opts, NULL)) != -1) {
        switch (c) {
        case 'm':
            dir = optarg;
            break;
        case 'a':
            against = optarg;
            break;
        case 's':
            state = optarg;
            break;
        case 'o':
            format = optarg;
            break;
        case OPT_FOREIGN:
            refuse_foreign = true;
            break;
        case 'C':
            cache = optarg;
            break;
        case 'l':
            if (selector_add(&sel_text, optarg) != 0) {
                fputs("albd plan: out of memory\n", stderr);
                free(sel_text);
                return AG_EXIT_ERROR;
            }
            break;
        case 'h':
            free(sel_text);
            fputs(ag_plan_usage, stdout);
            return AG_EXIT_OK;
        default:
            return usage_error("unknown option or missing value", sel_text);
        }
    }
    if (optind != argc)
        return usage_error("unexpected argument", sel_text);
    if (!dir)
        return usage_error("-m DIR is required", sel_text);
    if (against && state)
        return usage_error("--against and --state exclude each other", sel_text);
    if (strcmp(format, "text") != 0 && strcmp(format, "json") != 0)
        return usage_error("-o takes text or json", sel_text);

    /* A selector keeps the resources whose labels match it, on either side
     * (see reconciler/selector.h); a bad one is a usage error. */
    struct rc_selector *sel = NULL;
    char sel_err[256];
    if (rc_selector_parse(sel_text, &sel, sel_err, sizeof sel_err) != 0) {
        fprintf(stderr, "albd plan: bad label selector \"%s\": %s\n", sel_text ? sel_text : "",
                sel_err);
        free(sel_text);
        return AG_EXIT_USAGE;
    }
    free(sel_text);

    json_t *running = NULL;
    if (state) {
        json_error_t je;
        running = json_load_file(state, 0, &je);
        if (!running) {
            fprintf(stderr, "%s:%d:%d: error: %s\n", state, je.line, je.column, je.text);
            rc_selector_free(sel);
            return AG_EXIT_ERROR;
        }
    } else if (against) {
        running = fetch_running(against);
        if (!running) {
            rc_selector_free(sel);
            return AG_EXIT_ERROR;
        }
    }

    struct rc_model *m = NULL;
    struct rc_errs errs;
    rc_errs_init(&errs);
    /* Strict, like validate; service certificates from the cache (a
     * warning for those not there: plan could not look). */
    struct rc_load_opts lo = {.now = time(NULL),
                              .strict = true,
                              .refuse_foreign = refuse_foreign,
                              .keys_optional = true,
                              .cert_cache_dir = cache ? cache : ag_cert_cache_default()};
    int rc = rc_load_dir_ex(dir, &lo, &m, &errs, NULL) == 0 ? 0 : -1;
    rc_errs_sort(&errs);
    rc_errs_print(&errs, stderr);
    rc_errs_cleanup(&errs);
    if (rc != 0) {
        json_decref(running);
        rc_selector_free(sel);
        return AG_EXIT_ERROR;
    }
    json_t *desired = rc_export_model(m);
    rc_model_unref(m);
    if (desired && running)
        keep_unknown_facts(running, desired);
    struct rc_diff d;
    rc_diff_init(&d);
    int status = AG_EXIT_ERROR;
    if (desired && rc_selector_filter_exports(sel, running, desired) == 0 &&
        rc_diff_compute(running, desired, &d) == 0) {
        int w = strcmp(format, "json") == 0 ? rc_plan_write_json(&d, stdout)
                                            : rc_plan_write_text(&d, stdout);
        if (w == 0)
            status = rc_diff_has_changes(&d) ? AG_EXIT_CHANGES : AG_EXIT_OK;
    } else {
        fprintf(stderr, "albd plan: %s\n", d.error[0] ? d.error : "out of memory");
    }
    rc_diff_cleanup(&d);
    json_decref(desired);
    json_decref(running);
    rc_selector_free(sel);
    return status;
}
