// The JSON form of a plugin's description, as `ipcsync-plugin-host --describe` prints it and the
// Describe reply carries it:
//   {"file": "...", "name": "crm", "version": "1.0.0", "description": "...", "abi": "1.0",
//    "changeset_helpers": true,
//    "tables": [{"name": "contacts", "produces": true, "accepts": true, "schema": "CREATE TABLE ..."}]}
#pragma once

#include <string>

#include "ipcsync/plugin_host/loader.h"

namespace ipcsync::plugin_host {

// The description of `plugin` as one line of JSON. Never throws for valid UTF-8 input; invalid
// bytes in the plugin's strings are replaced.
std::string describeAsJson(const LoadedPlugin& plugin);

}  // namespace ipcsync::plugin_host
