/*
 * ipcsync plugin ABI, version 1.1: the whole contract between a plugin (a shared library dropped
 * into the plugins directory) and the ipcsync plugin host that loads it.
 *
 * Plain C11. No C++ type, exception or allocator crosses this boundary.
 *
 * Rules that hold for every call:
 *  - Structs that cross the boundary start with `struct_size`, set by whoever fills the struct to
 *    sizeof() as that side compiled it. Structs only grow at the end; a reader looks at a field
 *    only when `struct_size` covers it.
 *  - Fallible calls return an `int` status (IPCSYNC_OK or an IPCSYNC_E* code); outputs come last.
 *    On failure they write a NUL-terminated, human-readable message into the `ipcsync_error`
 *    passed last: what was wrong, where, and what to do.
 *  - Strings and buffers handed to the plugin are owned by the host and valid only during the call
 *    unless said otherwise. Strings and buffers the plugin hands out are owned by the plugin and
 *    must stay valid as said below.
 *  - The host calls the plugin from one thread at a time (its own event loop thread), so a plugin
 *    needs no locking of its own unless it starts threads. Host services may be called from that
 *    thread only, unless a service says otherwise.
 *
 * Lifecycle, as the host drives it:
 *   ipcsync_plugin_entry() -> descriptor (checked: abi_major equal, abi_minor <= host's)
 *   create(host services, settings)  -> plugin instance
 *   start(resume point)               -> the plugin may now emit captured change-sets
 *   poll / apply / snapshot / last_applied / acknowledge, any number of times, in any order
 *     (poll every few milliseconds, and, since ABI 1.1, as soon as the plugin's wake descriptor
 *     becomes readable: see set_wake_fd)
 *   stop()                            -> no emit after it returns
 *   destroy()                         -> everything the plugin allocated is released
 *
 * Change-sets are in the SQLite session extension's changeset format. A large change-set travels
 * in pieces; each piece is itself a valid changeset (split at change boundaries), and the pieces of
 * one transaction share its sequence number.
 */
#ifndef IPCSYNC_PLUGIN_H
#define IPCSYNC_PLUGIN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- versions -------------------------------------------------------------------------------- */

/* A host loads a plugin only if the plugin's abi_major equals the host's and its abi_minor is not
 * newer than the host's. Minor versions only add fields at the end of structs and calls at the end
 * of the host-services table.
 *   1.0  the first version.
 *   1.1  host service set_wake_fd: the host polls the plugin as soon as a descriptor the plugin
 *        gives it is readable, not only every few milliseconds. */
#define IPCSYNC_PLUGIN_ABI_MAJOR 1
#define IPCSYNC_PLUGIN_ABI_MINOR 1

/* The one symbol every plugin exports (with default visibility; everything else hidden). */
#define IPCSYNC_PLUGIN_ENTRY_SYMBOL "ipcsync_plugin_entry"

/* ---- status codes ---------------------------------------------------------------------------- */

#define IPCSYNC_OK 0
#define IPCSYNC_EINVAL 1      /* a bad argument or setting; the message names it */
#define IPCSYNC_EIO 2         /* the plugin's storage failed (disk full, corrupt file, locked) */
#define IPCSYNC_EBUSY 3       /* not now: try again later (e.g. back-pressure on emit) */
#define IPCSYNC_ESCHEMA 4     /* a change-set does not match the target table's schema */
#define IPCSYNC_EUNSUPPORTED 5 /* the plugin does not accept this table or operation */
#define IPCSYNC_EINTERNAL 6   /* anything else; the message says what */

/* Room for an error message; the callee writes a NUL-terminated string (truncated if needed). */
typedef struct ipcsync_error {
  char message[512];
} ipcsync_error;

/* ---- opaque handles -------------------------------------------------------------------------- */

typedef struct ipcsync_plugin ipcsync_plugin;                   /* one plugin instance */
typedef struct ipcsync_host ipcsync_host;                       /* the host's context */
typedef struct ipcsync_changeset_builder ipcsync_changeset_builder; /* see host services */
typedef struct ipcsync_changeset_reader ipcsync_changeset_reader;   /* see host services */

/* ---- self-description ------------------------------------------------------------------------ */

#define IPCSYNC_TABLE_PRODUCES 1u /* the plugin captures changes to this table and emits them */
#define IPCSYNC_TABLE_ACCEPTS 2u  /* the plugin applies incoming change-sets to this table */

typedef struct ipcsync_table_desc {
  uint32_t struct_size;
  const char* name;       /* table name as it appears in change-sets */
  const char* schema_sql; /* the CREATE TABLE statement; it must declare a PRIMARY KEY */
  uint32_t flags;         /* IPCSYNC_TABLE_PRODUCES | IPCSYNC_TABLE_ACCEPTS */
} ipcsync_table_desc;

/* ---- data ------------------------------------------------------------------------------------ */

/* What to do when an incoming change meets a row that differs from what the change expected. */
typedef enum ipcsync_conflict_policy {
  IPCSYNC_CONFLICT_SOURCE_WINS = 0,      /* the incoming change overwrites the target row */
  IPCSYNC_CONFLICT_TARGET_WINS = 1,      /* the target row stays; the change is skipped */
  IPCSYNC_CONFLICT_LAST_WRITER_WINS = 2, /* the larger value of timestamp_column wins; ties: source */
  IPCSYNC_CONFLICT_PARK = 3              /* the change is skipped and reported via report_conflict */
} ipcsync_conflict_policy;

/* One change-set (or one piece of one) with where it comes from and where it goes. */
typedef struct ipcsync_envelope {
  uint32_t struct_size;
  const char* origin;         /* plugin instance that captured the change */
  uint64_t sequence;          /* on emit: the origin's capture sequence, increasing, no gaps;
                                 on apply: the route's delivery sequence, increasing per route
                                 (not contiguous: compare, never count) */
  const char* route;          /* route name from the topology (NULL on emit: the engine routes) */
  int64_t commit_time_us;     /* when the source committed it, microseconds since the epoch */
  const char* const* provenance; /* instances it has passed through, origin first (loop guard) */
  size_t provenance_count;
  uint32_t piece_index;       /* 0-based piece of this transaction */
  uint32_t piece_count;       /* total pieces of this transaction (>= 1) */
  const void* data;           /* SQLite changeset bytes of this piece */
  size_t size;
  /* Applying only (ignored on emit): */
  uint32_t conflict_policy;     /* an ipcsync_conflict_policy value (an integer field: a C++ plugin may
                                  then check a value it does not know without undefined behaviour) */
  const char* timestamp_column; /* for LAST_WRITER_WINS; NULL otherwise */
} ipcsync_envelope;

typedef enum ipcsync_apply_status {
  IPCSYNC_APPLIED = 0,   /* every change took effect (or the piece was accepted, see apply) */
  IPCSYNC_CONFLICTS = 1, /* committed; some changes were resolved by the policy or parked */
  IPCSYNC_DUPLICATE = 2  /* sequence <= last applied on this route: nothing done (idempotence) */
} ipcsync_apply_status;

typedef struct ipcsync_apply_result {
  uint32_t struct_size;
  ipcsync_apply_status status;
  uint64_t changes_applied;   /* rows changed by this call */
  uint64_t conflicts;         /* conflicts met (resolved or parked) by this call */
} ipcsync_apply_result;

/* A conflict under IPCSYNC_CONFLICT_PARK, reported for the operator to resolve. */
typedef struct ipcsync_conflict {
  uint32_t struct_size;
  const char* route;
  const char* origin;
  uint64_t sequence;
  const char* table;
  const char* kind;        /* "data", "notfound", "constraint" or "conflict" (SQLite's names) */
  const char* key_json;    /* primary key, e.g. {"id":42} */
  const char* source_json; /* the incoming row (new values), or null for a delete */
  const char* target_json; /* the target's current row, or null if it has none */
  const void* change;      /* this one change as a changeset, to replay on "take source" */
  size_t change_size;
} ipcsync_conflict;

typedef struct ipcsync_start_args {
  uint32_t struct_size;
  /* Every captured change-set with sequence <= this is already in the journal: emit from the next
   * one. 0 = nothing has been journaled yet. */
  uint64_t journaled_through;
} ipcsync_start_args;

typedef struct ipcsync_snapshot_request {
  uint32_t struct_size;
  const char* table;
  const char* route;
  size_t max_piece_bytes; /* emit pieces no larger than this (one row may exceed it) */
} ipcsync_snapshot_request;

/* ---- host services --------------------------------------------------------------------------- */

#define IPCSYNC_LOG_DEBUG 0
#define IPCSYNC_LOG_INFO 1
#define IPCSYNC_LOG_WARN 2
#define IPCSYNC_LOG_ERROR 3

/* A column value for the changeset helpers. */
typedef enum ipcsync_value_type {
  IPCSYNC_VALUE_UNDEFINED = 0, /* "not part of this change" (unchanged column of an update) */
  IPCSYNC_VALUE_INTEGER = 1,
  IPCSYNC_VALUE_FLOAT = 2,
  IPCSYNC_VALUE_TEXT = 3,
  IPCSYNC_VALUE_BLOB = 4,
  IPCSYNC_VALUE_NULL = 5
} ipcsync_value_type;

typedef struct ipcsync_value {
  ipcsync_value_type type;
  int64_t integer;
  double real;
  const void* bytes; /* TEXT (UTF-8, not NUL-terminated) or BLOB */
  size_t size;
} ipcsync_value;

#define IPCSYNC_OP_INSERT 18 /* SQLITE_INSERT */
#define IPCSYNC_OP_DELETE 9  /* SQLITE_DELETE */
#define IPCSYNC_OP_UPDATE 23 /* SQLITE_UPDATE */

/* One change read back from a changeset; valid until the next call on its reader. */
typedef struct ipcsync_change {
  uint32_t struct_size;
  const char* table;
  int op;                           /* IPCSYNC_OP_* */
  int column_count;
  const unsigned char* primary_key; /* column_count flags: non-zero = part of the primary key */
  const ipcsync_value* old_values;  /* column_count values; NULL for an insert */
  const ipcsync_value* new_values;  /* column_count values; NULL for a delete */
} ipcsync_change;

/* What the host offers a plugin. The table is valid from create() until destroy() returns. */
typedef struct ipcsync_host_services {
  uint32_t struct_size;
  uint16_t abi_major, abi_minor; /* the host's ABI version */
  ipcsync_host* host;            /* pass to every service */

  /* Logs one line through the host's log, tagged with the plugin instance's name. */
  void (*log)(ipcsync_host* host, int level, const char* message);

  /* The instance's settings from the YAML file, flattened with dots ("database.path"). Returns
   * NULL if the key is absent. The string stays valid until destroy(). */
  const char* (*setting)(ipcsync_host* host, const char* key);

  /* A directory for the instance's own files (created by the host, kept across restarts). */
  const char* (*data_dir)(ipcsync_host* host);

  /* Emits one captured change-set (or piece). Sequences must increase by one per transaction,
   * starting after start()'s journaled_through. IPCSYNC_EBUSY: back-pressure, emit it again on a
   * later poll. An UPDATE should carry the whole old row (every old value, as crm's do): a route's
   * row filter then sees a row move into or out of it (an INSERT or a DELETE at the target). With
   * only the key and the changed columns (what sqlite3session writes) an update is judged on its
   * new values laid over what it carries, and a row moving across a filter is not followed. Allowed from start() to stop(). */
  int (*emit)(ipcsync_host* host, const ipcsync_envelope* change_set, ipcsync_error* error);

  /* Emits one piece of a snapshot requested by snapshot(); same rules as emit. */
  int (*emit_snapshot)(ipcsync_host* host, const ipcsync_envelope* piece, ipcsync_error* error);

  /* Reports a parked conflict (IPCSYNC_CONFLICT_PARK) during apply(). */
  int (*report_conflict)(ipcsync_host* host, const ipcsync_conflict* conflict, ipcsync_error* error);

  /* Changeset helpers, for plugins that do not keep their data in SQLite. These seven may be NULL
   * in a host built without them: check before calling. A builder collects
   * changes table by table; finish() returns the changeset, owned by the builder until the next
   * call on it or its free(). */
  int (*changeset_builder_new)(ipcsync_host* host, ipcsync_changeset_builder** out, ipcsync_error* error);
  int (*changeset_builder_add)(ipcsync_changeset_builder* builder, const char* table, int column_count,
                               const unsigned char* primary_key, int op, const ipcsync_value* old_values,
                               const ipcsync_value* new_values, ipcsync_error* error);
  int (*changeset_builder_finish)(ipcsync_changeset_builder* builder, const void** data, size_t* size,
                                  ipcsync_error* error);
  void (*changeset_builder_free)(ipcsync_changeset_builder* builder);

  /* A reader walks a changeset: next() returns 1 and fills *change, 0 at the end, or -1 on a
   * malformed changeset (message in error). The bytes must outlive the reader. */
  int (*changeset_reader_open)(ipcsync_host* host, const void* data, size_t size,
                               ipcsync_changeset_reader** out, ipcsync_error* error);
  int (*changeset_reader_next)(ipcsync_changeset_reader* reader, ipcsync_change* change, ipcsync_error* error);
  void (*changeset_reader_free)(ipcsync_changeset_reader* reader);

  /* ---- ABI 1.1 ----
   * A host of ABI 1.0 has none of what follows: call a service below only if struct_size covers
   * it and it is not NULL, e.g.
   *   if (s->struct_size >= offsetof(ipcsync_host_services, set_wake_fd) + sizeof s->set_wake_fd
   *       && s->set_wake_fd) ...
   * and otherwise rely on the periodic poll alone. */

  /* Wakes the host on the plugin's own data: from now on, whenever `fd` is readable (POLLIN, or an
   * error or hang-up) while the instance is started, the host calls poll() at once instead of at
   * the next periodic poll. Meant for changes the plugin learns of through a descriptor: an
   * inotify descriptor watching its database file (a commit by another process), an eventfd a
   * thread of its own writes to, a socket. Several sources: hand over an epoll descriptor (it is
   * readable when any of its set is). `fd` = -1 stops the wake-up. At most one descriptor per
   * instance: a second call replaces the first.
   *
   * Rules:
   *  - The plugin owns `fd`: it keeps it open until it calls set_wake_fd(-1) or destroy() returns,
   *    and closes it itself. Make it non-blocking.
   *  - poll() must read `fd` empty (until EAGAIN). Read it after the plugin's own writes in that
   *    poll() (so they do not wake the host again), then look for new data once more: an event
   *    read there may be a change made meanwhile. The host defends itself against a descriptor
   *    that stays readable (it then waits for the periodic poll and logs a warning), but that
   *    costs the latency the wake-up is for.
   *  - The periodic poll goes on: a wake-up only makes a poll earlier. A plugin must still find
   *    every change by looking at its data in poll(), never trust the events alone (events may
   *    be coalesced, and some writes produce none).
   *  - Readiness is checked between calls, so a wake-up never interrupts apply() or snapshot().
   * May be called from create() until destroy(). Returns IPCSYNC_EINVAL (with a message) if `fd`
   * is neither -1 nor an open descriptor. */
  int (*set_wake_fd)(ipcsync_host* host, int fd, ipcsync_error* error);
} ipcsync_host_services;

/* ---- the plugin's descriptor ----------------------------------------------------------------- */

typedef struct ipcsync_plugin_descriptor {
  uint32_t struct_size;
  uint16_t abi_major, abi_minor; /* IPCSYNC_PLUGIN_ABI_MAJOR / _MINOR the plugin was built with */
  const char* name;              /* e.g. "crm": [a-z0-9_-], 1-32 characters */
  const char* version;           /* the plugin's own version, e.g. "1.2.0" */
  const char* description;       /* one line */
  const ipcsync_table_desc* tables;
  size_t table_count;

  /* Creates an instance. `services` stays valid until destroy(). Reads its settings, opens or
   * creates its storage. Must not emit yet. */
  int (*create)(const ipcsync_host_services* services, ipcsync_plugin** out, ipcsync_error* error);

  /* From now on the plugin may emit, starting after args->journaled_through. */
  int (*start)(ipcsync_plugin* plugin, const ipcsync_start_args* args, ipcsync_error* error);

  /* Called by the host's loop every few milliseconds (--poll-ms, default 1), and at once when the
   * descriptor given to set_wake_fd (ABI 1.1) is readable: capture what is new and emit it. */
  int (*poll)(ipcsync_plugin* plugin, ipcsync_error* error);

  /* Applies one incoming change-set piece. Pieces 0..n-2 are accepted into an open transaction
   * (result IPCSYNC_APPLIED, nothing visible yet); the last piece commits the transaction together
   * with (route, sequence) as the route's last applied sequence. A sequence at or below the route's
   * last applied one returns IPCSYNC_DUPLICATE without changing anything. On failure nothing of the
   * transaction stays applied. Changes applied here must not be emitted again (no echo).
   * The host delivers the pieces of one change-set back to back; a plugin may answer IPCSYNC_EBUSY
   * to a piece of another change-set while one is half applied. */
  int (*apply)(ipcsync_plugin* plugin, const ipcsync_envelope* change_set, ipcsync_apply_result* result,
               ipcsync_error* error);

  /* Emits the whole table through emit_snapshot() as inserts, then returns in *as_of the capture
   * sequence the snapshot is consistent with: it contains every change up to *as_of and none
   * after, so the stream continues from *as_of + 1 with no gap and no duplicate. */
  int (*snapshot)(ipcsync_plugin* plugin, const ipcsync_snapshot_request* request, uint64_t* as_of,
                  ipcsync_error* error);

  /* The last sequence committed by apply() on `route`, 0 if none. */
  int (*last_applied)(ipcsync_plugin* plugin, const char* route, uint64_t* sequence, ipcsync_error* error);

  /* Every emitted change-set up to `sequence` is in the journal: the plugin may forget them. */
  int (*acknowledge)(ipcsync_plugin* plugin, uint64_t sequence, ipcsync_error* error);

  /* Stops emitting; returns when no emit will follow. */
  int (*stop)(ipcsync_plugin* plugin, ipcsync_error* error);

  /* Releases the instance. Called once, after stop() (or after a failed start()). */
  void (*destroy)(ipcsync_plugin* plugin);
} ipcsync_plugin_descriptor;

/* Marks the entry symbol for export from a library built with hidden visibility:
 *   IPCSYNC_PLUGIN_EXPORT const ipcsync_plugin_descriptor* ipcsync_plugin_entry(void) { ... } */
#define IPCSYNC_PLUGIN_EXPORT __attribute__((visibility("default")))

/* The entry symbol: returns the plugin's descriptor, which must stay valid while the library is
 * loaded. Called once per load; must not fail. */
typedef const ipcsync_plugin_descriptor* (*ipcsync_plugin_entry_fn)(void);

#ifdef __cplusplus
}
#endif

#endif /* IPCSYNC_PLUGIN_H */
