// The C boundary of the mining plugin: the descriptor and one function per ABI call, each of
// which checks its pointers, calls into MiningPlugin and turns an Error (or any exception) into a
// status code and a message. Nothing C++ crosses this file's exported surface.
#include <ipcsync/plugin.h>

#include <cstdio>
#include <exception>
#include <new>

#include "crm_tables.h"
#include "mining_plugin.h"

struct ipcsync_plugin {
  std::unique_ptr<ipcsync::mining::MiningPlugin> impl;
};

namespace ipcsync::mining {
namespace {

int report(ipcsync_error* error, int status, const std::string& message) {
  if (error) std::snprintf(error->message, sizeof error->message, "mining: %s", message.c_str());
  return status;
}

int report(ipcsync_error* error, const Error& e) { return report(error, statusOf(e.kind), e.message); }

// Runs `body` (returning Expected<>), converting errors and exceptions into a status.
template <typename Body>
int guarded(ipcsync_error* error, const char* call, Body&& body) noexcept {
  try {
    auto result = body();
    if (!result) return report(error, result.error());
    return IPCSYNC_OK;
  } catch (const std::bad_alloc&) {
    return report(error, IPCSYNC_EINTERNAL, std::string(call) + ": out of memory");
  } catch (const std::exception& e) {
    return report(error, IPCSYNC_EINTERNAL, std::string(call) + ": unexpected exception: " + e.what());
  } catch (...) {
    return report(error, IPCSYNC_EINTERNAL, std::string(call) + ": unexpected exception");
  }
}

Expected<MiningPlugin*> instance(ipcsync_plugin* plugin, const char* call) {
  if (!plugin || !plugin->impl) return fail(ErrorKind::InvalidArgument, std::string(call) + ": plugin is NULL");
  return plugin->impl.get();
}

int create(const ipcsync_host_services* services, ipcsync_plugin** out, ipcsync_error* error) {
  return guarded(error, "create", [&]() -> Expected<> {
    if (!services || !out) return fail(ErrorKind::InvalidArgument, "create: services and out must not be NULL");
    *out = nullptr;
    if (services->struct_size < offsetof(ipcsync_host_services, emit))
      return fail(ErrorKind::InvalidArgument, "create: the host services table is too small (struct_size " +
                                                  std::to_string(services->struct_size) + ")");
    auto impl = MiningPlugin::create(*services);
    if (!impl) return std::unexpected(impl.error());
    *out = new ipcsync_plugin{std::move(*impl)};
    return {};
  });
}

int start(ipcsync_plugin* plugin, const ipcsync_start_args* args, ipcsync_error* error) {
  return guarded(error, "start", [&]() -> Expected<> {
    auto self = instance(plugin, "start");
    if (!self) return std::unexpected(self.error());
    const ipcsync_start_args none{sizeof(ipcsync_start_args), 0};
    return (*self)->start(args ? *args : none);
  });
}

int poll(ipcsync_plugin* plugin, ipcsync_error* error) {
  return guarded(error, "poll", [&]() -> Expected<> {
    auto self = instance(plugin, "poll");
    if (!self) return std::unexpected(self.error());
    return (*self)->poll();
  });
}

int apply(ipcsync_plugin* plugin, const ipcsync_envelope* envelope, ipcsync_apply_result* result,
          ipcsync_error* error) {
  return guarded(error, "apply", [&]() -> Expected<> {
    auto self = instance(plugin, "apply");
    if (!self) return std::unexpected(self.error());
    if (!envelope || !result) return fail(ErrorKind::InvalidArgument, "apply: envelope and result must not be NULL");
    if (result->struct_size < offsetof(ipcsync_apply_result, conflicts) + sizeof result->conflicts)
      return fail(ErrorKind::InvalidArgument, "apply: the result's struct_size " +
                                                  std::to_string(result->struct_size) + " is too small");
    auto outcome = (*self)->apply(*envelope);
    if (!outcome) return std::unexpected(outcome.error());
    result->status = outcome->status;
    result->changes_applied = outcome->changesApplied;
    result->conflicts = outcome->conflicts;
    return {};
  });
}

int snapshot(ipcsync_plugin* plugin, const ipcsync_snapshot_request* request, uint64_t* /*as_of*/,
             ipcsync_error* error) {
  return guarded(error, "snapshot", [&]() -> Expected<> {
    auto self = instance(plugin, "snapshot");
    if (!self) return std::unexpected(self.error());
    const std::string table = request && request->table ? request->table : "(none)";
    return fail(ErrorKind::Unsupported, "snapshot of table '" + table +
                                            "': mining produces no tables, it only accepts accounts and orders; "
                                            "take the snapshot from the plugin that produces them (crm)");
  });
}

int lastApplied(ipcsync_plugin* plugin, const char* route, uint64_t* sequence, ipcsync_error* error) {
  return guarded(error, "last_applied", [&]() -> Expected<> {
    auto self = instance(plugin, "last_applied");
    if (!self) return std::unexpected(self.error());
    if (!sequence) return fail(ErrorKind::InvalidArgument, "last_applied: sequence must not be NULL");
    auto last = (*self)->lastApplied(route);
    if (!last) return std::unexpected(last.error());
    *sequence = *last;
    return {};
  });
}

int acknowledge(ipcsync_plugin* plugin, uint64_t sequence, ipcsync_error* error) {
  return guarded(error, "acknowledge", [&]() -> Expected<> {
    auto self = instance(plugin, "acknowledge");
    if (!self) return std::unexpected(self.error());
    return (*self)->acknowledge(sequence);
  });
}

int stop(ipcsync_plugin* plugin, ipcsync_error* error) {
  return guarded(error, "stop", [&]() -> Expected<> {
    auto self = instance(plugin, "stop");
    if (!self) return std::unexpected(self.error());
    return (*self)->stop();
  });
}

void destroy(ipcsync_plugin* plugin) {
  try {
    delete plugin;  // the store rolls back an unfinished transaction
  } catch (...) {
  }
}

const ipcsync_table_desc kTables[] = {
    {sizeof(ipcsync_table_desc), "accounts", kAccountsSchemaSql, IPCSYNC_TABLE_ACCEPTS},
    {sizeof(ipcsync_table_desc), "orders", kOrdersSchemaSql, IPCSYNC_TABLE_ACCEPTS},
};

const ipcsync_plugin_descriptor kDescriptor = {
    sizeof(ipcsync_plugin_descriptor),
    IPCSYNC_PLUGIN_ABI_MAJOR,
    IPCSYNC_PLUGIN_ABI_MINOR,
    "mining",
    "1.0.0",
    "Live sales aggregates (by region, product, customer and day) over the CRM's accounts and orders",
    kTables,
    sizeof kTables / sizeof kTables[0],
    &create,
    &start,
    &poll,
    &apply,
    &snapshot,
    &lastApplied,
    &acknowledge,
    &stop,
    &destroy,
};

}  // namespace
}  // namespace ipcsync::mining

extern "C" IPCSYNC_PLUGIN_EXPORT const ipcsync_plugin_descriptor* ipcsync_plugin_entry(void) {
  return &ipcsync::mining::kDescriptor;
}
