// ipcsync-sync: the sync engine process. See docs/design/sync-engine.md.
#include <CLI/CLI.hpp>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <csignal>
#include <cstdio>

#include "ipcsync/sync/engine_config_file.h"
#include "ipcsync/sync/router.h"
#include "ipcsync/sync/topology_json.h"

namespace {

volatile std::sig_atomic_t g_stop = 0;
extern "C" void onSignal(int) { g_stop = 1; }

constexpr const char* kFooter =
    "Exit codes: 0 stopped on SIGTERM/SIGINT (what was received is journaled; answers to Applies in flight are "
    "waited for, at most 5 s and not beyond --apply-timeout-ms); "
    "1 the engine is not running, went away, or 'sync' is already registered; 2 usage error (command line, "
    "topology); 3 the journal could not be opened or written.";

}  // namespace

int main(int argc, char** argv) {
  using ipcsync::sync::ExitCode;
  CLI::App app{"ipcsync-sync: the sync engine; carries change-sets between plugin hosts along the topology.",
               "ipcsync-sync"};
  app.footer(kFooter);
  std::string ns = "default", runtimeDir, topologyFile, configFile, journalPath;
  int applyTimeoutMs = 30000;
  app.add_option("--namespace,-n", ns, "namespace of the engine to register with (default: 'default')");
  app.add_option("--runtime-dir", runtimeDir, "the engine's runtime directory; sync.json is written to <dir>/<ns>/");
  auto* topo = app.add_option("--topology", topologyFile, "topology as JSON (docs/design/sync-engine.md)");
  auto* cfg = app.add_option("--config", configFile, "the daemon's YAML configuration (its routes: and journal:)");
  topo->excludes(cfg);
  app.add_option("--journal", journalPath, "journal file (overrides the topology's journal path)");
  app.add_option("--apply-timeout-ms", applyTimeoutMs,
                 "how long an Apply may go unanswered before its subscriber is reported stalled (a warning, and "
                 "stalled_ms in sync.json); it is not sent again nor counted as a failure, and other subscribers "
                 "never wait for it (default 30000)")
      ->check(CLI::Range(100, 3600000));
  try {
    app.parse(argc, argv);
    if (!*topo && !*cfg) throw CLI::RequiredError("--topology or --config");
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);
    return rc == 0 ? 0 : static_cast<int>(ExitCode::Usage);
  }
  auto logger = spdlog::stderr_color_mt("sync");
  spdlog::set_default_logger(logger);
  spdlog::set_pattern("[%H:%M:%S.%e] [%^%l%$] sync: %v");

  ipcsync::sync::RouterOptions options;
  options.ns = ns;
  options.runtimeDir = runtimeDir;
  options.applyTimeout = std::chrono::milliseconds(applyTimeoutMs);
  if (*topo) {
    auto t = ipcsync::sync::loadTopologyJson(topologyFile);
    if (!t) {
      std::fprintf(stderr, "ipcsync-sync: %s\n", t.error().c_str());
      return static_cast<int>(ExitCode::Usage);
    }
    options.topology = std::move(*t);
  } else {
    // As ipcsyncd reads it: plugin libraries named without a path resolve in the plugins
    // directory that belongs to this build or installation.
    ipcsync::DaemonConfig base;
    base.plugins.pluginsDir = ipcsync::defaultPluginsDir();
    auto c = ipcsync::loadDaemonConfig(configFile, base);
    if (!c) {
      std::fprintf(stderr, "ipcsync-sync: %s\n", c.error().message.c_str());
      return static_cast<int>(ExitCode::Usage);
    }
    options.topology = c->topology;
    options.topology.journal.path = ipcsync::effectiveJournalPath(*c);
  }
  if (!journalPath.empty()) options.topology.journal.path = journalPath;

  struct sigaction sa{};
  sa.sa_handler = &onSignal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGINT, &sa, nullptr);
  std::signal(SIGPIPE, SIG_IGN);

  auto router = ipcsync::sync::Router::create(std::move(options));
  if (!router) {
    spdlog::error("{}", router.error().message);
    return static_cast<int>(router.error().code);
  }
  const auto code = (*router)->run(g_stop);
  spdlog::info("exiting with code {}", static_cast<int>(code));
  return static_cast<int>(code);
}
