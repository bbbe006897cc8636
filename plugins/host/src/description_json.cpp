#include "ipcsync/plugin_host/description_json.h"

#include <nlohmann/json.hpp>

#include "host_services.h"

namespace ipcsync::plugin_host {

std::string describeAsJson(const LoadedPlugin& plugin) {
  const auto& d = plugin.description();
  nlohmann::json tables = nlohmann::json::array();
  for (const auto& t : d.tables)
    tables.push_back({{"name", t.name}, {"produces", t.produces()}, {"accepts", t.accepts()}, {"schema", t.schemaSql}});
  const nlohmann::json out = {
      {"file", plugin.path().string()},
      {"name", d.name},
      {"version", d.version},
      {"description", d.description},
      {"abi", std::to_string(d.abiMajor) + "." + std::to_string(d.abiMinor)},
      {"changeset_helpers", HostServices::hasChangesetHelpers()},
      {"tables", tables},
  };
  return out.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace ipcsync::plugin_host
