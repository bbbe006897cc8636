#include "settings.h"

#include <charconv>
#include <filesystem>
#include <string_view>

namespace ipcsync::mining {

Expected<Settings> readSettings(const ipcsync_host_services& services) {
  Settings s;
  const char* dataDir = services.data_dir ? services.data_dir(services.host) : nullptr;
  const char* database = services.setting ? services.setting(services.host, "database") : nullptr;
  if (database && *database == '\0')
    return fail(ErrorKind::InvalidArgument, "setting 'database' is empty; give a file path or leave it out for "
                                            "<data_dir>/mining.db");
  std::filesystem::path path = database ? database : "mining.db";
  if (path.is_relative()) {
    if (!dataDir || *dataDir == '\0')
      return fail(ErrorKind::InvalidArgument, "the host gave no data directory, so setting 'database' must be an "
                                              "absolute path (it is '" + path.string() + "')");
    path = std::filesystem::path(dataDir) / path;
  }
  s.databasePath = path.string();

  if (const char* top = services.setting ? services.setting(services.host, "top_customers") : nullptr) {
    const std::string_view text(top);
    int64_t value = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc() || end != text.data() + text.size() || text.empty() || value < 1 || value > kMaxTopCustomers)
      return fail(ErrorKind::InvalidArgument, "setting 'top_customers' is '" + std::string(text) +
                                                  "'; it must be a whole number from 1 to " +
                                                  std::to_string(kMaxTopCustomers) + " (default " +
                                                  std::to_string(kDefaultTopCustomers) + ")");
    s.topCustomers = value;
  }
  return s;
}

}  // namespace ipcsync::mining
