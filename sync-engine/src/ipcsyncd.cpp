// ipcsyncd: the ipcsync daemon. Runs the communications engine of one namespace and supervises
// its plugin hosts (docs/design/supervision.md).
#include <signal.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <optional>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include "ipcsync/ipccore/engine.h"
#include "ipcsync/sync/daemon_loop.h"
#include "ipcsync/sync/engine_config_file.h"
#include "ipcsync/sync/topology_check.h"

namespace {

// Documented in docs/ERRORS.md.
enum ExitCode : int { kOk = 0, kRuntimeError = 1, kUsageError = 2, kAlreadyRunning = 3 };

// loadDaemonConfig() and, when there are routes, validateTopology() against the plugins' own
// descriptions (the plugin host runs each library with --describe). Every message, one per line.
std::expected<ipcsync::DaemonConfig, std::string> loadAndCheck(const std::string& file, const ipcsync::DaemonConfig& base) {
  auto loaded = ipcsync::loadDaemonConfig(file, base);
  if (!loaded) return std::unexpected(loaded.error().message);
  if (loaded->topology.routes.empty()) return std::move(*loaded);
  const auto host = loaded->plugins.hostProgram.empty() ? ipcsync::defaultHostProgram() : loaded->plugins.hostProgram;
  const auto report = ipcsync::validateTopology(*loaded, ipcsync::hostDescriber(host));
  if (report.ok()) return std::move(*loaded);
  std::string all;
  for (const auto& e : report.errors) all += (all.empty() ? "" : "\n") + e;
  return std::unexpected(all + "\n" + file + ": invalid topology (" + std::to_string(report.errors.size()) +
                         (report.errors.size() == 1 ? " error" : " errors") + "); check it with 'ipcsync validate " + file + "'");
}

std::uint32_t shiftOf(const std::string& option, const std::string& text) {
  auto bytes = ipcsync::parseByteSize(text);
  if (!bytes || *bytes == 0 || (*bytes & (*bytes - 1)) != 0)
    throw CLI::ValidationError(option, "'" + text + "' is not a power-of-two size such as 64, 4KiB or 1MiB");
  return static_cast<std::uint32_t>(__builtin_ctzll(*bytes));
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "ipcsyncd: the ipcsync daemon. Runs the communications engine of one namespace: it owns the\n"
      "namespace's administrative memory, registers processes, gives each its own block managed by\n"
      "a buddy allocator, and reclaims everything a process held when it ends. It runs one plugin\n"
      "host per plugin instance of the configuration file and restarts crashed ones with back-off;\n"
      "when the file has routes, it also runs the sync engine (ipcsync-sync), after checking the\n"
      "topology against the plugins (as 'ipcsync validate' does). SIGTERM or SIGINT stops the sync\n"
      "engine, then the hosts, then the engine. SIGHUP (or writing the file) reloads the file: added\n"
      "instances start, removed ones stop, a changed topology restarts the sync engine; an invalid\n"
      "file is refused and logged. Options given on the command line override the configuration file.\n"
      "Exit codes: 0 stopped cleanly, 1 runtime error, 2 usage or configuration error (including an\n"
      "invalid topology),\n"
      "3 the namespace is already served by a running engine."};
  std::string configFile, ns, runtimeDir, minBlock, arenaSize, logLevel = "info";
  std::uint32_t capacity = 0, minArenas = 0, maxArenas = 0, publishMs = 0;
  std::optional<std::uint32_t> spinUs;
  std::string handoverThreshold;
  std::vector<uid_t> uids;
  std::vector<gid_t> gids;
  int readyFd = -1;
  app.add_option("-c,--config", configFile, "YAML configuration file (see docs/CONFIG.md)")->check(CLI::ExistingFile);
  app.add_option("-n,--namespace", ns, "namespace to serve (default: 'default')");
  app.add_option("--runtime-dir", runtimeDir,
                 "base directory for the rendezvous socket (default: $XDG_RUNTIME_DIR/ipcsync or /tmp/ipcsync-UID)");
  app.add_option("--capacity", capacity, "registry slots: most processes registered at once (default 128)")
      ->check(CLI::Range(1, 4096));
  app.add_option("--min-block", minBlock, "smallest sub-block a manager hands out, power of two (default 64)");
  app.add_option("--arena-size", arenaSize, "size of one arena, the largest sub-block, power of two (default 1MiB)");
  app.add_option("--min-arenas", minArenas, "arenas every block keeps (default 1)")->check(CLI::Range(1, 256));
  app.add_option("--max-arenas", maxArenas, "arenas a block may grow to (default 64)")->check(CLI::Range(1, 256));
  app.add_option("--allow-uid", uids, "user id allowed to register (repeatable; default: only our own user)");
  app.add_option("--allow-gid", gids, "group id allowed to register (repeatable)");
  app.add_option("--publish-interval-ms", publishMs, "how often manager figures reach the registry (default 50)")
      ->check(CLI::Range(1, 60000));
  app.add_option("--spin-us", spinUs,
                 "how long the engine keeps polling after the last message before it sleeps, in us (default 50;\n"
                 "larger: lower latency for more CPU)")
      ->check(CLI::Range(0, 10'000'000));
  app.add_option("--handover-threshold", handoverThreshold,
                 "messages of at least this size are handed over as sealed memory objects instead of copied\n"
                 "(default: larger than one arena)");
  app.add_option("--log-level", logLevel, "debug, info, warn or error")
      ->check(CLI::IsMember({"debug", "info", "warn", "error"}));
  app.add_option("--ready-fd", readyFd, "write 'ready' to this descriptor once serving, then close it");

  ipcsync::blockStopSignals();  // read later from a signalfd; blocked before any thread starts
  ipcsync::DaemonConfig daemonConfig;
  daemonConfig.plugins.pluginsDir = ipcsync::defaultPluginsDir();
  ipcsync::EngineConfig& config = daemonConfig.engine;
  try {
    app.parse(argc, argv);
    if (!configFile.empty()) {
      auto loaded = loadAndCheck(configFile, daemonConfig);
      if (!loaded) {
        std::fprintf(stderr, "ipcsyncd: %s\n", loaded.error().c_str());
        return kUsageError;
      }
      daemonConfig = std::move(*loaded);
    }
    if (!ns.empty()) config.ns = ns;
    if (!runtimeDir.empty()) config.runtimeDir = runtimeDir;
    if (capacity) config.capacity = capacity;
    if (!minBlock.empty()) config.geometry.minBlockShift = shiftOf("--min-block", minBlock);
    if (!arenaSize.empty()) config.geometry.arenaShift = shiftOf("--arena-size", arenaSize);
    if (minArenas) config.geometry.minArenas = minArenas;
    if (maxArenas) config.geometry.maxArenas = maxArenas;
    if (publishMs) config.publishInterval = std::chrono::milliseconds(publishMs);
    if (spinUs) config.spin = std::chrono::microseconds(*spinUs);
    if (!handoverThreshold.empty()) {
      auto bytes = ipcsync::parseByteSize(handoverThreshold);
      if (!bytes || *bytes == 0) throw CLI::ValidationError("--handover-threshold", "'" + handoverThreshold + "' is not a size");
      config.handoverThreshold = *bytes;
    }
    if (!uids.empty()) config.access.uids = uids;
    if (!gids.empty()) config.access.gids = gids;
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);
    return rc == 0 ? kOk : kUsageError;
  }

  // Logs go to stderr, unbuffered, so that they reach a file or journal line by line.
  spdlog::set_default_logger(spdlog::stderr_color_mt("ipcsyncd"));
  spdlog::set_level(spdlog::level::from_str(logLevel));
  spdlog::set_pattern("%Y-%m-%d %H:%M:%S.%e ipcsyncd[%P] %^%l%$: %v");
  auto sink = [](ipcsync::LogLevel level, std::string_view text) {
    switch (level) {
      case ipcsync::LogLevel::Debug: spdlog::debug("{}", text); break;
      case ipcsync::LogLevel::Info: spdlog::info("{}", text); break;
      case ipcsync::LogLevel::Warn: spdlog::warn("{}", text); break;
      case ipcsync::LogLevel::Error: spdlog::error("{}", text); break;
    }
  };

  ::signal(SIGPIPE, SIG_IGN);
  auto engine = ipcsync::Engine::create(config, sink);
  if (!engine) {
    spdlog::error("{}", engine.error().message());
    switch (engine.error().code) {
      case ipcsync::Errc::EngineAlreadyRunning: return kAlreadyRunning;
      case ipcsync::Errc::InvalidArgument: return kUsageError;
      default: return kRuntimeError;
    }
  }
  ipcsync::ConfigReloader reload;
  if (!configFile.empty()) {
    ipcsync::DaemonConfig base;
    base.plugins.pluginsDir = ipcsync::defaultPluginsDir();
    reload = [configFile, base] { return loadAndCheck(configFile, base); };
  }
  return ipcsync::runDaemon(std::move(*engine), daemonConfig, sink, readyFd, reload) == 0 ? kOk : kRuntimeError;
}
