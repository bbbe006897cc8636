#include "ipcsync/sync/plugin_config.h"

#include <unistd.h>

#include <cstdlib>
#include <system_error>

namespace ipcsync {
namespace {

std::filesystem::path executableDir() {
  std::error_code ec;
  auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  return ec ? std::filesystem::current_path(ec) : exe.parent_path();
}

bool present(const std::filesystem::path& p) {
  std::error_code ec;
  return std::filesystem::exists(p, ec);
}

}  // namespace

std::filesystem::path defaultStateDir(const std::string& ns) {
  if (const char* xdg = std::getenv("XDG_STATE_HOME"); xdg && *xdg) return std::filesystem::path(xdg) / "ipcsync" / ns;
  if (const char* home = std::getenv("HOME"); home && *home)
    return std::filesystem::path(home) / ".local" / "state" / "ipcsync" / ns;
  return std::filesystem::path("/tmp/ipcsync-state-" + std::to_string(::geteuid())) / ns;
}

std::filesystem::path effectiveDataDir(const PluginsConfig& plugins, const PluginInstanceConfig& instance,
                                       const std::string& ns) {
  if (!instance.dataDir.empty()) return instance.dataDir;
  return (plugins.stateDir.empty() ? defaultStateDir(ns) : plugins.stateDir) / instance.name;
}

std::filesystem::path defaultPluginsDir() {
  const auto dir = executableDir();
  if (auto build = (dir / ".." / "plugins").lexically_normal(); present(build)) return build;
  return (dir / ".." / "lib" / "ipcsync" / "plugins").lexically_normal();
}

std::filesystem::path defaultHostProgram() {
  const auto dir = executableDir();
  if (auto beside = dir / "ipcsync-plugin-host"; present(beside)) return beside;
  return (dir / ".." / "plugins" / "host" / "ipcsync-plugin-host").lexically_normal();
}

std::filesystem::path defaultSyncProgram() {
  const auto dir = executableDir();
  if (auto beside = dir / "ipcsync-sync"; present(beside)) return beside;
  if (auto router = dir / "router" / "ipcsync-sync"; present(router)) return router;
  return dir / "ipcsync-sync";
}

bool validInstanceName(const std::string& name) {
  if (name.empty() || name.size() > 32) return false;
  for (const char ch : name)
    if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '_' || ch == '-')) return false;
  return true;
}

}  // namespace ipcsync
