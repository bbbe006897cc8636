/* One source, many broken plugins: each MODULE target defines one BAD_* macro and gets the one
 * defect the loader must refuse (or, for BAD_CRASH_ON_LOAD, a crash while loading). */
#include <ipcsync/plugin.h>

#include <signal.h>
#include <stdio.h>
#include <string.h>

static int do_create(const ipcsync_host_services* services, ipcsync_plugin** out, ipcsync_error* error) {
  (void)services;
#if defined(BAD_CREATE_FAILS)
  (void)out;
  snprintf(error->message, sizeof error->message,
           "cannot open database /nonexistent/bad.sqlite: no such directory; set database.path");
  return IPCSYNC_EIO;
#elif defined(BAD_CREATE_BUSY)
  (void)out;
  snprintf(error->message, sizeof error->message, "database /x/bad.sqlite is locked by another process; try again");
  return IPCSYNC_EBUSY;
#else
  (void)error;
  static int instance;
  *out = (ipcsync_plugin*)&instance;
  return IPCSYNC_OK;
#endif
}
static int do_start(ipcsync_plugin* p, const ipcsync_start_args* a, ipcsync_error* e) { (void)p; (void)a; (void)e; return IPCSYNC_OK; }
static int do_poll(ipcsync_plugin* p, ipcsync_error* e) { (void)p; (void)e; return IPCSYNC_OK; }
__attribute__((unused)) static int do_apply(ipcsync_plugin* p, const ipcsync_envelope* c, ipcsync_apply_result* r, ipcsync_error* e) {
  (void)p; (void)c; (void)e;
  r->status = IPCSYNC_APPLIED;
  return IPCSYNC_OK;
}
__attribute__((unused)) static int do_snapshot(ipcsync_plugin* p, const ipcsync_snapshot_request* r, uint64_t* as_of, ipcsync_error* e) {
  (void)p; (void)r; (void)e;
  *as_of = 0;
  return IPCSYNC_OK;
}
static int do_last_applied(ipcsync_plugin* p, const char* route, uint64_t* s, ipcsync_error* e) {
  (void)p; (void)route; (void)e;
  *s = 0;
  return IPCSYNC_OK;
}
static int do_acknowledge(ipcsync_plugin* p, uint64_t s, ipcsync_error* e) { (void)p; (void)s; (void)e; return IPCSYNC_OK; }
static int do_stop(ipcsync_plugin* p, ipcsync_error* e) { (void)p; (void)e; return IPCSYNC_OK; }
static void do_destroy(ipcsync_plugin* p) { (void)p; }

#ifdef BAD_NO_PRIMARY_KEY
#define SCHEMA "CREATE TABLE notes(title TEXT, body TEXT)"
#elif defined(BAD_NO_SCHEMA)
#define SCHEMA NULL
#else
#define SCHEMA "CREATE TABLE notes(id INTEGER PRIMARY KEY, body TEXT)"
#endif

static const ipcsync_table_desc tables[] = {
    {sizeof(ipcsync_table_desc), "notes", SCHEMA, IPCSYNC_TABLE_PRODUCES | IPCSYNC_TABLE_ACCEPTS}};

static const ipcsync_plugin_descriptor descriptor = {
#ifdef BAD_TINY_STRUCT
    8,
#else
    sizeof(ipcsync_plugin_descriptor),
#endif
#ifdef BAD_MAJOR
    IPCSYNC_PLUGIN_ABI_MAJOR + 1,
#else
    IPCSYNC_PLUGIN_ABI_MAJOR,
#endif
#ifdef BAD_MINOR
    IPCSYNC_PLUGIN_ABI_MINOR + 1,
#else
    IPCSYNC_PLUGIN_ABI_MINOR,
#endif
#ifdef BAD_NAME
    "Bad Name!",
#else
    "broken",
#endif
    "0.0.1",
    "a plugin with one defect",
    tables,
    1,
    do_create,
    do_start,
    do_poll,
#ifdef BAD_MISSING_FUNCTIONS
    NULL,
    NULL,
#else
    do_apply,
    do_snapshot,
#endif
    do_last_applied,
    do_acknowledge,
    do_stop,
    do_destroy};

#ifdef BAD_UNRESOLVED
/* Defined nowhere: dlopen with RTLD_NOW must fail on it. */
extern int ipcsync_test_symbol_that_does_not_exist(void);
IPCSYNC_PLUGIN_EXPORT int ipcsync_test_force_reference(void) { return ipcsync_test_symbol_that_does_not_exist(); }
#endif

#ifdef BAD_NO_ENTRY
/* Exports something, but not the entry symbol. */
IPCSYNC_PLUGIN_EXPORT const ipcsync_plugin_descriptor* ipcsync_plugin_entry_misspelled(void) { return &descriptor; }
#else
IPCSYNC_PLUGIN_EXPORT const ipcsync_plugin_descriptor* ipcsync_plugin_entry(void) {
#if defined(BAD_NULL_DESCRIPTOR)
  (void)descriptor;
  return NULL;
#elif defined(BAD_CRASH_ON_LOAD)
  signal(SIGSEGV, SIG_DFL); /* a real crash even under a sanitizer's handler */
  raise(SIGSEGV);
  return &descriptor;
#else
  return &descriptor;
#endif
}
#endif
