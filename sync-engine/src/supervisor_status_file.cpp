#include "ipcsync/sync/plugins_status_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <nlohmann/json.hpp>

#include "ipcsync/ipccore/unique_fd.h"

namespace ipcsync {
namespace {

// ISO 8601 in UTC with milliseconds: "2024-05-01T12:00:00.123Z".
std::string iso8601(std::chrono::system_clock::time_point t) {
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
  const std::time_t secs = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  ::gmtime_r(&secs, &tm);
  char buf[80];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(ms % 1000));
  return buf;
}

nlohmann::ordered_json instanceJson(const InstanceStatus& s) {
    nlohmann::ordered_json i = {{"name", s.name},
                        {"library", s.library},
                        {"state", std::string(toString(s.state))},
                        {"pid", s.pid == 0 ? nlohmann::ordered_json(nullptr) : nlohmann::ordered_json(s.pid)},
                        {"restarts", s.restarts},
                        {"last_exit", s.lastExit.empty() ? nlohmann::ordered_json(nullptr) : nlohmann::ordered_json(s.lastExit)},
                        {"message", s.message},
                        {"since", iso8601(s.since)}};
    if (s.restartAt) i["restart_at"] = iso8601(*s.restartAt);
    return i;
}

}  // namespace

std::string pluginsStatusJson(const std::vector<InstanceStatus>& instances, const std::vector<std::string>& available,
                              const InstanceStatus* sync) {
  nlohmann::ordered_json doc;
  doc["instances"] = nlohmann::ordered_json::array();
  for (const auto& s : instances) doc["instances"].push_back(instanceJson(s));
  doc["available"] = available;
  doc["sync"] = sync ? instanceJson(*sync) : nlohmann::ordered_json(nullptr);
  // Replaces invalid UTF-8 (a host may print anything) instead of throwing.
  return doc.dump(2, ' ', false, nlohmann::ordered_json::error_handler_t::replace) + "\n";
}

std::expected<void, std::string> writePluginsStatus(const std::filesystem::path& path,
                                                    const std::vector<InstanceStatus>& instances,
                                                    const std::vector<std::string>& available,
                                                    const InstanceStatus* sync) {
  const std::string text = pluginsStatusJson(instances, available, sync);
  const std::filesystem::path tmp = path.string() + ".tmp";
  UniqueFd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (!fd) return std::unexpected("cannot write " + tmp.string() + ": " + std::strerror(errno));
  for (std::size_t done = 0; done < text.size();) {
    const ssize_t n = ::write(fd.get(), text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int err = errno;
      ::unlink(tmp.c_str());
      return std::unexpected("cannot write " + tmp.string() + ": " + std::strerror(err));
    }
    done += static_cast<std::size_t>(n);
  }
  fd.reset();
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    return std::unexpected("cannot rename " + tmp.string() + " to " + path.string() + ": " + std::strerror(err));
  }
  return {};
}

}  // namespace ipcsync
