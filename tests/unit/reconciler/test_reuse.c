/* A reload copies the resources whose documents and inputs are unchanged
 * from the running model instead of building them again (build.c, "copies
 * of unchanged resources"): an unchanged document is copied, a changed one
 * is built, a certificate whose file was replaced by rename is built (and
 * read), and a model holding copies outlives the models it copied from
 * (run under ASan: the copies point into their arenas). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "reconciler/diff.h"
#include "reconciler/export.h"
#include "reconciler/filecache.h"
#include "reconciler/load.h"
#include "reconciler/model.h"
#include "reconciler/rc.h"
#include "reconciler/reuse.h"
#include "reconciler/source.h"
#include "diff_count.h"
#include "test_files.h"

static char dir[256];

static char *read_all(const char *path)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    char *buf = malloc(1 << 20);
    assert_non_null(buf);
    size_t n = fread(buf, 1, (1 << 20) - 1, f);
    fclose(f);
    buf[n] = '\0';
    return buf;
}

static void put(const char *name, const char *text)
{
    char path[512], tmp[520];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    snprintf(tmp, sizeof(tmp), "%s.new", path);
    FILE *f = fopen(tmp, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    assert_int_equal(rename(tmp, path), 0); /* a new inode, as editors and kubectl do */
}

static void copy_in(const char *from, const char *name)
{
    char *text = read_all(from);
    put(name, text);
    free(text);
}

/* Files written so far are settled for the next loads (test_files.h). */
static void settle(void)
{
    tf_settle();
}

static const char CERTS[] = "apiVersion: albd/v1\nkind: Certificate\nmetadata: {name: site}\n"
                            "spec:\n  source:\n    files: {certificate: site.pem, privateKey: "
                            "site.key}\n";

static void put_groups(int weight_b)
{
    char text[1024];
    snprintf(text, sizeof(text),
             "apiVersion: albd/v1\nkind: ServerGroup\nmetadata: {name: ga}\n"
             "spec:\n  servers:\n  - {address: 10.0.0.1, port: 8080, weight: 10}\n---\n"
             "apiVersion: albd/v1\nkind: ServerGroup\nmetadata: {name: gb}\n"
             "spec:\n  servers:\n  - {address: 10.0.0.2, port: 8080, weight: %d}\n",
             weight_b);
    put("groups.yaml", text);
}

static const char LISTENER[] =
    "apiVersion: albd/v1\nkind: Listener\nmetadata: {name: web}\n"
    "spec:\n  protocol: HTTPS\n  port: 8443\n  tls: {certificate: site}\n"
    "  defaultAction: {forward: {serverGroup: ga}}\n";

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/albd-test-reuse-XXXXXX");
    if (mkdtemp(dir) == NULL)
        return -1;
    put("certs.yaml", CERTS);
    put_groups(20);
    put("listener.yaml", LISTENER);
    copy_in(ALBD_TEST_DATA "/certs/test-only-server.pem", "site.pem");
    copy_in(ALBD_TEST_DATA "/certs/test-only-server.key", "site.key");
    settle();
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    return tf_rm_rf(dir);
}

/* A load whose problems the caller looks at (errs: rc_errs_init'ed). */
static struct tf_result load_with(const struct rc_model *prev, struct rc_errs *errs)
{
    return tf_load(dir, prev, NULL, errs);
}

/* A load that must be clean. */
static struct tf_result load(const struct rc_model *prev)
{
    struct tf_result r = tf_load(dir, prev, NULL, NULL);
    assert_int_equal(r.rc, 0);
    return r;
}

/* The listener points into the new model's arrays, never the old one's. */
static void assert_wired(const struct rc_model *m)
{
    assert_int_equal(m->n_listeners, 1);
    const struct rc_listener *li = &m->listeners[0];
    assert_ptr_equal(li->tls.certificate, rc_model_certificate(m, "site"));
    assert_ptr_equal(li->default_group, rc_model_group(m, "ga"));
}

static void unchanged_documents_are_copied(void **state)
{
    (void)state;
    struct tf_result a = load(NULL);
    assert_int_equal(a.st.resources_copied, 0);
    struct tf_result b = load(a.m);
    assert_int_equal(b.st.resources_copied, 4); /* site, ga, gb and the listener */
    assert_int_equal(b.st.certs_parsed, 0);
    assert_int_equal(b.st.files_read, 0);
    assert_int_equal(b.st.files_reused, 2);
    /* No manifest is opened and nothing is parsed: the listener's
     * references are all copies, so it is copied too. */
    assert_int_equal(a.st.manifests_read, 3);
    assert_int_equal(b.st.manifests_read, 0);
    assert_int_equal(b.st.manifests_skipped, 3);
    assert_int_equal(b.st.docs_parsed, 0);
    assert_string_equal(b.m->digest, a.m->digest);
    /* Copied, not rebuilt: the data is the same memory. */
    assert_ptr_equal(rc_model_group(b.m, "gb")->servers, rc_model_group(a.m, "gb")->servers);
    assert_ptr_equal(rc_model_certificate(b.m, "site")->cert_pem,
                     rc_model_certificate(a.m, "site")->cert_pem);
    assert_wired(b.m);
    tf_done(&a);
    tf_done(&b);
}

static void a_changed_document_is_built(void **state)
{
    (void)state;
    struct tf_result a = load(NULL);
    put_groups(70);
    settle();
    struct tf_result b = load(a.m);
    assert_int_equal(b.st.resources_copied, 3); /* site, ga, the listener; gb changed */
    assert_int_equal(b.st.manifests_read, 1);   /* groups.yaml */
    assert_int_equal(b.st.manifests_skipped, 2);
    const struct rc_server_group *gb = rc_model_group(b.m, "gb");
    assert_int_equal(gb->servers[0].weight, 70);
    assert_ptr_not_equal(gb->servers, rc_model_group(a.m, "gb")->servers);
    assert_ptr_equal(rc_model_group(b.m, "ga")->servers, rc_model_group(a.m, "ga")->servers);
    assert_string_not_equal(b.m->digest, a.m->digest);
    assert_wired(b.m);
    tf_done(&a);
    tf_done(&b);
}

static void a_certificate_file_replaced_by_rename_is_read(void **state)
{
    (void)state;
    struct tf_result a = load(NULL);
    /* The same bytes under a new inode: the identity changed, so the file
     * is read again and the certificate built (its facts reused by bytes). */
    copy_in(ALBD_TEST_DATA "/certs/test-only-server.pem", "site.pem");
    settle();
    struct tf_result b = load(a.m);
    assert_int_equal(b.st.resources_copied, 2); /* ga and gb */
    assert_int_equal(b.st.files_read, 1);
    assert_int_equal(b.st.files_reused, 1); /* the key */
    assert_int_equal(b.st.certs_reused, 1);
    assert_ptr_not_equal(rc_model_certificate(b.m, "site")->cert_pem,
                         rc_model_certificate(a.m, "site")->cert_pem);
    assert_wired(b.m);
    tf_done(&a);
    tf_done(&b);
}

static void a_manifest_replaced_by_rename_is_read(void **state)
{
    (void)state;
    struct tf_result a = load(NULL);
    put("certs.yaml", CERTS); /* the same bytes, a new inode */
    settle();
    struct tf_result b = load(a.m);
    assert_int_equal(b.st.manifests_read, 1);
    assert_int_equal(b.st.manifests_skipped, 2);
    assert_int_equal(b.st.resources_copied, 4);
    assert_string_equal(b.m->digest, a.m->digest);
    assert_wired(b.m);
    tf_done(&a);
    tf_done(&b);
}

static void an_unsettled_manifest_is_read_again(void **state)
{
    (void)state;
    put("listener.yaml", LISTENER); /* written just now: not settled when read */
    struct tf_result a = load(NULL);
    struct tf_result b = load(a.m);
    assert_int_equal(b.st.manifests_read, 1);
    assert_int_equal(b.st.manifests_skipped, 2);
    settle();
    struct tf_result c = load(b.m);
    assert_int_equal(c.st.manifests_read, 1); /* b read it before it settled */
    struct tf_result d = load(c.m);
    assert_int_equal(d.st.manifests_read, 0);
    assert_wired(d.m);
    tf_done(&a);
    tf_done(&b);
    tf_done(&c);
    tf_done(&d);
}

static void a_model_with_copies_outlives_its_predecessors(void **state)
{
    (void)state;
    struct tf_result a = load(NULL);
    struct tf_result b = load(a.m);
    tf_done(&a); /* b's copies point into a's data arena: b holds it */
    put_groups(30);
    settle();
    struct tf_result c = load(b.m);
    tf_done(&b);
    assert_int_equal(c.st.resources_copied, 3); /* site, ga, the listener */
    /* Touch every copied byte (ASan reports a use after free here). */
    const struct rc_certificate *site = rc_model_certificate(c.m, "site");
    assert_non_null(site);
    assert_int_equal(strlen(site->cert_pem), site->cert_pem_len);
    assert_int_equal(strlen(site->key_pem), site->key_pem_len);
    assert_non_null(site->subject);
    assert_true(site->n_dns_names > 0 && strlen(site->dns_names[0]) > 0);
    const struct rc_server_group *ga = rc_model_group(c.m, "ga");
    assert_string_equal(ga->servers[0].address, "10.0.0.1");
    assert_string_equal(ga->meta.name, "ga");
    assert_non_null(strstr(ga->meta.loc.file, "groups.yaml"));
    assert_int_equal(rc_model_group(c.m, "gb")->servers[0].weight, 30);
    assert_wired(c.m);
    /* And the next load copies from c, whose sources are copies too. */
    struct tf_result d = load(c.m);
    tf_done(&c);
    assert_int_equal(d.st.resources_copied, 4); /* everything: nothing changed since c */
    assert_string_equal(rc_model_group(d.m, "ga")->servers[0].address, "10.0.0.1");
    assert_wired(d.m);
    tf_done(&d);
}

/* ---- a changed multi-document file parses only its changed documents ---- */

static void only_the_changed_document_is_parsed(void **state)
{
    (void)state;
    struct tf_result a = load(NULL);
    put_groups(70);
    struct tf_result b = load(a.m);
    assert_int_equal(b.st.manifests_read, 1); /* groups.yaml */
    /* gb only: not ga, and not the listener (copied). */
    assert_int_equal(b.st.docs_parsed, 1);
    assert_int_equal(rc_model_group(b.m, "gb")->servers[0].weight, 70);
    assert_ptr_equal(rc_model_group(b.m, "ga")->servers, rc_model_group(a.m, "ga")->servers);
    assert_wired(b.m);
    /* The same set of files and bytes as a load from scratch. */
    struct tf_result c = load(NULL);
    assert_string_equal(b.m->digest, c.m->digest);
    assert_int_equal(c.st.docs_parsed, 4);
    tf_done(&a);
    tf_done(&b);
    tf_done(&c);
}

static const char GA_GB[] = "apiVersion: albd/v1\nkind: ServerGroup\nmetadata: {name: ga}\n"
                            "spec:\n  servers:\n  - {address: 10.0.0.1, port: 8080, weight: 10}\n"
                            "---\n"
                            "apiVersion: albd/v1\nkind: ServerGroup\nmetadata: {name: gb}\n"
                            "spec:\n  servers:\n  - {address: 10.0.0.2, port: 8080, weight: 20}\n";

static void an_inserted_document_moves_the_others(void **state)
{
    (void)state;
    put("groups.yaml", GA_GB); /* the same bytes as put_groups(20) */
    struct tf_result a = load(NULL);
    assert_int_equal(rc_model_group(a.m, "gb")->meta.loc.line, 8);
    /* Five lines on top (a comment, a document and its marker). */
    char text[2048];
    snprintf(text, sizeof(text),
             "# new\napiVersion: albd/v1\nkind: ServerGroup\nmetadata: {name: g0}\n"
             "spec: {servers: [{address: 10.0.0.9, port: 8080}]}\n---\n%s",
             GA_GB);
    put("groups.yaml", text);
    struct tf_result b = load(a.m);
    assert_int_equal(b.st.docs_parsed, 1); /* g0 (the listener is copied) */
    const struct rc_server_group *ga = rc_model_group(b.m, "ga"), *gb = rc_model_group(b.m, "gb");
    assert_int_equal(rc_model_group(b.m, "g0")->meta.loc.line, 2);
    assert_int_equal(ga->meta.loc.line, 7);
    assert_int_equal(ga->servers[0].loc.line, 12);
    assert_int_equal(gb->meta.loc.line, 14);
    assert_int_equal(gb->servers[0].loc.line, 19);
    assert_int_equal(gb->servers[0].loc.col, rc_model_group(a.m, "gb")->servers[0].loc.col);
    assert_int_equal(gb->servers[0].weight, 20);
    /* What a load from scratch says. */
    struct tf_result c = load(NULL);
    assert_int_equal(rc_model_group(c.m, "gb")->meta.loc.line, 14);
    assert_int_equal(rc_model_group(c.m, "gb")->servers[0].loc.line, 19);
    /* An error below the inserted document, in a document that changed
     * after that: its place is exact. */
    char *bad = strdup(text);
    assert_non_null(bad);
    char *w = strstr(bad, "weight: 20");
    assert_non_null(w);
    memcpy(w, "weight: -1", 10);
    put("groups.yaml", bad);
    free(bad);
    struct rc_errs errs;
    rc_errs_init(&errs);
    struct rc_status st;
    rc_status_init(&st);
    struct rc_model *m = NULL;
    struct rc_load_opts o = {.now = time(NULL), .prev = b.m, .realtime = tf_clock};
    assert_int_equal(rc_load_dir_ex(dir, &o, &m, &errs, &st), 1);
    /* gb, and ga: a group copied with its servers moved is built by the
     * next load (a_moved_copy_outlives_the_load_that_moved_it). */
    assert_int_equal(st.docs_parsed, 2);
    bool found = false;
    for (size_t i = 0; i < errs.n; i++)
        if (errs.v[i].name && !strcmp(errs.v[i].name, "gb") && errs.v[i].severity == RC_ERROR) {
            assert_int_equal(errs.v[i].line, 19);
            assert_int_equal(errs.v[i].col, 45);
            found = true;
        }
    assert_true(found);
    rc_model_unref(m);
    rc_status_cleanup(&st);
    rc_errs_cleanup(&errs);
    tf_done(&a);
    tf_done(&b);
    tf_done(&c);
}

/* An unchanged certificate is the running model's very struct, shared
 * (model-t.h: 10,000 unchanged certificates cost a change pointers, not
 * copies). One whose document moved in its file is a copy of its own,
 * with the new line, and the loads after copy that copy again rather than
 * share it: it lives in the arena of the load that moved it, which they do
 * not hold (ASan checks the bytes after that load's model is gone). */
static void an_unchanged_certificate_is_shared_a_moved_one_copied(void **state)
{
    (void)state;
    struct tf_result a = load(NULL);
    struct tf_result b = load(a.m);
    const struct rc_certificate *ca = rc_model_certificate(a.m, "site");
    const struct rc_certificate *cb = rc_model_certificate(b.m, "site");
    assert_ptr_equal(cb, ca);
    assert_false(cb->relocated);
    char text[2048];
    snprintf(text, sizeof(text), "# moved\n# down\n%s", CERTS);
    put("certs.yaml", text);
    settle();
    struct tf_result c = load(b.m);
    assert_int_equal(c.st.certs_parsed, 0);
    const struct rc_certificate *cc = rc_model_certificate(c.m, "site");
    assert_ptr_not_equal(cc, cb);
    assert_true(cc->relocated);
    assert_int_equal(cc->meta.loc.line, cb->meta.loc.line + 2);
    assert_int_equal(cc->where_loc.line, cb->where_loc.line + 2);
    assert_ptr_equal(cc->cert_pem, cb->cert_pem); /* its bytes still shared */
    assert_wired(c.m);
    tf_done(&a);
    tf_done(&b);
    struct tf_result d = load(c.m);
    const struct rc_certificate *cd = rc_model_certificate(d.m, "site");
    assert_ptr_not_equal(cd, cc);
    int line = cc->meta.loc.line;
    tf_done(&c);
    assert_int_equal(cd->meta.loc.line, line);
    assert_string_equal(cd->meta.name, "site");
    assert_int_equal(strlen(cd->cert_pem), cd->cert_pem_len);
    assert_int_equal(strlen(cd->key_pem), cd->key_pem_len);
    assert_wired(d.m);
    tf_done(&d);
}

static const struct rc_kept_mfile *mfile_of(const struct rc_model *m, const char *name)
{
    const struct rc_sources *s = rc_model_sources(m);
    assert_non_null(s);
    for (size_t i = 0; i < s->n_mfiles; i++) {
        const char *p = s->mfiles[i]->path, *slash = strrchr(p, '/');
        if (slash && !strcmp(slash + 1, name))
            return s->mfiles[i];
    }
    return NULL;
}

static const struct rc_kept_file *kept_file_of(const struct rc_model *m, const char *name)
{
    const struct rc_sources *s = rc_model_sources(m);
    for (size_t i = 0; i < s->kept.n; i++) {
        const char *slash = strrchr(s->kept.v[i]->path, '/');
        if (slash && !strcmp(slash + 1, name))
            return s->kept.v[i];
    }
    return NULL;
}

/* The records a later load takes (sources, the manifest file, the
 * certificate and key files) of an unchanged certificate are the same
 * structs in every model, like the certificate itself: a change does not
 * copy 10,000 of each. They live in the arena of the load that made them,
 * and stay valid when that load's model is gone (ASan). The records of a
 * certificate whose document moved are the new model's own, and the next
 * load does not share them: that model may be gone first. */
static void an_unchanged_certificate_s_records_are_shared(void **state)
{
    (void)state;
    struct tf_result a = load(NULL);
    put_groups(30);
    settle();
    struct tf_result b = load(a.m);
    const struct rc_source *sa = rc_sources_find(rc_model_sources(a.m), "Certificate", "site");
    assert_non_null(sa);
    assert_true(sa->home);
    assert_ptr_equal(rc_sources_find(rc_model_sources(b.m), "Certificate", "site"), sa);
    assert_ptr_equal(mfile_of(b.m, "certs.yaml"), mfile_of(a.m, "certs.yaml"));
    assert_ptr_equal(kept_file_of(b.m, "site.pem"), kept_file_of(a.m, "site.pem"));
    assert_ptr_equal(kept_file_of(b.m, "site.key"), kept_file_of(a.m, "site.key"));
    /* The changed group's records are new; the listener's (a copy in
     * b's own arrays) are b's own. */
    assert_ptr_not_equal(rc_sources_find(rc_model_sources(b.m), "ServerGroup", "gb"),
                         rc_sources_find(rc_model_sources(a.m), "ServerGroup", "gb"));
    assert_ptr_not_equal(mfile_of(b.m, "groups.yaml"), mfile_of(a.m, "groups.yaml"));
    const struct rc_source *lb = rc_sources_find(rc_model_sources(b.m), "Listener", "web");
    assert_false(lb->home);
    tf_done(&a);
    put_groups(40);
    settle();
    struct tf_result c = load(b.m);
    tf_done(&b);
    const struct rc_source *sc = rc_sources_find(rc_model_sources(c.m), "Certificate", "site");
    assert_ptr_equal(sc, sa);
    assert_int_equal(strlen(sc->text), sc->len);
    assert_non_null(strstr(sc->text, "privateKey: site.key"));
    const struct rc_kept_mfile *mc = mfile_of(c.m, "certs.yaml");
    assert_int_equal(mc->n_docs, 1);
    assert_ptr_equal(mc->docs[0], sc);
    const struct rc_kept_file *kc = kept_file_of(c.m, "site.pem");
    assert_non_null(kc);
    assert_int_equal(strlen(kc->bytes), kc->len);
    assert_ptr_equal(kc->bytes, rc_model_certificate(c.m, "site")->cert_pem);

    /* Moved: the records are c's own, and d takes copies of them. */
    char text[2048];
    snprintf(text, sizeof(text), "# moved\n%s", CERTS);
    put("certs.yaml", text);
    settle();
    struct tf_result d = load(c.m);
    const struct rc_source *sd = rc_sources_find(rc_model_sources(d.m), "Certificate", "site");
    assert_ptr_not_equal(sd, sc);
    assert_false(sd->home);
    assert_int_equal(sd->line, sc->line + 1);
    assert_false(mfile_of(d.m, "certs.yaml")->home);
    int line = sd->line;
    struct tf_result e = load(d.m);
    tf_done(&c);
    tf_done(&d);
    const struct rc_source *se = rc_sources_find(rc_model_sources(e.m), "Certificate", "site");
    assert_int_equal(se->line, line);
    assert_string_equal(se->name, "site");
    const struct rc_kept_mfile *me = mfile_of(e.m, "certs.yaml");
    assert_int_equal(me->n_docs, 1);
    assert_int_equal(me->docs[0]->line, line);
    assert_non_null(kept_file_of(e.m, "site.key"));
    assert_int_equal(strlen(kept_file_of(e.m, "site.key")->bytes),
                     kept_file_of(e.m, "site.key")->len);
    tf_done(&e);
}

/* A certificate file touched (the same bytes, a new identity) while a
 * group is invalid: the first pass builds the certificate again and reads
 * the file; the containing pass copies the certificate (the file's bytes
 * are what prev read) and its file's record names those bytes, from an
 * earlier load, so the record lives with the new model, not with its
 * bytes, and the next load makes its own: that load may keep nothing else
 * of that model (ASan: the record is read after that model is gone). */
static void a_file_record_away_from_its_bytes_is_not_shared(void **state)
{
    (void)state;
    struct tf_result a = load(NULL);
    char key[512];
    snprintf(key, sizeof(key), "%s/site.key", dir);
    assert_int_equal(utimes(key, NULL), 0);
    put_groups(-5);
    settle();
    struct rc_errs errs;
    rc_errs_init(&errs);
    struct tf_result b = load_with(a.m, &errs);
    rc_errs_cleanup(&errs);
    assert_int_equal(b.rc, 1);
    assert_ptr_equal(rc_model_certificate(b.m, "site"), rc_model_certificate(a.m, "site"));
    const struct rc_kept_file *kb = kept_file_of(b.m, "site.key");
    assert_non_null(kb);
    assert_false(kb->home);
    put_groups(50);
    settle();
    struct tf_result c = load(b.m);
    assert_ptr_not_equal(kept_file_of(c.m, "site.key"), kb);
    tf_done(&a);
    tf_done(&b);
    const struct rc_kept_file *kc = kept_file_of(c.m, "site.key");
    assert_non_null(kc);
    assert_int_equal(strlen(kc->bytes), kc->len);
    assert_non_null(strstr(kc->path, "site.key"));
    tf_done(&c);
}

/* A copy records where its document is now: the next load measures moves
 * from there, and parses it there when it must build it (an error in it,
 * or a change to what it refers to, is reported at the right line). */
static void a_moved_copy_keeps_its_new_place(void **state)
{
    (void)state;
    struct tf_result a = load(NULL);
    const struct rc_source *sa = rc_sources_find(rc_model_sources(a.m), "Listener", "web");
    assert_non_null(sa);
    int line = sa->line;
    char text[2048];
    snprintf(text, sizeof(text), "# moved\n# down\n%s", LISTENER);
    put("listener.yaml", text);
    settle();
    struct tf_result b = load(a.m);
    assert_int_equal(b.st.resources_copied, 4); /* the listener among them */
    const struct rc_source *sb = rc_sources_find(rc_model_sources(b.m), "Listener", "web");
    assert_non_null(sb);
    assert_int_equal(sb->line, line + 2);
    assert_int_equal(b.m->listeners[0].meta.loc.line, a.m->listeners[0].meta.loc.line + 2);
    tf_done(&a);
    tf_done(&b);
}

/* A document moved to another file, byte for byte, is built again: its
 * locations, and the folder its relative paths start from, are the new
 * file's. */
static void a_document_moved_to_another_file_is_built(void **state)
{
    (void)state;
    struct tf_result a = load(NULL);
    char path[512];
    snprintf(path, sizeof(path), "%s/listener.yaml", dir);
    assert_int_equal(unlink(path), 0);
    put("other.yaml", LISTENER);
    settle();
    struct tf_result b = load(a.m);
    assert_int_equal(b.st.resources_copied, 3); /* site, ga, gb */
    assert_int_equal(b.m->n_listeners, 1);
    assert_non_null(strstr(b.m->listeners[0].meta.loc.file, "other.yaml"));
    assert_wired(b.m);
    tf_done(&a);
    tf_done(&b);
}

/* A group copied after its document moved in its file gets its servers
 * with the new lines in this load's arena; a later load that copies it
 * again must keep that arena alive, not only the one the group was first
 * built in (ASan reports a use after free here otherwise). */
static void a_moved_copy_outlives_the_load_that_moved_it(void **state)
{
    (void)state;
    put("groups.yaml", GA_GB);
    struct tf_result a = load(NULL);
    int line = rc_model_group(a.m, "gb")->servers[0].loc.line + 2;
    char text[2048];
    snprintf(text, sizeof(text), "# moved\n# down\n%s", GA_GB);
    put("groups.yaml", text);
    settle();
    struct tf_result b = load(a.m);
    assert_int_equal(b.st.docs_parsed, 0); /* ga and gb copied, moved */
    assert_int_equal(rc_model_group(b.m, "gb")->servers[0].loc.line, line);
    tf_done(&a);
    struct tf_result c = load(b.m); /* gb copied from b's copy */
    tf_done(&b);
    const struct rc_server_group *gb = rc_model_group(c.m, "gb");
    assert_non_null(gb);
    assert_int_equal(gb->servers[0].loc.line, line);
    assert_string_equal(gb->servers[0].address, "10.0.0.2");
    struct tf_result d = load(c.m);
    tf_done(&c);
    assert_string_equal(rc_model_group(d.m, "gb")->servers[0].address, "10.0.0.2");
    tf_done(&d);
}

/* Anchors are refused on the path that parses only the changed documents
 * too: the file is parsed whole, the error is where the anchor is, and the
 * groups keep their last good versions. */
static void an_anchor_in_a_changed_file_is_refused(void **state)
{
    (void)state;
    put("groups.yaml", "apiVersion: albd/v1\nkind: ServerGroup\nmetadata: {name: ga}\n"
                       "spec:\n  servers:\n  - {address: 10.0.0.1, port: 8080, weight: 10}\n"
                       "---\n"
                       "apiVersion: albd/v1\nkind: ServerGroup\nmetadata: {name: gb}\n"
                       "spec:\n  servers:\n  - {address: 10.0.0.2, port: 8080, weight: 20}\n");
    struct tf_result a = load(NULL);
    put("groups.yaml", "apiVersion: albd/v1\nkind: ServerGroup\nmetadata: {name: ga}\n"
                       "spec: &s\n  servers:\n  - {address: 10.0.0.1, port: 8080, weight: 10}\n"
                       "---\n"
                       "apiVersion: albd/v1\nkind: ServerGroup\nmetadata: {name: gb}\n"
                       "spec:\n  servers:\n  - {address: 10.0.0.2, port: 8080, weight: 30}\n");
    struct rc_errs errs;
    rc_errs_init(&errs);
    struct tf_result b = load_with(a.m, &errs);
    assert_int_equal(b.rc, 1);
    assert_true(errs.n >= 1);
    assert_non_null(strstr(errs.v[0].file, "groups.yaml"));
    assert_int_equal(errs.v[0].line, 4);
    assert_int_equal(errs.v[0].col, 7);
    assert_non_null(strstr(errs.v[0].msg, "anchors"));
    /* Both groups keep their last good versions. */
    assert_int_equal(rc_model_group(b.m, "gb")->servers[0].weight, 20);
    assert_non_null(rc_model_group(b.m, "ga"));
    rc_errs_cleanup(&errs);
    tf_done(&a);
    tf_done(&b);
}

/* tests/data/invalid/multi-document, reached by changing a valid version:
 * only the changed document is parsed, and its error is where it is. */
static void an_error_in_a_changed_document_is_exact(void **state)
{
    (void)state;
    char *text = read_all(ALBD_TEST_DATA "/invalid/multi-document/m.yaml");
    char *z = strstr(text, "requestTimeoutSeconds: 0");
    assert_non_null(z);
    z[strlen("requestTimeoutSeconds: ")] = '5';
    char sub[300];
    snprintf(sub, sizeof(sub), "%s/md", dir);
    assert_int_equal(mkdir(sub, 0755), 0);
    put("md/m.yaml", text);
    struct rc_errs errs;
    rc_errs_init(&errs);
    struct rc_model *a = NULL, *b = NULL;
    struct rc_load_opts o = {.now = time(NULL), .realtime = tf_clock};
    assert_int_equal(rc_load_dir_ex(sub, &o, &a, &errs, NULL), 0);
    z[strlen("requestTimeoutSeconds: ")] = '0';
    put("md/m.yaml", text);
    free(text);
    struct rc_status st;
    rc_status_init(&st);
    o.prev = a;
    assert_int_equal(rc_load_dir_ex(sub, &o, &b, &errs, &st), 1);
    assert_int_equal(st.manifests_read, 1);
    assert_int_equal(st.docs_parsed, 1); /* the listener; the group is copied */
    assert_int_equal(errs.n, 1);
    assert_int_equal(errs.v[0].line, 15);
    assert_int_equal(errs.v[0].col, 26);
    assert_string_equal(errs.v[0].path, "spec.requestTimeoutSeconds");
    rc_model_unref(a);
    rc_model_unref(b);
    rc_status_cleanup(&st);
    rc_errs_cleanup(&errs);
}

/* ---- a listener is copied only when everything it uses is a copy ---- */

static void a_listener_whose_group_changed_is_built(void **state)
{
    (void)state;
    struct tf_result a = load(NULL);
    put("groups.yaml", "apiVersion: albd/v1\nkind: ServerGroup\nmetadata: {name: ga}\n"
                       "spec:\n  servers:\n  - {address: 10.0.0.1, port: 8080, weight: 11}\n---\n"
                       "apiVersion: albd/v1\nkind: ServerGroup\nmetadata: {name: gb}\n"
                       "spec:\n  servers:\n  - {address: 10.0.0.2, port: 8080, weight: 20}\n");
    struct tf_result b = load(a.m);
    assert_int_equal(b.st.resources_copied, 2); /* site and gb; ga changed, so the listener */
    assert_int_equal(b.m->listeners[0].default_group->servers[0].weight, 11);
    assert_wired(b.m);
    /* Its certificate changes (a label): built again too. */
    put("certs.yaml", "apiVersion: albd/v1\nkind: Certificate\n"
                      "metadata: {name: site, labels: {team: web}}\n"
                      "spec:\n  source:\n    files: {certificate: site.pem, privateKey: "
                      "site.key}\n");
    struct tf_result c = load(b.m);
    assert_int_equal(c.st.resources_copied, 2); /* ga and gb */
    assert_wired(c.m);
    struct tf_result d = load(c.m);
    assert_int_equal(d.st.resources_copied, 4);
    assert_wired(d.m);
    tf_done(&a);
    tf_done(&b);
    tf_done(&c);
    tf_done(&d);
}

/* The change log compares exports of the running and the new model
 * (rc_export_pair): a copied listener is left out of both, a built one is
 * in both, and the changes found are those of the whole exports. */
static void the_change_log_leaves_out_copied_listeners(void **state)
{
    (void)state;
    struct tf_result a = load(NULL);
    put_groups(40); /* gb changes; the listener forwards to ga: copied */
    settle();
    struct tf_result b = load(a.m);
    json_t *x, *y;
    assert_int_equal(rc_export_pair(a.m, b.m, &x, &y), 0);
    json_t *lx = json_object_get(json_object_get(x, "resources"), "Listener");
    json_t *ly = json_object_get(json_object_get(y, "resources"), "Listener");
    assert_int_equal(json_object_size(lx), 0);
    assert_int_equal(json_object_size(ly), 0);
    tf_assert_pair_changes(x, y, a.m, b.m, 1);
    /* ga changes: the listener is built, in both exports, and unchanged. */
    put("groups.yaml", "apiVersion: albd/v1\nkind: ServerGroup\nmetadata: {name: ga}\n"
                       "spec:\n  servers:\n  - {address: 10.0.0.1, port: 8080, weight: 11}\n---\n"
                       "apiVersion: albd/v1\nkind: ServerGroup\nmetadata: {name: gb}\n"
                       "spec:\n  servers:\n  - {address: 10.0.0.2, port: 8080, weight: 40}\n");
    settle();
    struct tf_result c = load(b.m);
    assert_int_equal(rc_export_pair(b.m, c.m, &x, &y), 0);
    assert_int_equal(json_object_size(json_object_get(json_object_get(x, "resources"), "Listener")),
                     1);
    assert_int_equal(json_object_size(json_object_get(json_object_get(y, "resources"), "Listener")),
                     1);
    assert_int_equal(tf_n_changes(x, y), 1); /* ga only */
    json_decref(x);
    json_decref(y);
    tf_done(&a);
    tf_done(&b);
    tf_done(&c);
}

/* With a second Instance a listener that names none is an error: it is
 * built again, not copied. */
static void a_listener_is_built_when_the_instances_change(void **state)
{
    (void)state;
    struct tf_result a = load(NULL);
    put("instances.yaml", "apiVersion: albd/v1\nkind: Instance\nmetadata: {name: one}\n---\n"
                          "apiVersion: albd/v1\nkind: Instance\nmetadata: {name: two}\n");
    struct rc_errs errs;
    rc_errs_init(&errs);
    struct tf_result b = load_with(a.m, &errs);
    assert_int_equal(b.rc, 1);
    const struct rc_res_status *web = rc_status_find(&b.st, "Listener", "web");
    assert_non_null(web);
    /* Not copied: the error is reported (its last good version used the
     * implicit default instance, gone now, so it is left out). */
    assert_int_not_equal(web->state, RC_RES_READY);
    assert_non_null(strstr(web->message, "instance"));
    rc_errs_cleanup(&errs);
    tf_done(&a);
    tf_done(&b);
}

/* A port clash reported on a copied listener (the later one in the
 * sources) still has its exact place: it is parsed for that. */
static void a_clash_on_a_copied_listener_is_located(void **state)
{
    (void)state;
    struct tf_result a = load(NULL);
    put("a-first.yaml", "apiVersion: albd/v1\nkind: Listener\nmetadata: {name: api}\n"
                        "spec:\n  protocol: HTTPS\n  port: 8443\n  tls: {certificate: site}\n"
                        "  defaultAction: {forward: {serverGroup: gb}}\n");
    struct rc_errs errs;
    rc_errs_init(&errs);
    struct tf_result b = load_with(a.m, &errs);
    assert_int_equal(b.rc, 1);
    bool found = false;
    for (size_t i = 0; i < errs.n; i++)
        if (errs.v[i].name && !strcmp(errs.v[i].name, "web") && errs.v[i].severity == RC_ERROR &&
            strstr(errs.v[i].msg, "port 8443")) {
            assert_non_null(strstr(errs.v[i].file, "listener.yaml"));
            assert_int_equal(errs.v[i].line, 6); /* spec.port */
            found = true;
        }
    assert_true(found);
    rc_errs_cleanup(&errs);
    tf_done(&a);
    tf_done(&b);
}

/* A load at time now (errs: rc_errs_init'ed) with prev as the running
 * model; a ready call noted
 * in *seen (note_ready, below; NULL: none) and, when late is not NULL, the
 * expiry warnings left there (rc_load_opts.late_expiry). */
struct seen_ready;
static void note_ready(void *arg, struct rc_model *m);
static struct tf_result load_ready(const struct rc_model *prev, time_t now, struct rc_errs *errs,
                                   struct seen_ready *seen, struct rc_late_expiries *late)
{
    struct tf_result r = {0};
    rc_status_init(&r.st);
    struct rc_load_opts o = {.now = now,
                             .prev = prev,
                             .realtime = tf_clock,
                             .ready = seen ? note_ready : NULL,
                             .ready_arg = seen,
                             .late_expiry = late};
    r.rc = rc_load_dir_ex(dir, &o, &r.m, errs, &r.st);
    return r;
}

/* ... with neither. */
static struct tf_result load_at(const struct rc_model *prev, time_t now, struct rc_errs *errs)
{
    return load_ready(prev, now, errs, NULL, NULL);
}

/* A certificate near expiry is copied like any unchanged one (10,000
 * short-lived certificates are not rebuilt on every change), and its
 * warning is reported again, at the same place. */
static void a_certificate_near_expiry_is_copied_with_its_warning(void **state)
{
    (void)state;
    struct tf_result first = load(NULL);
    time_t soon = rc_model_certificate(first.m, "site")->not_after - 10 * 86400;
    tf_done(&first);
    struct rc_errs ea, eb;
    rc_errs_init(&ea);
    rc_errs_init(&eb);
    struct tf_result a = load_at(NULL, soon, &ea);
    assert_int_equal(a.rc, 0);
    struct tf_result b = load_at(a.m, soon, &eb);
    assert_int_equal(b.rc, 0);
    assert_int_equal(b.st.resources_copied, 4);
    assert_int_equal(b.st.docs_parsed, 0);
    assert_int_equal(b.st.certs_parsed, 0);
    assert_ptr_equal(rc_model_certificate(b.m, "site")->cert_pem,
                     rc_model_certificate(a.m, "site")->cert_pem);
    assert_int_equal(ea.n, 1);
    assert_int_equal(eb.n, 1);
    assert_int_equal(eb.v[0].severity, RC_WARNING);
    assert_string_equal(eb.v[0].msg, ea.v[0].msg);
    assert_non_null(strstr(eb.v[0].msg, "(in 10 days)"));
    assert_string_equal(eb.v[0].path, ea.v[0].path);
    assert_string_equal(eb.v[0].kind, "Certificate");
    assert_string_equal(eb.v[0].name, "site");
    assert_string_equal(eb.v[0].file, ea.v[0].file);
    assert_int_equal(eb.v[0].line, ea.v[0].line);
    assert_int_equal(eb.v[0].col, ea.v[0].col);
    assert_wired(b.m);
    /* Expired by now: built, and the error reported. */
    struct rc_errs ec;
    rc_errs_init(&ec);
    struct tf_result c = load_at(b.m, soon + 11 * 86400, &ec);
    assert_int_equal(ec.n >= 1, 1);
    assert_int_equal(ec.v[0].severity, RC_ERROR);
    assert_non_null(strstr(ec.v[0].msg, "expired"));
    tf_done(&a);
    tf_done(&b);
    tf_done(&c);
    rc_errs_cleanup(&ea);
    rc_errs_cleanup(&eb);
    rc_errs_cleanup(&ec);
}

/* What a ready call (rc_load_opts.ready) saw. */
struct seen_ready {
    int calls;
    struct rc_model *m;
    const struct rc_errs *errs;
    size_t errs_then;      /* errs->n at the call */
    bool sources_then;     /* rc_model_sources(m) at the call */
    char digest_then[65];  /* m->digest at the call */
    const char *root_then; /* m->root at the call */
};

static void note_ready(void *arg, struct rc_model *m)
{
    struct seen_ready *s = arg;
    s->calls++;
    s->m = m;
    s->errs_then = s->errs->n;
    s->sources_then = rc_model_sources(m) != NULL;
    memcpy(s->digest_then, m->digest, sizeof(s->digest_then));
    s->root_then = m->root;
}

/* Loads *a (into ea) at a time 10 days before the test certificate
 * expires, then *plain (into ec): the next load after it, with no ready
 * call, which copies the certificate and warns once. Returns that time. */
static time_t near_expiry_loads(struct tf_result *a, struct rc_errs *ea, struct tf_result *plain,
                                struct rc_errs *ec)
{
    struct tf_result first = load(NULL);
    time_t soon = rc_model_certificate(first.m, "site")->not_after - 10 * 86400;
    tf_done(&first);
    rc_errs_init(ea);
    rc_errs_init(ec);
    *a = load_at(NULL, soon, ea);
    assert_int_equal(a->rc, 0);
    *plain = load_at(a->m, soon, ec);
    assert_int_equal(plain->rc, 0);
    assert_int_equal(ec->n, 1);
    return soon;
}

/* x is the warning y is: the same text at the same place, about "site". */
static void assert_same_warning(const struct rc_err *x, const struct rc_err *y)
{
    assert_int_equal(x->severity, RC_WARNING);
    assert_string_equal(x->msg, y->msg);
    assert_string_equal(x->file, y->file);
    assert_int_equal(x->line, y->line);
    assert_int_equal(x->col, y->col);
    assert_string_equal(x->path, y->path);
    assert_string_equal(x->kind, "Certificate");
    assert_string_equal(x->name, "site");
}

/* A caller that serves the model gets it as soon as it is built: before
 * the load keeps its records for the next one and before the expiry
 * warnings of the certificates it copied are formatted (10,000 of them on
 * every change). The load then returns that very model, complete, and the
 * same warnings as a load without the call. */
static void the_ready_call_comes_before_the_bookkeeping(void **state)
{
    (void)state;
    struct rc_errs ea, eb, ec;
    struct tf_result a, plain;
    time_t soon = near_expiry_loads(&a, &ea, &plain, &ec);
    rc_errs_init(&eb);

    struct seen_ready seen = {.errs = &eb};
    struct tf_result b = load_ready(a.m, soon, &eb, &seen, NULL);
    assert_int_equal(b.rc, 0);
    assert_int_equal(seen.calls, 1);
    assert_ptr_equal(seen.m, b.m);
    assert_int_equal(b.st.resources_copied, 4); /* the certificate among them */
    /* At the call: complete for serving, nothing kept or reported yet. */
    assert_int_equal(seen.errs_then, 0);
    assert_false(seen.sources_then);
    assert_string_equal(seen.digest_then, plain.m->digest);
    assert_non_null(seen.root_then);
    assert_string_equal(seen.root_then, plain.m->root);
    /* After it: the records and the same warning as without the call. */
    assert_non_null(rc_model_sources(b.m));
    assert_int_equal(eb.n, 1);
    assert_same_warning(&eb.v[0], &ec.v[0]);
    /* And the next load copies from it as from any other. */
    struct rc_errs ed;
    rc_errs_init(&ed);
    struct tf_result c = load_at(b.m, soon, &ed);
    assert_int_equal(c.rc, 0);
    assert_int_equal(c.st.resources_copied, 4);
    assert_wired(c.m);
    tf_done(&a);
    tf_done(&plain);
    tf_done(&b);
    tf_done(&c);
    rc_errs_cleanup(&ea);
    rc_errs_cleanup(&eb);
    rc_errs_cleanup(&ec);
    rc_errs_cleanup(&ed);
}

/* A caller that serves the model may take those warnings after the load
 * (rc_load_opts.late_expiry: the agent writes them once the load's
 * scratch is given back). They are the same warnings, about the returned
 * model's certificates: still whole once the running model the load
 * copied them from is gone (under ASan: nothing read from freed
 * memory). */
static void the_expiry_warnings_can_wait_for_the_caller(void **state)
{
    (void)state;
    struct rc_errs ea, eb, ec;
    struct tf_result a, plain;
    time_t soon = near_expiry_loads(&a, &ea, &plain, &ec);
    rc_errs_init(&eb);

    struct seen_ready seen = {.errs = &eb};
    struct rc_late_expiries late = {.n = 0};
    struct tf_result b = load_ready(a.m, soon, &eb, &seen, &late);
    assert_int_equal(b.rc, 0);
    assert_int_equal(b.st.resources_copied, 4);
    assert_int_equal(eb.n, 0); /* left to the caller */
    assert_int_equal(late.n, 1);
    tf_done(&a); /* the running model it copied from goes */
    rc_late_expiries_report(&late, &eb);
    assert_int_equal(late.n, 0);
    assert_null(late.v);
    assert_int_equal(eb.n, 1);
    assert_same_warning(&eb.v[0], &ec.v[0]);
    /* Without a ready call nothing waits: to errs, as before. */
    struct rc_errs ed;
    rc_errs_init(&ed);
    struct rc_late_expiries unused = {.n = 0};
    struct tf_result c = load_ready(b.m, soon, &ed, NULL, &unused);
    assert_int_equal(c.rc, 0);
    assert_int_equal(unused.n, 0);
    assert_int_equal(ed.n, 1);
    assert_string_equal(ed.v[0].msg, ec.v[0].msg);
    tf_done(&plain);
    tf_done(&b);
    tf_done(&c);
    rc_errs_cleanup(&ea);
    rc_errs_cleanup(&eb);
    rc_errs_cleanup(&ec);
    rc_errs_cleanup(&ed);
}

/* ---- compaction: copies do not keep mostly unused arenas alive ---- */

/* The listener with a ~256 KiB comment inside its document (so inside the
 * source text its model keeps), different in each generation g. */
static void put_big_listener(int g)
{
    size_t cap = 300 * 1024, n = 0;
    char *text = malloc(cap);
    assert_non_null(text);
    n += (size_t)snprintf(text + n, cap - n, "apiVersion: albd/v1\nkind: Listener\n");
    for (int i = 0; i < 4096; i++)
        n += (size_t)snprintf(text + n, cap - n,
                              "# generation %6d, line %4d: padding padding pad\n", g, i);
    n += (size_t)snprintf(text + n, cap - n, "%s",
                          LISTENER + strlen("apiVersion: albd/v1\nkind: Listener\n"));
    assert_true(n < cap - 1);
    put("listener.yaml", text);
    free(text);
}

/* Each change builds one small certificate next to the large listener, in
 * the same data arena; the listener is built again by the next change, so
 * that arena then keeps ~300 KiB alive for a 3 KiB certificate. Without
 * compaction the model's memory grows by that much per change; with it,
 * the unused part stays under RC_COMPACT_MIN_WASTE plus a quarter of the
 * used (reuse.h), and the certificates are the same as built. */
static void sparse_arenas_are_compacted(void **state)
{
    (void)state;
    put_big_listener(0);
    struct tf_result cur = load(NULL);
    size_t compacted = 0, max_fp = 0;
    const int gens = 24;
    for (int g = 1; g <= gens; g++) {
        char name[32], text[256];
        snprintf(name, sizeof(name), "c%d.yaml", g);
        snprintf(text, sizeof(text),
                 "apiVersion: albd/v1\nkind: Certificate\nmetadata: {name: c%d}\n"
                 "spec:\n  source:\n    files: {certificate: site.pem, privateKey: site.key}\n",
                 g);
        put(name, text);
        put_big_listener(g);
        settle();
        struct tf_result next = load(cur.m);
        tf_done(&cur); /* what next copied stays alive through it alone */
        cur = next;
        compacted += cur.st.resources_compacted;
        size_t fp = rc_model_footprint(cur.m);
        max_fp = fp > max_fp ? fp : max_fp;
        assert_int_equal(cur.m->n_certificates, (size_t)g + 1);
    }
    /* 24 changes x ~300 KiB would be ~7 MiB: bounded well below that. */
    assert_true(compacted > 0);
    assert_true(max_fp < 3 * RC_COMPACT_MIN_WASTE);
    const struct rc_certificate *site = rc_model_certificate(cur.m, "site");
    for (int g = 1; g <= gens; g++) {
        char name[32];
        snprintf(name, sizeof(name), "c%d", g);
        const struct rc_certificate *c = rc_model_certificate(cur.m, name);
        assert_non_null(c);
        assert_int_equal(c->cert_pem_len, site->cert_pem_len);
        assert_memory_equal(c->cert_pem, site->cert_pem, site->cert_pem_len);
        assert_string_equal(c->subject, site->subject);
        assert_non_null(strstr(c->meta.loc.file, name));
    }
    assert_wired(cur.m);
    /* Compacted, it is dense: an unchanged reload copies everything. */
    struct tf_result same = load(cur.m);
    assert_int_equal(same.st.resources_compacted, 0);
    assert_int_equal(same.st.resources_copied, (size_t)gens + 4);
    assert_int_equal(same.st.docs_parsed, 0);
    tf_done(&cur);
    tf_done(&same);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(unchanged_documents_are_copied, setup, teardown),
        cmocka_unit_test_setup_teardown(a_changed_document_is_built, setup, teardown),
        cmocka_unit_test_setup_teardown(a_certificate_near_expiry_is_copied_with_its_warning, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(the_ready_call_comes_before_the_bookkeeping, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(the_expiry_warnings_can_wait_for_the_caller, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(a_certificate_file_replaced_by_rename_is_read, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(a_manifest_replaced_by_rename_is_read, setup, teardown),
        cmocka_unit_test_setup_teardown(an_unsettled_manifest_is_read_again, setup, teardown),
        cmocka_unit_test_setup_teardown(only_the_changed_document_is_parsed, setup, teardown),
        cmocka_unit_test_setup_teardown(an_inserted_document_moves_the_others, setup, teardown),
        cmocka_unit_test_setup_teardown(an_anchor_in_a_changed_file_is_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(an_error_in_a_changed_document_is_exact, setup, teardown),
        cmocka_unit_test_setup_teardown(a_model_with_copies_outlives_its_predecessors, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(a_moved_copy_outlives_the_load_that_moved_it, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(a_moved_copy_keeps_its_new_place, setup, teardown),
        cmocka_unit_test_setup_teardown(an_unchanged_certificate_s_records_are_shared, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(a_file_record_away_from_its_bytes_is_not_shared, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(an_unchanged_certificate_is_shared_a_moved_one_copied,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(a_document_moved_to_another_file_is_built, setup, teardown),
        cmocka_unit_test_setup_teardown(a_listener_whose_group_changed_is_built, setup, teardown),
        cmocka_unit_test_setup_teardown(the_change_log_leaves_out_copied_listeners, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(a_listener_is_built_when_the_instances_change, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(a_clash_on_a_copied_listener_is_located, setup, teardown),
        cmocka_unit_test_setup_teardown(sparse_arenas_are_compacted, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
