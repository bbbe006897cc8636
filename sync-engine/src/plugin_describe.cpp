#include "ipcsync/sync/plugin_describe.h"

#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <nlohmann/json.hpp>
#include <thread>

#include "ipcsync/sync/plugin_config.h"

namespace ipcsync {
namespace {

std::string readAll(int fd) {
  std::string out;
  ::lseek(fd, 0, SEEK_SET);
  char buf[4096];
  for (ssize_t n; (n = ::read(fd, buf, sizeof buf)) > 0;) out.append(buf, static_cast<std::size_t>(n));
  return out;
}

std::string firstLine(std::string s) {
  if (const auto nl = s.find('\n'); nl != std::string::npos) s.resize(nl);
  return s;
}

bool executable(const std::filesystem::path& p) { return !p.empty() && ::access(p.c_str(), X_OK) == 0; }

}  // namespace

DescribeRun runDescribe(const std::filesystem::path& host, const std::filesystem::path& file, std::chrono::seconds timeout) {
  DescribeRun d;
  const int out = ::memfd_create("ipcsync-describe-out", MFD_CLOEXEC);
  const int err = ::memfd_create("ipcsync-describe-err", MFD_CLOEXEC);
  if (out < 0 || err < 0) {
    d.err = std::string("memfd_create: ") + std::strerror(errno);
    if (out >= 0) ::close(out);
    if (err >= 0) ::close(err);
    return d;
  }
  std::fflush(nullptr);
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(out, STDOUT_FILENO);
    ::dup2(err, STDERR_FILENO);
    sigset_t none;
    ::sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);  // a daemon's blocked stop signals must not reach the child
    const std::string h = host.string(), f = file.string();
    const char* argv[] = {h.c_str(), "--plugin", f.c_str(), "--describe", nullptr};
    ::execv(h.c_str(), const_cast<char* const*>(argv));
    std::fprintf(stderr, "cannot run %s: %s\n", h.c_str(), std::strerror(errno));
    ::_exit(127);
  }
  if (pid < 0) {
    d.err = std::string("fork: ") + std::strerror(errno);
    ::close(out);
    ::close(err);
    return d;
  }
  int status = 0;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    if (::waitpid(pid, &status, WNOHANG) == pid) break;
    if (std::chrono::steady_clock::now() > deadline) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &status, 0);
      d.err = "did not finish loading within " + std::to_string(timeout.count()) + " s (killed)";
      ::close(out);
      ::close(err);
      return d;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  d.code = WIFEXITED(status) ? WEXITSTATUS(status) : WIFSIGNALED(status) ? 128 + WTERMSIG(status) : -1;
  d.out = readAll(out);
  d.err = readAll(err);
  ::close(out);
  ::close(err);
  return d;
}

const PluginTable* PluginDescription::table(const std::string& wanted) const {
  for (const auto& t : tables)
    if (t.name == wanted) return &t;
  return nullptr;
}

std::expected<PluginDescription, std::string> parsePluginDescription(const std::string& json) {
  try {
    const auto j = nlohmann::json::parse(json);
    PluginDescription d;
    d.name = j.at("name").get<std::string>();
    d.version = j.at("version").get<std::string>();
    for (const auto& t : j.at("tables")) {
      PluginTable table;
      table.name = t.at("name").get<std::string>();
      table.produces = t.at("produces").get<bool>();
      table.accepts = t.at("accepts").get<bool>();
      // The host prints "schema"; "schema_sql" is the ABI struct's name for it.
      for (const char* key : {"schema", "schema_sql"})
        if (t.contains(key) && t[key].is_string()) table.schemaSql = t[key].get<std::string>();
      d.tables.push_back(std::move(table));
    }
    return d;
  } catch (const std::exception& e) {
    return std::unexpected(std::string("unreadable description (") + e.what() + ")");
  }
}

std::expected<PluginDescription, std::string> describePlugin(const std::filesystem::path& host,
                                                             const std::filesystem::path& file,
                                                             std::chrono::seconds timeout) {
  const DescribeRun run = runDescribe(host, file, timeout);
  if (run.code == 0) {
    auto d = parsePluginDescription(run.out);
    if (!d) return std::unexpected("plugin " + file.string() + ": " + host.string() + " printed an " + d.error());
    return d;
  }
  std::string why;
  if (run.code == 3) why = "refused by the loader: " + firstLine(run.err);
  else if (run.code > 128) why = "crashed while loading (signal " + std::to_string(run.code - 128) + ", " + strsignal(run.code - 128) + ")";
  else if (run.code < 0) why = run.err;
  else why = "the host failed (exit " + std::to_string(run.code) + "): " + firstLine(run.err);
  return std::unexpected("plugin " + file.string() + ": " + why);
}

std::filesystem::path findPluginHost() {
  std::error_code ec;
  const auto self = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (!ec)
    if (const auto here = self.parent_path() / "ipcsync-plugin-host"; executable(here)) return here;
  if (const auto d = defaultHostProgram(); executable(d)) return d;
  if (const char* path = std::getenv("PATH")) {
    std::string_view rest = path;
    while (!rest.empty()) {
      const auto colon = rest.find(':');
      const auto dir = rest.substr(0, colon);
      if (!dir.empty())
        if (const auto candidate = std::filesystem::path(dir) / "ipcsync-plugin-host"; executable(candidate)) return candidate;
      rest = colon == std::string_view::npos ? std::string_view() : rest.substr(colon + 1);
    }
  }
  return {};
}

}  // namespace ipcsync
