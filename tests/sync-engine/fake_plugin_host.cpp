// A stand-in for ipcsync-plugin-host with the same command line, for supervisor tests: what it
// does is chosen by its --setting values, so a test can make a host crash, refuse, hang or run.
//
//   mode=run (default)  register with the engine as plugin.<instance>; exit 0 on SIGTERM, 1 when
//                       the engine is gone
//   mode=crash          die by SIGSEGV after crash_after_ms (default 0)
//   mode=exit3|exit4    print a reason to stderr and exit 3 or 4
//   ignore_term=1       ignore SIGTERM (to test the SIGKILL after the stop timeout)
//   grandchild=1        start a child in the same process group first (pid in <data-dir>/grandchild.pid)
//
// Every start appends "<CLOCK_MONOTONIC ns> <pid>" to <data-dir>/starts.log.
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <thread>

#include "ipcsync/ipccore/client.h"

namespace {

std::atomic<bool> g_stop{false};
void onTerm(int) { g_stop = true; }

std::int64_t monotonicNs() {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

}  // namespace

int main(int argc, char** argv) {
  std::string plugin, instance, ns, runtimeDir, dataDir;
  std::map<std::string, std::string> settings;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string opt = argv[i], val = argv[i + 1];
    if (opt == "--plugin") plugin = val;
    else if (opt == "--instance") instance = val;
    else if (opt == "--namespace") ns = val;
    else if (opt == "--runtime-dir") runtimeDir = val;
    else if (opt == "--data-dir") dataDir = val;
    else if (opt == "--setting" && val.find('=') != std::string::npos) settings[val.substr(0, val.find('='))] = val.substr(val.find('=') + 1);
    else {
      std::fprintf(stderr, "fake host: unknown option %s\n", opt.c_str());
      return 2;
    }
  }
  if (plugin.empty() || instance.empty() || ns.empty() || dataDir.empty()) {
    std::fprintf(stderr, "fake host: --plugin, --instance, --namespace and --data-dir are required\n");
    return 2;
  }
  std::ofstream(std::filesystem::path(dataDir) / "starts.log", std::ios::app) << monotonicNs() << " " << ::getpid() << "\n";
  { // the settings as received, for tests that check flattening
    std::ofstream out(std::filesystem::path(dataDir) / "settings.txt");
    for (const auto& [k, v] : settings) out << k << "=" << v << "\n";
  }
  const std::string mode = settings.count("mode") ? settings["mode"] : "run";
  std::fprintf(stderr, "fake host %s pid %d mode %s\n", instance.c_str(), static_cast<int>(::getpid()), mode.c_str());

  if (settings["grandchild"] == "1") {
    const pid_t child = ::fork();
    if (child == 0) {
      for (;;) ::pause();
    }
    std::ofstream(std::filesystem::path(dataDir) / "grandchild.pid") << child << "\n";
  }
  if (mode == "crash") {
    std::this_thread::sleep_for(std::chrono::milliseconds(std::atoi(settings["crash_after_ms"].c_str())));
    std::fprintf(stderr, "fake host %s: crashing now\n", instance.c_str());
    ::signal(SIGSEGV, SIG_DFL);  // a sanitizer's handler would turn the signal into exit 1
    ::raise(SIGSEGV);
  }
  if (mode == "exit3") {
    std::fprintf(stderr, "plugin %s refused: ABI major 9 is not the host's 1\n", plugin.c_str());
    return 3;
  }
  if (mode == "exit4") {
    std::fprintf(stderr, "plugin create failed: setting 'database.path' is missing\n");
    return 4;
  }
  if (mode == "exit0") return 0;

  struct sigaction sa {};
  sa.sa_handler = settings["ignore_term"] == "1" ? SIG_IGN : onTerm;
  ::sigaction(SIGTERM, &sa, nullptr);
  ipcsync::ConnectOptions o;
  o.ns = ns;
  o.name = "plugin." + instance;
  if (!runtimeDir.empty()) o.runtimeDir = runtimeDir;
  auto client = ipcsync::Client::connect(o);
  if (!client) {
    std::fprintf(stderr, "fake host %s: cannot register: %s\n", instance.c_str(), client.error().message().c_str());
    return 1;
  }
  while (!g_stop) {
    auto m = (*client)->receive(std::chrono::milliseconds(100));
    if (!m && m.error().code != ipcsync::Errc::Timeout) {
      std::fprintf(stderr, "fake host %s: engine lost: %s\n", instance.c_str(), m.error().message().c_str());
      return 1;
    }
  }
  std::fprintf(stderr, "fake host %s: stopping on SIGTERM\n", instance.c_str());
  return 0;
}
