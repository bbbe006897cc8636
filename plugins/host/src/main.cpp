// ipcsync-plugin-host: runs one plugin instance in its own process and serves it to the sync
// engine over the IPC core. See docs/design/plugin-host.md.
#include <CLI/CLI.hpp>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>
#include <vector>

#include "host_server.h"
#include "ipcsync/ipccore/client.h"
#include "ipcsync/plugin_host/description_json.h"
#include "ipcsync/plugin_host/loader.h"

namespace {

using namespace ipcsync::plugin_host;

volatile std::sig_atomic_t g_stop = 0;

extern "C" void onSignal(int) { g_stop = 1; }

void installSignals() {
  struct sigaction sa{};
  sa.sa_handler = &onSignal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = 0;  // no SA_RESTART: poll() returns at once
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGINT, &sa, nullptr);
  std::signal(SIGPIPE, SIG_IGN);
}

// Where an instance keeps its files unless --data-dir says: $XDG_STATE_HOME (or ~/.local/state)
// /ipcsync/<namespace>/<instance>.
std::filesystem::path defaultDataDir(const std::string& ns, const std::string& instance) {
  std::filesystem::path base;
  if (const char* state = std::getenv("XDG_STATE_HOME"); state && *state) base = state;
  else if (const char* home = std::getenv("HOME"); home && *home) base = std::filesystem::path(home) / ".local/state";
  else base = "/tmp/ipcsync-" + std::to_string(::getuid());
  return base / "ipcsync" / ns / instance;
}

constexpr const char* kFooter =
    "Exit codes: 0 stopped cleanly (SIGTERM, SIGINT or Stop from the sync engine), 1 engine not running or lost "
    "(or the sync engine's session ended), 2 usage error, 3 plugin refused by the loader, 4 plugin create() or "
    "start() failed.";

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"ipcsync-plugin-host: runs one plugin instance and serves it to the sync engine."};
  app.footer(kFooter);
  std::string pluginPath, instance, ns = "default", runtimeDir, dataDir, syncPeer = "sync";
  std::vector<std::string> settingArgs;
  int pollMs = 1;
  bool describeOnly = false;
  app.add_option("--plugin", pluginPath, "plugin library (.so) to load")->required();
  app.add_option("--instance", instance, "instance name; registers as plugin.<instance> (required unless --describe)");
  app.add_option("--namespace", ns, "namespace of the engine to register with (default: 'default')");
  app.add_option("--runtime-dir", runtimeDir, "the engine's runtime directory (default: found via the admin segment)");
  app.add_option("--data-dir", dataDir,
                 "directory for the instance's own files (default: $XDG_STATE_HOME/ipcsync/<namespace>/<instance>)");
  app.add_option("--setting", settingArgs, "a setting as key=value (repeatable), as the plugin's setting(key) reads it");
  app.add_option("--poll-ms", pollMs, "how often to poll the plugin, in milliseconds (default: 1); a change a plugin captures waits for the next poll, "
                 "unless the plugin wakes the host through a descriptor (set_wake_fd, plugin ABI 1.1)")
      ->check(CLI::Range(1, 60000));
  app.add_option("--sync-peer", syncPeer, "the process name of the sync engine to serve (default: 'sync')");
  app.add_flag("--describe", describeOnly, "load the plugin, print its description as JSON and exit");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);
    return rc == 0 ? kStoppedCleanly : kUsageError;
  }

  auto logger = spdlog::stderr_color_mt("plugin-host");
  spdlog::set_default_logger(logger);
  spdlog::set_pattern(describeOnly ? "ipcsync-plugin-host: %v" : "[%H:%M:%S.%e] [%^%l%$] plugin-host: %v");

  std::map<std::string, std::string> settings;
  for (const auto& s : settingArgs) {
    const auto eq = s.find('=');
    if (eq == std::string::npos || eq == 0) {
      std::fprintf(stderr, "ipcsync-plugin-host: --setting '%s' is not key=value; write e.g. --setting database.path=/x\n",
                   s.c_str());
      return kUsageError;
    }
    settings[s.substr(0, eq)] = s.substr(eq + 1);
  }
  if (!describeOnly && instance.empty()) {
    std::fprintf(stderr, "ipcsync-plugin-host: --instance NAME is required (unless --describe)\n");
    return kUsageError;
  }

  auto plugin = load(pluginPath);
  if (!plugin) {
    std::fprintf(stderr, "ipcsync-plugin-host: %s\n", plugin.error().message.c_str());
    return kPluginRefused;
  }
  if (describeOnly) {
    std::printf("%s\n", describeAsJson(*plugin).c_str());
    return kStoppedCleanly;
  }

  installSignals();
  ipcsync::ConnectOptions options;
  options.ns = ns;
  options.name = "plugin." + instance;
  if (!runtimeDir.empty()) options.runtimeDir = runtimeDir;
  auto client = ipcsync::Client::connect(options);
  if (!client) {
    const auto code = client.error().code;
    spdlog::error("cannot register as '{}' in namespace '{}': {}", options.name, ns, client.error().message());
    // A name still held (a crashed predecessor not yet reclaimed) is transient, like a lost
    // engine: the supervisor may retry. Only a name that can never register is a usage error.
    return code == ipcsync::Errc::InvalidArgument ? kUsageError : kEngineLost;
  }

  HostServer server(**client, *plugin, syncPeer, std::chrono::milliseconds(pollMs));
  InstanceConfig config{instance, std::move(settings),
                        dataDir.empty() ? defaultDataDir(ns, instance) : std::filesystem::path(dataDir)};
  auto created = plugin->createInstance(std::move(config), server);
  if (!created) {
    spdlog::error("{}", created.error().message);
    return ipcsync::plugin_host::transient(created.error().status) ? kEngineLost : kPluginFailed;
  }
  server.attach(std::move(*created));
  spdlog::info("plugin '{}' {} serves as '{}' in namespace '{}'; waiting for the sync engine '{}'",
               plugin->description().name, plugin->description().version, options.name, ns, syncPeer);
  return server.run(g_stop);
}
