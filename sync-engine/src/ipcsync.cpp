// ipcsync: the command-line tool. `ipcsync status` shows what a namespace's registry holds;
// `ipcsync plugins [DIR]` lists the plugins in a directory and whether each loads.
#include <CLI/CLI.hpp>
#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "ipcsync/ipccore/admin_segment.h"
#include "ipcsync/sync/engine_config_file.h"
#include "ipcsync/sync/status_report.h"
#include "ipcsync/sync/plugin_describe.h"
#include "ipcsync/sync/topology_check.h"
#if IPCSYNC_HAVE_JOURNAL_CLI
#include "ipcsync/sync/journal_cli.h"
#endif

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

namespace fs = std::filesystem;

std::string text(const nlohmann::json& j, const char* key, const std::string& none = "-") {
  if (!j.contains(key) || j[key].is_null()) return none;
  return j[key].is_string() ? j[key].get<std::string>() : j[key].dump();
}

// The supervisor's plugins.json (instances and the sync engine) and, if the sync engine runs,
// its sync.json (per route and subscriber: lag and throughput), both beside the engine's socket.
// The journal's use, and every source it holds back, from sync.json.
void printJournal(const nlohmann::json& sync) {
  if (!sync.contains("journal") || !sync["journal"].is_object()) return;
  const auto& j = sync["journal"];
  const auto number = [](const nlohmann::json& o, const char* key) {
    return o.contains(key) && o[key].is_number_unsigned() ? o[key].get<std::uint64_t>() : 0;
  };
  const auto flag = [](const nlohmann::json& o, const char* key) { return o.contains(key) && o[key].is_boolean() && o[key].get<bool>(); };
  std::printf("\njournal %s: %s of %s, %llu change-sets, head %llu%s\n", text(j, "path").c_str(),
              human(number(j, "bytes")).c_str(), human(number(j, "max_bytes")).c_str(),
              static_cast<unsigned long long>(number(j, "entries")), static_cast<unsigned long long>(number(j, "head")),
              flag(j, "full")          ? "  FULL: sources are held back until a subscriber catches up"
              : flag(j, "nearly_full") ? "  NEARLY FULL: a subscriber is behind"
                                       : "");
  if (flag(j, "disk_fills_first"))
    std::printf("  DISK: only %s free where the journal is, less than it may still grow by: free space or lower "
                "journal.max_bytes\n",
                human(number(j, "disk_free_bytes")).c_str());
  if (!sync.contains("sources")) return;
  for (const auto& s : sync["sources"]) {
    if (!flag(s, "held_back") && number(s, "dropped_while_full") == 0 && number(s, "oversized_changeset") == 0) continue;
    std::printf("  source %s: %s, %s waiting in memory, %llu change-set(s) left with the source to send again",
                text(s, "instance").c_str(), flag(s, "held_back") ? "HELD BACK" : "no longer held back",
                human(number(s, "held_bytes")).c_str(), static_cast<unsigned long long>(number(s, "dropped_while_full")));
    if (const auto big = number(s, "oversized_changeset"))
      std::printf("; change-set %llu is larger than the whole journal: raise journal.max_bytes",
                  static_cast<unsigned long long>(big));
    std::printf("\n");
  }
}

void printSupervision(const fs::path& runtimeDir) {
  if (const auto doc = ipcsync::readStateFile(runtimeDir / "plugins.json")) {
    std::printf("\n%-16s %-10s %-11s %8s %8s  %s\n", "PLUGIN INSTANCE", "LIBRARY", "STATE", "PID", "RESTARTS", "MESSAGE");
    std::vector<nlohmann::json> rows;
    if (doc->contains("instances"))
      for (const auto& i : (*doc)["instances"]) rows.push_back(i);
    if (doc->contains("sync") && (*doc)["sync"].is_object()) {
      auto sync = (*doc)["sync"];
      sync["library"] = fs::path(text(sync, "library")).filename().string();
      sync["name"] = "(sync engine)";
      rows.push_back(sync);
    }
    for (const auto& i : rows)
      std::printf("%-16s %-10s %-11s %8s %8s  %s\n", text(i, "name").c_str(), text(i, "library").c_str(),
                  text(i, "state").c_str(), text(i, "pid").c_str(), text(i, "restarts").c_str(),
                  text(i, "message", "").c_str());
    if (doc->contains("available") && !(*doc)["available"].empty()) {
      std::string files;
      for (const auto& f : (*doc)["available"]) files += " " + f.get<std::string>();
      std::printf("available, not configured:%s\n", files.c_str());
    }
  }
  if (const auto sync = ipcsync::readStateFile(runtimeDir / "sync.json"); sync && sync->contains("routes")) {
    int width = 20;  // as wide as the longest route name (a bidirectional route's reverse is "<name>.reverse.<to>")
    for (const auto& r : (*sync)["routes"]) width = std::max(width, static_cast<int>(text(r, "route").size()));
    std::printf("\n%-*s %-12s %-12s %10s %9s %12s %10s %7s\n", width, "ROUTE", "FROM", "TO", "LAG", "LAG MS", "CHANGESETS/S",
                "ROWS/S", "ERRORS");
    // Rates with one decimal; everything else as the file has it.
    const auto rate = [](const nlohmann::json& r, const char* key) {
      if (!r.contains(key) || !r[key].is_number()) return text(r, key);
      char buf[32];
      std::snprintf(buf, sizeof buf, "%.1f", r[key].get<double>());
      return std::string(buf);
    };
    for (const auto& r : (*sync)["routes"]) {
      std::printf("%-*s %-12s %-12s %10s %9s %12s %10s %7s\n", width, text(r, "route").c_str(), text(r, "source").c_str(),
                  text(r, "subscriber").c_str(), text(r, "lag_changesets").c_str(), rate(r, "lag_ms").c_str(),
                  rate(r, "applied_per_s").c_str(), rate(r, "rows_per_s").c_str(), text(r, "errors").c_str());
      // What keeps a route from moving, on a line of its own under it.
      if (r.contains("stalled_ms") && r["stalled_ms"].is_number() && r["stalled_ms"].get<double>() > 0)
        std::printf("  STALLED: '%s' has not answered an Apply for %.1f s; its routes wait, the others carry on (is its "
                    "host stopped or hung? `kill -CONT` it, or restart it)\n",
                    text(r, "subscriber").c_str(), r["stalled_ms"].get<double>() / 1000.0);
      if (const auto problem = text(r, "problem"); !problem.empty() && problem != "-")
        std::printf("  CANNOT RUN: %s\n", problem.c_str());
    }
    printJournal(*sync);
  }
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
  if (records.empty()) {
    printSupervision(fs::path(engine.socketPath.c_str()).parent_path());
    return alive ? kOk : kNotRunning;
  }
  std::printf("%-4s %-24s %8s %6s %-11s %10s %10s %10s %6s %9s\n", "SLOT", "NAME", "PID", "UID", "STATE", "IN USE",
              "FREE", "LARGEST", "ARENAS", "UP");
  for (const auto& [slot, r] : records) {
    const double up = static_cast<double>(nowNs() - r.registeredAtNs) / 1e9;
    std::printf("%-4u %-24.*s %8d %6u %-11.*s %10s %10s %10s %3u/%-2u %8.1fs\n", slot, static_cast<int>(r.nameView().size()),
                r.nameView().data(), r.pid, r.uid, static_cast<int>(ipcsync::describe(r.state).size()),
                ipcsync::describe(r.state).data(), human(r.stats.bytesInUse).c_str(), human(r.stats.bytesFree).c_str(),
                human(r.stats.largestFreeRun).c_str(), r.stats.activeArenas, r.geometry.maxArenas, up);
  }
  printSupervision(fs::path(engine.socketPath.c_str()).parent_path());
  return alive ? kOk : kNotRunning;
}

// `ipcsync status --json`: one document, the same fields every time (docs/STATUS-JSON.md).
int statusJson(const std::string& ns) {
  auto report = ipcsync::statusReport(ns);
  if (!report) {
    std::fprintf(stderr, "ipcsync: %s\n", report.error().c_str());
    return kNotRunning;
  }
  std::printf("%s\n", report->dump(2).c_str());
  return (*report)["engine"]["running"].get<bool>() ? kOk : kNotRunning;
}

volatile std::sig_atomic_t g_interrupted = 0;

// `ipcsync status --watch [MS]`: the table (or, with --json, one document per line) again every
// MS until Ctrl-C; an engine that goes away is reported and waited for, not fatal.
int watch(const std::string& ns, bool json, std::chrono::milliseconds every) {
  std::signal(SIGINT, [](int) { g_interrupted = 1; });
  std::signal(SIGTERM, [](int) { g_interrupted = 1; });
  while (!g_interrupted) {
    if (json) {
      if (auto report = ipcsync::statusReport(ns)) std::printf("%s\n", report->dump().c_str());
      else std::printf("{\"namespace\": \"%s\", \"error\": %s}\n", ns.c_str(), nlohmann::json(report.error()).dump().c_str());
    } else {
      std::printf("\033[H\033[2J");  // home, clear screen
      std::time_t t = std::time(nullptr);
      char when[32];
      std::strftime(when, sizeof when, "%H:%M:%S", std::localtime(&t));
      std::printf("ipcsync status -n %s, every %lld ms, %s (Ctrl-C to stop)\n\n", ns.c_str(),
                  static_cast<long long>(every.count()), when);
      std::fflush(stdout);
      if (status(ns) != kOk) std::printf("\n(waiting for an engine to serve '%s')\n", ns.c_str());
    }
    std::fflush(stdout);
    for (auto slept = std::chrono::milliseconds(0); slept < every && !g_interrupted; slept += std::chrono::milliseconds(50))
      std::this_thread::sleep_for(std::min(std::chrono::milliseconds(50), every - slept));
  }
  return kOk;
}

// ---- ipcsync plugins -----------------------------------------------------------------------------

fs::path selfDir() {
  std::error_code ec;
  const auto exe = fs::read_symlink("/proc/self/exe", ec);
  return ec ? fs::path() : exe.parent_path();
}

// The build tree's plugins directory (<build>/plugins, beside <build>/sync-engine), else the
// installed one (<prefix>/lib/ipcsync/plugins beside <prefix>/bin).
fs::path defaultPluginsDir() {
  std::error_code ec;
  const auto here = selfDir();
  if (const auto build = here.parent_path() / "plugins"; fs::is_directory(build, ec)) return build;
  return here.parent_path() / "lib" / "ipcsync" / "plugins";
}

std::string firstLine(std::string s) {
  if (const auto nl = s.find('\n'); nl != std::string::npos) s.resize(nl);
  return s;
}

// The loader's message without the "ipcsync-plugin-host: plugin <path>: " that the FILE column says.
std::string refusal(const std::string& err, const fs::path& file) {
  std::string line = firstLine(err);
  for (const std::string& prefix : {std::string("ipcsync-plugin-host: "), "plugin " + file.string() + ": "})
    if (line.rfind(prefix, 0) == 0) line.erase(0, prefix.size());
  return line.empty() ? "refused (no message)" : line;
}

int plugins(const std::string& dirArg) {
  const fs::path dir = dirArg.empty() ? defaultPluginsDir() : fs::path(dirArg);
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) {
    std::fprintf(stderr, "ipcsync: plugins directory %s: no such directory; pass the directory that holds the plugin .so files\n",
                 dir.c_str());
    return kNotRunning;
  }
  const auto host = ipcsync::findPluginHost();
  if (host.empty()) {
    std::fprintf(stderr, "ipcsync: cannot find ipcsync-plugin-host next to %s or on PATH; install it beside ipcsync\n",
                 (selfDir() / "ipcsync").c_str());
    return kNotRunning;
  }
  std::vector<fs::path> files;
  for (const auto& entry : fs::directory_iterator(dir, ec))
    if (entry.path().extension() == ".so" && !entry.is_directory()) files.push_back(entry.path());
  std::sort(files.begin(), files.end());
  if (files.empty()) {
    std::printf("no plugin files (*.so) in %s\n", dir.c_str());
    return kOk;
  }
  struct Row {
    std::string file, name, version, tables, verdict;
  };
  std::vector<Row> rows;
  int loads = 0;
  for (const auto& f : files) {
    Row row{f.filename().string(), "-", "-", "-", ""};
    const ipcsync::DescribeRun d = ipcsync::runDescribe(host, f, std::chrono::seconds(10));
    if (d.code == 0) {
      try {
        const auto j = nlohmann::json::parse(d.out);
        row.name = j.at("name").get<std::string>();
        row.version = j.at("version").get<std::string>();
        std::string tables;
        for (const auto& t : j.at("tables")) {
          std::string flags = std::string(t.at("produces").get<bool>() ? "P" : "") + (t.at("accepts").get<bool>() ? "A" : "");
          tables += (tables.empty() ? "" : " ") + t.at("name").get<std::string>() + "(" + (flags.empty() ? "-" : flags) + ")";
        }
        row.tables = tables.empty() ? "(none)" : tables;
        row.verdict = "loads";
        ++loads;
      } catch (const std::exception& e) {
        row.verdict = std::string("the host printed an unreadable description (") + e.what() + ")";
      }
    } else if (d.code == 3) {
      row.verdict = refusal(d.err, f);
    } else if (d.code > 128) {
      row.verdict = "crashed while loading (signal " + std::to_string(d.code - 128) + ", " + strsignal(d.code - 128) + ")";
    } else if (d.code < 0) {
      row.verdict = d.err;
    } else {
      row.verdict = "the host failed (exit " + std::to_string(d.code) + "): " + firstLine(d.err);
    }
    rows.push_back(std::move(row));
  }
  std::size_t wf = 4, wn = 4, wv = 7, wt = 6;
  for (const auto& r : rows) {
    wf = std::max(wf, r.file.size());
    wn = std::max(wn, r.name.size());
    wv = std::max(wv, r.version.size());
    wt = std::max(wt, r.tables.size());
  }
  const auto line = [&](const std::string& a, const std::string& b, const std::string& c, const std::string& d,
                        const std::string& e) {
    std::printf("%-*s  %-*s  %-*s  %-*s  %s\n", static_cast<int>(wf), a.c_str(), static_cast<int>(wn), b.c_str(),
                static_cast<int>(wv), c.c_str(), static_cast<int>(wt), d.c_str(), e.c_str());
  };
  line("FILE", "NAME", "VERSION", "TABLES", "STATUS");
  for (const auto& r : rows) line(r.file, r.name, r.version, r.tables, r.verdict);
  std::printf("\n%zu plugin files, %d loads (in %s; P = produces, A = accepts)\n", rows.size(), loads, dir.c_str());
  return kOk;
}

// ---- ipcsync validate ----------------------------------------------------------------------------

enum ValidateExit : int { kValid = 0, kCouldNotRun = 1, kInvalid = 2 };

int validate(const std::string& file) {
  std::error_code ec;
  if (!fs::is_regular_file(file, ec)) {
    std::fprintf(stderr, "ipcsync: %s: no such file; pass the daemon's YAML configuration file\n", file.c_str());
    return kCouldNotRun;
  }
  ipcsync::DaemonConfig base;
  base.plugins.pluginsDir = ipcsync::defaultPluginsDir();
  auto config = ipcsync::loadDaemonConfig(file, base);
  if (!config) {
    std::fprintf(stderr, "%s\n%s: invalid (1 error)\n", config.error().message.c_str(), file.c_str());
    return kInvalid;
  }
  fs::path host = config->plugins.hostProgram;
  if (host.empty()) host = ipcsync::findPluginHost();
  if (host.empty() || ::access(host.c_str(), X_OK) != 0) {
    std::fprintf(stderr, "ipcsync: cannot find ipcsync-plugin-host (next to %s, %s or on PATH) to describe the plugins; "
                         "install it beside ipcsync or set plugin_host in the file\n",
                 (selfDir() / "ipcsync").c_str(), ipcsync::defaultHostProgram().c_str());
    return kCouldNotRun;
  }
  const auto report = ipcsync::validateTopology(*config, ipcsync::hostDescriber(host));
  if (report.ok()) {
    std::printf("%s: ok (%zu plugin%s, %zu route%s)\n", file.c_str(), report.plugins, report.plugins == 1 ? "" : "s",
                report.routes, report.routes == 1 ? "" : "s");
    return kValid;
  }
  for (const auto& e : report.errors) std::fprintf(stderr, "%s\n", e.c_str());
  std::fprintf(stderr, "%s: invalid (%zu error%s)\n", file.c_str(), report.errors.size(), report.errors.size() == 1 ? "" : "s");
  return kInvalid;
}

// ---- ipcsync deadletter / conflicts ----------------------------------------------------------------

#if IPCSYNC_HAVE_JOURNAL_CLI
// The journal of the configuration `file` (journal.path, else <state_dir>/journal.db), then the
// journal engineer's command on it. A configuration that does not load: exit 2.
int journalCommand(const std::string& file, bool deadletters, std::vector<std::string> words) {
  ipcsync::DaemonConfig base;
  base.plugins.pluginsDir = ipcsync::defaultPluginsDir();
  auto config = ipcsync::loadDaemonConfig(file, base);
  if (!config) {
    std::fprintf(stderr, "ipcsync: %s\n", config.error().message.c_str());
    return kUsageError;
  }
  if (words.empty()) words.push_back("list");
  const auto journal = ipcsync::effectiveJournalPath(*config);
  return deadletters ? ipcsync::journal_cli::deadletterCommand(journal, words, stdout, stderr)
                     : ipcsync::journal_cli::conflictsCommand(journal, words, stdout, stderr);
}
#endif

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"ipcsync: inspect an ipcsync namespace and its plugins.\nExit codes: 0 ok, 1 no engine serves the namespace "
               "(status) or the plugins directory is missing (plugins), 2 usage error."};
  app.require_subcommand(1);
  std::string ns = "default";
  auto* st = app.add_subcommand("status", "show the engine and the registry of a namespace (read-only)");
  st->add_option("-n,--namespace", ns, "namespace to inspect (default: 'default')");
  bool json = false;
  std::optional<unsigned> watchMs;
  st->add_flag("--json", json, "print one JSON document (fields: docs/STATUS-JSON.md) instead of tables");
  st->add_option("--watch", watchMs, "refresh every MS milliseconds (default 500) until Ctrl-C")
      ->expected(0, 1)
      ->default_str("500")
      ->check(CLI::Range(50u, 3'600'000u));
  std::string pluginsDir;
  auto* pl = app.add_subcommand("plugins", "list the plugins in a directory: name, version, tables, and whether each loads");
  pl->add_option("DIR", pluginsDir, "directory of plugin .so files (default: the build's or installed plugins directory)");
  std::string validateFile;
  auto* va = app.add_subcommand("validate",
                                "check a configuration file: its keys, its routes against the configured instances, and\n"
                                "every route against the plugins' own descriptions (tables, columns, primary keys, filters).\n"
                                "Exit codes: 0 valid, 1 could not run (no such file, no plugin host), 2 invalid");
  va->add_option("FILE", validateFile, "the daemon's YAML configuration file")->required();
#if IPCSYNC_HAVE_JOURNAL_CLI
  std::string journalConfig, take;
  bool all = false;
  std::vector<std::string> dlWords, cfWords;
  auto* dl = app.add_subcommand("deadletter",
                                "list the change-sets that failed max_retries times (list), or ask the sync engine to\n"
                                "try one again (replay ID); exit codes: 0 ok, 1 journal error, 2 usage, 3 no such id");
  dl->add_option("WORDS", dlWords, "list (default) | replay ID");
  dl->add_option("-c,--config", journalConfig, "the daemon's YAML file (its journal.path, else <state_dir>/journal.db)")
      ->required();
  auto* cf = app.add_subcommand("conflicts",
                                "list the conflicts parked by routes with conflict: park (list [--all]), or resolve one\n"
                                "(resolve ID --take source|target); exit codes as for deadletter");
  cf->add_option("WORDS", cfWords, "list (default) | resolve ID");
  cf->add_option("--take", take, "resolve: keep the source's or the target's row")->check(CLI::IsMember({"source", "target"}));
  cf->add_flag("--all", all, "list: resolved conflicts too");
  cf->add_option("-c,--config", journalConfig, "the daemon's YAML file (its journal.path, else <state_dir>/journal.db)")
      ->required();
#endif
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);
    return rc == 0 ? kOk : kUsageError;
  }
  if (st->parsed()) {
    if (st->count("--watch") > 0 && !watchMs) watchMs = 500;
    return watchMs ? watch(ns, json, std::chrono::milliseconds(*watchMs)) : json ? statusJson(ns) : status(ns);
  }
  if (pl->parsed()) return plugins(pluginsDir);
  if (va->parsed()) return validate(validateFile);
#if IPCSYNC_HAVE_JOURNAL_CLI
  if (dl->parsed()) return journalCommand(journalConfig, true, dlWords);
  if (cf->parsed()) {
    if (!take.empty()) cfWords.insert(cfWords.end(), {"--take", take});
    if (all) cfWords.push_back("--all");
    return journalCommand(journalConfig, false, cfWords);
  }
#endif
  return kUsageError;
}
