// ipcsync: the command-line tool. `ipcsync status` shows what a namespace's registry holds.
#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <string>

#include "ipcsync/ipccore/admin_segment.h"

namespace {

enum ExitCode : int { kOk = 0, kNotRunning = 1, kUsageError = 2 };

std::string human(std::uint64_t b) {
  char buf[32];
  if (b >= (1ULL << 20)) std::snprintf(buf, sizeof buf, "%.1f MiB", static_cast<double>(b) / (1 << 20));
  else if (b >= 1024) std::snprintf(buf, sizeof buf, "%.1f KiB", static_cast<double>(b) / 1024);
  else std::snprintf(buf, sizeof buf, "%llu B", static_cast<unsigned long long>(b));
  return buf;
}

std::uint64_t nowNs() {
  return static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch()).count());
}

int status(const std::string& ns) {
  auto admin = ipcsync::AdminSegment::open(ns);
  if (!admin) {
    std::fprintf(stderr, "ipcsync: %s\n", admin.error().message().c_str());
    return kNotRunning;
  }
  const auto& a = **admin;
  const auto engine = a.engine();
  const bool alive = a.engineAlive();
  const double beatAge = static_cast<double>(nowNs() - a.heartbeatNs()) / 1e6;
  std::printf("namespace %s: engine pid %d %s, socket %s, last tick %.0f ms ago\n", ns.c_str(), engine.pid,
              alive ? "running" : "NOT RUNNING (stale segment)", engine.socketPath.c_str(), beatAge);
  const auto records = a.snapshot();
  std::printf("%zu of %u registry slots in use\n", records.size(), a.capacity());
  if (const auto caches = a.caches(); !caches.empty()) {
    std::printf("%-24s %9s %10s %10s %8s\n", "CACHED TOPIC", "HELD", "BYTES", "OLDEST", "HITS");
    for (const auto& c : caches)
      std::printf("%-24.*s %4u/%-4u %10s %9.1fs %8llu\n", static_cast<int>(c.topicView().size()), c.topicView().data(),
                  c.entries, c.depth, human(c.bytes).c_str(),
                  c.oldestNs ? static_cast<double>(nowNs() - c.oldestNs) / 1e9 : 0.0,
                  static_cast<unsigned long long>(c.hits));
    std::printf("\n");
  }
  if (records.empty()) return alive ? kOk : kNotRunning;
  std::printf("%-4s %-24s %8s %6s %-11s %10s %10s %10s %6s %9s\n", "SLOT", "NAME", "PID", "UID", "STATE", "IN USE",
              "FREE", "LARGEST", "ARENAS", "UP");
  for (const auto& [slot, r] : records) {
    const double up = static_cast<double>(nowNs() - r.registeredAtNs) / 1e9;
    std::printf("%-4u %-24.*s %8d %6u %-11.*s %10s %10s %10s %3u/%-2u %8.1fs\n", slot, static_cast<int>(r.nameView().size()),
                r.nameView().data(), r.pid, r.uid, static_cast<int>(ipcsync::describe(r.state).size()),
                ipcsync::describe(r.state).data(), human(r.stats.bytesInUse).c_str(), human(r.stats.bytesFree).c_str(),
                human(r.stats.largestFreeRun).c_str(), r.stats.activeArenas, r.geometry.maxArenas, up);
  }
  return alive ? kOk : kNotRunning;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"ipcsync: inspect an ipcsync namespace.\nExit codes: 0 ok, 1 no engine serves the namespace, 2 usage error."};
  app.require_subcommand(1);
  std::string ns = "default";
  auto* st = app.add_subcommand("status", "show the engine and the registry of a namespace (read-only)");
  st->add_option("-n,--namespace", ns, "namespace to inspect (default: 'default')");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);
    return rc == 0 ? kOk : kUsageError;
  }
  if (st->parsed()) return status(ns);
  return kUsageError;
}
