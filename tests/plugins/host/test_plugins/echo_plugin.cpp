// The good test plugin, "echo". It keeps no real database; it behaves as the ABI says so the host
// can be tested end to end:
//  - apply on route "tell": the piece's bytes are queued and emitted on the next poll as a new
//    capture sequence (emit what it is told). IPCSYNC_EBUSY from emit keeps it queued.
//  - apply on any other route: recorded; duplicates (sequence <= last applied) are refused as
//    IPCSYNC_DUPLICATE; policy PARK reports one conflict per apply.
//  - apply on route "build": builds a one-row insert into items(id = sequence, v = the bytes)
//    with the host's changeset helpers, reads it back with the helpers' reader, and queues it to
//    emit like "tell" does.
//  - setting crash_on_apply=1: apply dereferences a null pointer (a crashing plugin).
//  - setting fail_start=1: start() fails with a message.
//  - snapshot(table): emits one piece per recorded apply (its bytes), then as_of = last emitted.
//  - last_applied("__acknowledged") is the last acknowledged sequence (to observe acknowledge);
//    last_applied("__polls") is how many times poll() was called.
//  - setting wake_fifo=PATH (ABI 1.1): opens the FIFO at PATH and gives it to the host with
//    set_wake_fd, as a database plugin would give an inotify descriptor. poll() reads it empty and
//    emits what it read as one change-set, unless it read only '.' bytes; apply on route "touch"
//    writes one '.' into it (the plugin's own write, which must not make the host spin). With
//    wake_no_drain=1 poll() never reads it (a plugin that breaks the rule).
//  - built with ECHO_ABI_1_0: a plugin of ABI 1.0 (abi_minor 0); it never calls set_wake_fd.
#include <fcntl.h>
#include <ipcsync/plugin.h>
#include <sys/mman.h>
#include <unistd.h>

#include <csignal>
#include <cstddef>
#include <cstdio>
#include <cstdint>
#include <cstring>
#include <cstdlib>
#include <chrono>
#include <thread>
#include <deque>
#include <exception>
#include <fstream>
#include <map>
#include <string>
#include <vector>

namespace {

struct Echo {
  const ipcsync_host_services* host = nullptr;
  bool crashOnApply = false;
  bool failStart = false;
  bool started = false;
  std::uint64_t nextSequence = 1;
  std::uint64_t acknowledged = 0;
  std::deque<std::vector<unsigned char>> toEmit;
  std::map<std::string, std::uint64_t> lastApplied;
  std::vector<std::vector<unsigned char>> applied;
  std::uint64_t polls = 0;
  int wakeFifo = -1;  // wake_fifo, opened read-write so it never reports end of file
  bool wakeNoDrain = false;
};

Echo* self(ipcsync_plugin* p) { return reinterpret_cast<Echo*>(p); }

void message(ipcsync_error* e, const std::string& m) { std::snprintf(e->message, sizeof e->message, "%s", m.c_str()); }

bool on(const ipcsync_host_services* h, const char* key) {
  const char* v = h->setting(h->host, key);
  return v && std::strcmp(v, "1") == 0;
}

int create(const ipcsync_host_services* services, ipcsync_plugin** out, ipcsync_error* error) {
  try {
    auto* e = new Echo;
    e->host = services;
    e->crashOnApply = on(services, "crash_on_apply");
    e->failStart = on(services, "fail_start");
#ifndef ECHO_ABI_1_0
    if (const char* fifo = services->setting(services->host, "wake_fifo")) {
      const bool hasWake = services->struct_size >= offsetof(ipcsync_host_services, set_wake_fd) + sizeof services->set_wake_fd &&
                           services->set_wake_fd;
      e->wakeFifo = ::open(fifo, O_RDWR | O_NONBLOCK | O_CLOEXEC);
      if (e->wakeFifo < 0 || !hasWake) {
        message(error, std::string("echo: cannot open wake_fifo ") + fifo + " or the host has no set_wake_fd");
        if (e->wakeFifo >= 0) ::close(e->wakeFifo);
        delete e;
        return IPCSYNC_EINVAL;
      }
      e->wakeNoDrain = on(services, "wake_no_drain");
      if (const int rc = services->set_wake_fd(services->host, e->wakeFifo, error); rc != IPCSYNC_OK) {
        ::close(e->wakeFifo);
        delete e;
        return rc;
      }
    }
#endif
    // Leave a trace in the data directory, to show the host made it and passes it on.
    std::ofstream(std::string(services->data_dir(services->host)) + "/echo.created") << "created\n";
    services->log(services->host, IPCSYNC_LOG_INFO, "echo plugin created");
    *out = reinterpret_cast<ipcsync_plugin*>(e);
    return IPCSYNC_OK;
  } catch (const std::exception& x) {
    message(error, x.what());
    return IPCSYNC_EINTERNAL;
  }
}

int start(ipcsync_plugin* p, const ipcsync_start_args* args, ipcsync_error* error) {
  Echo* e = self(p);
  if (e->failStart) {
    message(error, "echo: start refused because setting fail_start=1");
    return IPCSYNC_EINVAL;
  }
  e->nextSequence = args->journaled_through + 1;
  e->started = true;
  return IPCSYNC_OK;
}

int poll(ipcsync_plugin* p, ipcsync_error* error) {
  Echo* e = self(p);
  ++e->polls;
  if (e->wakeFifo >= 0 && !e->wakeNoDrain) {
    std::vector<unsigned char> read;
    unsigned char buffer[256];
    for (ssize_t n; (n = ::read(e->wakeFifo, buffer, sizeof buffer)) > 0;) read.insert(read.end(), buffer, buffer + n);
    bool own = true;
    for (unsigned char c : read) own = own && c == '.';
    if (!own) e->toEmit.push_back(std::move(read));
  }
  while (!e->toEmit.empty()) {
    const auto& bytes = e->toEmit.front();
    ipcsync_envelope env{};
    env.struct_size = sizeof env;
    env.origin = nullptr;  // the host fills in the instance
    env.sequence = e->nextSequence;
    env.commit_time_us = 1700000000000000 + static_cast<std::int64_t>(e->nextSequence);
    env.piece_index = 0;
    env.piece_count = 1;
    env.data = bytes.data();
    env.size = bytes.size();
    const int rc = e->host->emit(e->host->host, &env, error);
    if (rc == IPCSYNC_EBUSY) return IPCSYNC_OK;  // back-pressure: again on the next poll
    if (rc != IPCSYNC_OK) return rc;
    ++e->nextSequence;
    e->toEmit.pop_front();
  }
  return IPCSYNC_OK;
}

int apply(ipcsync_plugin* p, const ipcsync_envelope* c, ipcsync_apply_result* result, ipcsync_error* error) {
  Echo* e = self(p);
  if (e->crashOnApply) {
    // The crash the test wants: a write to a page the process may not touch, with the default
    // action, so that a sanitizer's handler does not turn the signal into an ordinary exit (and no
    // undefined behaviour a sanitizer would report first).
    std::signal(SIGSEGV, SIG_DFL);
    void* page = ::mmap(nullptr, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    *static_cast<volatile int*>(page) = 1;
    std::raise(SIGSEGV);
  }
  const std::string route = c->route ? c->route : "";
  const auto* bytes = static_cast<const unsigned char*>(c->data);
  std::vector<unsigned char> data(bytes, bytes + c->size);
  result->changes_applied = 0;
  result->conflicts = 0;
  if (route == "touch") {
    if (e->wakeFifo < 0 || ::write(e->wakeFifo, ".", 1) != 1) {
      message(error, "echo: touch without a wake_fifo, or the FIFO is full");
      return IPCSYNC_EIO;
    }
    result->status = IPCSYNC_APPLIED;
    return IPCSYNC_OK;
  }
  if (route == "tell") {
    e->toEmit.push_back(std::move(data));
    result->status = IPCSYNC_APPLIED;
    return IPCSYNC_OK;
  }
  if (route == "build") {
    const ipcsync_host_services* h = e->host;
    if (!h->changeset_builder_new || !h->changeset_reader_open) {
      message(error, "echo: the host offers no changeset helpers");
      return IPCSYNC_EUNSUPPORTED;
    }
    ipcsync_changeset_builder* builder = nullptr;
    if (const int rc = h->changeset_builder_new(h->host, &builder, error); rc != IPCSYNC_OK) return rc;
    const unsigned char pk[2] = {1, 0};
    ipcsync_value values[2]{};
    values[0].type = IPCSYNC_VALUE_INTEGER;
    values[0].integer = static_cast<std::int64_t>(c->sequence);
    values[1].type = IPCSYNC_VALUE_TEXT;
    values[1].bytes = data.data();
    values[1].size = data.size();
    const void* out = nullptr;
    std::size_t size = 0;
    int rc = h->changeset_builder_add(builder, "items", 2, pk, IPCSYNC_OP_INSERT, nullptr, values, error);
    if (rc == IPCSYNC_OK) rc = h->changeset_builder_finish(builder, &out, &size, error);
    std::vector<unsigned char> built;
    if (rc == IPCSYNC_OK) built.assign(static_cast<const unsigned char*>(out), static_cast<const unsigned char*>(out) + size);
    h->changeset_builder_free(builder);
    if (rc != IPCSYNC_OK) return rc;
    ipcsync_changeset_reader* reader = nullptr;
    if (rc = h->changeset_reader_open(h->host, built.data(), built.size(), &reader, error); rc != IPCSYNC_OK) return rc;
    ipcsync_change change{};
    change.struct_size = sizeof change;
    const int first = h->changeset_reader_next(reader, &change, error);
    const bool ok = first == 1 && change.op == IPCSYNC_OP_INSERT && std::strcmp(change.table, "items") == 0;
    const int end = h->changeset_reader_next(reader, &change, error);
    h->changeset_reader_free(reader);
    if (!ok || end != 0) {
      message(error, "echo: the changeset read back differs from the one built");
      return IPCSYNC_EINTERNAL;
    }
    e->toEmit.push_back(std::move(built));
    result->status = IPCSYNC_APPLIED;
    return IPCSYNC_OK;
  }
  if (route.empty()) {
    message(error, "echo: apply without a route");
    return IPCSYNC_EINVAL;
  }
  auto& last = e->lastApplied[route];
  if (c->sequence <= last) {
    result->status = IPCSYNC_DUPLICATE;
    return IPCSYNC_OK;
  }
  if (c->conflict_policy == static_cast<uint32_t>(IPCSYNC_CONFLICT_PARK)) {
    const std::string key = "{\"seq\":" + std::to_string(c->sequence) + "}";
    ipcsync_conflict conflict{};
    conflict.struct_size = sizeof conflict;
    conflict.route = route.c_str();
    conflict.origin = c->origin;
    conflict.sequence = c->sequence;
    conflict.table = "items";
    conflict.kind = "data";
    conflict.key_json = key.c_str();
    conflict.source_json = "{\"v\":\"new\"}";
    conflict.target_json = nullptr;
    conflict.change = data.data();
    conflict.change_size = data.size();
    if (const int rc = e->host->report_conflict(e->host->host, &conflict, error); rc != IPCSYNC_OK) return rc;
    result->conflicts = 1;
    result->status = IPCSYNC_CONFLICTS;
  } else {
    result->changes_applied = 1;
    result->status = IPCSYNC_APPLIED;
  }
  if (c->piece_index + 1 == c->piece_count) last = c->sequence;
  e->applied.push_back(std::move(data));
  return IPCSYNC_OK;
}

int snapshot(ipcsync_plugin* p, const ipcsync_snapshot_request* r, std::uint64_t* asOf, ipcsync_error* error) {
  Echo* e = self(p);
  if (std::strcmp(r->table, "items") != 0) {
    message(error, std::string("echo: no table '") + r->table + "'; it has 'items'");
    return IPCSYNC_EUNSUPPORTED;
  }
  const auto count = static_cast<std::uint32_t>(e->applied.size());
  for (std::uint32_t i = 0; i < count; ++i) {
    ipcsync_envelope env{};
    env.struct_size = sizeof env;
    env.origin = nullptr;
    env.sequence = e->nextSequence - 1;
    env.route = r->route;
    env.piece_index = i;
    env.piece_count = count;
    env.data = e->applied[i].data();
    env.size = e->applied[i].size();
    if (const int rc = e->host->emit_snapshot(e->host->host, &env, error); rc != IPCSYNC_OK) return rc;
  }
  *asOf = e->nextSequence - 1;
  return IPCSYNC_OK;
}

int lastApplied(ipcsync_plugin* p, const char* route, std::uint64_t* sequence, ipcsync_error*) {
  Echo* e = self(p);
  if (std::strcmp(route, "__acknowledged") == 0) *sequence = e->acknowledged;
  else if (std::strcmp(route, "__polls") == 0) *sequence = e->polls;
  else if (auto it = e->lastApplied.find(route); it != e->lastApplied.end()) *sequence = it->second;
  else *sequence = 0;
  return IPCSYNC_OK;
}

int acknowledge(ipcsync_plugin* p, std::uint64_t sequence, ipcsync_error* error) {
  Echo* e = self(p);
  if (sequence >= e->nextSequence) {
    message(error, "echo: acknowledge(" + std::to_string(sequence) + ") beyond the last emitted sequence " +
                       std::to_string(e->nextSequence - 1));
    return IPCSYNC_EINVAL;
  }
  e->acknowledged = sequence;
  return IPCSYNC_OK;
}

int stop(ipcsync_plugin* p, ipcsync_error*) {
  self(p)->started = false;
  return IPCSYNC_OK;
}

void destroy(ipcsync_plugin* p) {
  if (self(p)->wakeFifo >= 0) ::close(self(p)->wakeFifo);
  delete self(p);
}

const ipcsync_table_desc kTables[] = {
    {sizeof(ipcsync_table_desc), "items", "CREATE TABLE items(id INTEGER PRIMARY KEY, v TEXT)",
     IPCSYNC_TABLE_PRODUCES | IPCSYNC_TABLE_ACCEPTS},
    {sizeof(ipcsync_table_desc), "audit", "CREATE TABLE audit(at INTEGER, who TEXT, PRIMARY KEY(at, who))",
     IPCSYNC_TABLE_PRODUCES}};

#ifdef ECHO_ABI_1_0
constexpr std::uint16_t kAbiMinor = 0;
#else
constexpr std::uint16_t kAbiMinor = IPCSYNC_PLUGIN_ABI_MINOR;
#endif

const ipcsync_plugin_descriptor kDescriptor = {
    sizeof(ipcsync_plugin_descriptor), IPCSYNC_PLUGIN_ABI_MAJOR, kAbiMinor, "echo", "1.2.3",
    "test plugin: emits what it is told, records what it applies", kTables, 2, create, start, poll, apply, snapshot,
    lastApplied, acknowledge, stop, destroy};

}  // namespace

extern "C" IPCSYNC_PLUGIN_EXPORT const ipcsync_plugin_descriptor* ipcsync_plugin_entry(void) { return &kDescriptor; }
