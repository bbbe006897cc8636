// The mining plugin's settings, read once at create() through the host's setting() service.
//   database       path of the mining database; relative paths are under data_dir();
//                  default <data_dir>/mining.db
//   top_customers  how many rows the top_customers view lists: 1..1000000, default 10
#pragma once

#include <ipcsync/plugin.h>

#include <cstdint>
#include <string>

#include "error.h"

namespace ipcsync::mining {

inline constexpr int64_t kDefaultTopCustomers = 10;
inline constexpr int64_t kMaxTopCustomers = 1000000;

struct Settings {
  std::string databasePath;
  int64_t topCustomers = kDefaultTopCustomers;
};

// InvalidArgument names the setting, the value found and what is allowed.
Expected<Settings> readSettings(const ipcsync_host_services& services);

}  // namespace ipcsync::mining
