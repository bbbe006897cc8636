/* A minimal plugin for the supervisor's end-to-end test: it behaves (accepts everything, emits
 * nothing) unless its setting "crash" is "create", in which case create() dies by SIGSEGV. */
#include <ipcsync/plugin.h>

#include <signal.h>
#include <string.h>

static int instance_storage;

static int do_create(const ipcsync_host_services* services, ipcsync_plugin** out, ipcsync_error* error) {
  (void)error;
  const char* crash = services->setting(services->host, "crash");
  if (crash && strcmp(crash, "create") == 0) {
    signal(SIGSEGV, SIG_DFL); /* a sanitizer's handler would turn the signal into exit 1 */
    raise(SIGSEGV);
  }
  *out = (ipcsync_plugin*)&instance_storage;
  return IPCSYNC_OK;
}
static int do_start(ipcsync_plugin* p, const ipcsync_start_args* a, ipcsync_error* e) { (void)p; (void)a; (void)e; return IPCSYNC_OK; }
static int do_poll(ipcsync_plugin* p, ipcsync_error* e) { (void)p; (void)e; return IPCSYNC_OK; }
static int do_apply(ipcsync_plugin* p, const ipcsync_envelope* c, ipcsync_apply_result* r, ipcsync_error* e) {
  (void)p; (void)c; (void)e;
  r->status = IPCSYNC_APPLIED;
  return IPCSYNC_OK;
}
static int do_snapshot(ipcsync_plugin* p, const ipcsync_snapshot_request* r, uint64_t* as_of, ipcsync_error* e) {
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

static const ipcsync_table_desc tables[] = {
    {sizeof(ipcsync_table_desc), "notes", "CREATE TABLE notes(id INTEGER PRIMARY KEY, body TEXT)",
     IPCSYNC_TABLE_PRODUCES | IPCSYNC_TABLE_ACCEPTS}};

static const ipcsync_plugin_descriptor descriptor = {
    sizeof(ipcsync_plugin_descriptor), IPCSYNC_PLUGIN_ABI_MAJOR, IPCSYNC_PLUGIN_ABI_MINOR, "crashy", "1.0.0",
    "crashes in create() when its setting crash is 'create'", tables, 1, do_create, do_start, do_poll, do_apply,
    do_snapshot, do_last_applied, do_acknowledge, do_stop, do_destroy};

IPCSYNC_PLUGIN_EXPORT const ipcsync_plugin_descriptor* ipcsync_plugin_entry(void) { return &descriptor; }
