// sync_bench: rows per second through ipcsyncd (crm -> mining, and crm -> a crm replica) and
// commit-to-applied latency, next to the floor measured in the same run: one process applying
// the same changesets straight into a target database with sqlite3changeset_apply (no IPC, no
// journal), measured again just before each drain; every ratio uses the best floor so far.
//
//   build/release/bench/sync_bench [--rows N] [--batch ROWS_PER_TRANSACTION] [--rate ROWS_PER_S]
//                                  [--latency-seconds S] [--durability full|normal|off]
//                                  [--group-commit-ms MS] [--route mining|replica|both]
//                                  [--crm-wake on|off]
//
// Per route, three figures:
//  - end to end, writer included: orders written into the CRM file with plain SQL (as the
//    call-centre simulator does, crm's capture triggers included), timed from the first write
//    until the target holds the last row. It is bounded by the writer when the writer is slower
//    than the pipeline; the time writing took is printed beside it.
//  - drain of a journaled backlog: the pipeline's own throughput, with the writer out of the way.
//    The target's plugin host is stopped (SIGSTOP) while the orders are written; crm captures them
//    and the sync engine journals them meanwhile (the bench waits until crm's change log is empty:
//    everything is journaled and acknowledged). Then the host is continued (SIGCONT) and the clock
//    runs from that moment until the target holds the last row: journal read, transform, IPC,
//    apply and commit at the target, which is what the floor does minus the IPC and the journal.
//    This is a subscriber catching up after an outage; one that was stopped is the only way to
//    separate delivery from capture without changing either.
//  - commit-to-applied latency at a steady rate: one transaction every 10 ms, each timed from its
//    COMMIT until the target holds its last row.
// The mining route does more per row than the floor (its own copy of the row plus four aggregate
// tables); the crm replica applies with sqlite3changeset_apply like the floor (plus its
// bookkeeping), so its ratio compares like with like.
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "ipcsync/ipccore/admin_segment.h"

namespace {

using Clock = std::chrono::steady_clock;
namespace fs = std::filesystem;

constexpr const char* kOrdersSchema =
    "CREATE TABLE IF NOT EXISTS orders (id INTEGER PRIMARY KEY, account_id INTEGER NOT NULL, product TEXT NOT NULL,"
    " quantity INTEGER NOT NULL, unit_price_cents INTEGER NOT NULL, ordered_at INTEGER NOT NULL,"
    " updated_at INTEGER NOT NULL)";

struct Db {
  sqlite3* db = nullptr;
  explicit Db(const fs::path& path) {
    if (sqlite3_open(path.c_str(), &db) != SQLITE_OK) throw std::runtime_error("open " + path.string());
    sqlite3_busy_timeout(db, 5000);
  }
  ~Db() { sqlite3_close(db); }
  Db(const Db&) = delete;
  Db& operator=(const Db&) = delete;
  void exec(const std::string& sql) const {
    char* error = nullptr;
    if (sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &error) != SQLITE_OK) {
      std::string message = error ? error : "?";
      sqlite3_free(error);
      throw std::runtime_error(sql.substr(0, 60) + ": " + message);
    }
  }
  std::int64_t count(const std::string& sql) const {
    sqlite3_stmt* st = nullptr;
    std::int64_t n = -1;
    if (sqlite3_prepare_v2(db, sql.c_str(), -1, &st, nullptr) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
      n = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return n;
  }
};

// "Does the target hold order `id`?" as one index lookup, prepared once: the bench polls it every
// 100 us while measuring latency, so it must cost next to nothing (a count(*) over the table
// would scan it and compete with the pipeline for the CPU).
class HasOrder {
 public:
  explicit HasOrder(const Db& db) {
    if (sqlite3_prepare_v2(db.db, "SELECT EXISTS(SELECT 1 FROM orders WHERE id = ?1)", -1, &m_stmt, nullptr) != SQLITE_OK)
      throw std::runtime_error("prepare: " + std::string(sqlite3_errmsg(db.db)));
  }
  ~HasOrder() { sqlite3_finalize(m_stmt); }
  HasOrder(const HasOrder&) = delete;
  HasOrder& operator=(const HasOrder&) = delete;
  bool operator()(std::int64_t id) const {
    sqlite3_bind_int64(m_stmt, 1, id);
    const bool found = sqlite3_step(m_stmt) == SQLITE_ROW && sqlite3_column_int64(m_stmt, 0) != 0;
    sqlite3_reset(m_stmt);
    return found;
  }

 private:
  sqlite3_stmt* m_stmt = nullptr;
};

std::int64_t nowUs() {
  return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// One transaction of `rows` new orders, ids from `first`.
void insertOrders(const Db& db, std::int64_t first, int rows) {
  std::string sql = "BEGIN;";
  const std::int64_t t = nowUs();
  for (int i = 0; i < rows; ++i) {
    const std::int64_t id = first + i;
    sql += "INSERT INTO orders VALUES(" + std::to_string(id) + "," + std::to_string(1 + id % 100) + ",'product-" +
           std::to_string(id % 17) + "'," + std::to_string(1 + id % 5) + "," + std::to_string(100 + id % 900) + "," +
           std::to_string(t) + "," + std::to_string(t) + ");";
  }
  sql += "COMMIT;";
  db.exec(sql);
}

void insertAll(const Db& db, std::int64_t first, int rows, int batch) {
  for (int done = 0; done < rows; done += batch) insertOrders(db, first + done, std::min(batch, rows - done));
}

// The floor: the same transactions captured with the session extension, then every changeset
// applied to a fresh target in one process; rows per second of the apply alone. It is measured
// again before each drain (the machine's load moves), and ratios use the best figure so far, so
// they never flatter ours.
class Floor {
 public:
  Floor(const fs::path& dir, int rows, int batch, std::string synchronous)
      : m_dir(dir), m_rows(rows), m_synchronous(std::move(synchronous)) {
    Db source(dir / "floor-source.db");
    source.exec("PRAGMA journal_mode=WAL;");
    source.exec(kOrdersSchema);
    for (int done = 0; done < rows; done += batch) {
      sqlite3_session* session = nullptr;
      sqlite3session_create(source.db, "main", &session);
      sqlite3session_attach(session, "orders");
      insertOrders(source, done + 1, std::min(batch, rows - done));
      int n = 0;
      void* p = nullptr;
      sqlite3session_changeset(session, &n, &p);
      m_changesets.emplace_back(static_cast<unsigned char*>(p), static_cast<unsigned char*>(p) + n);
      sqlite3_free(p);
      sqlite3session_delete(session);
    }
  }
  double measure() {
    const fs::path file = m_dir / ("floor-target-" + std::to_string(m_runs++) + ".db");
    double rate = 0;
    {
      Db target(file);
      target.exec("PRAGMA journal_mode=WAL;");
      target.exec("PRAGMA synchronous=" + m_synchronous + ";");
      target.exec(kOrdersSchema);
      const auto t0 = Clock::now();
      for (auto& c : m_changesets) {
        target.exec("BEGIN;");
        const int rc = sqlite3changeset_apply(
            target.db, static_cast<int>(c.size()), c.data(), nullptr,
            [](void*, int, sqlite3_changeset_iter*) { return SQLITE_CHANGESET_REPLACE; }, nullptr);
        if (rc != SQLITE_OK) throw std::runtime_error("floor apply failed");
        target.exec("COMMIT;");
      }
      rate = m_rows / std::chrono::duration<double>(Clock::now() - t0).count();
      if (target.count("SELECT count(*) FROM orders") != m_rows) throw std::runtime_error("floor lost rows");
    }
    for (const char* suffix : {"", "-wal", "-shm"}) fs::remove(file.string() + suffix);
    m_best = std::max(m_best, rate);
    return rate;
  }
  double best() const { return m_best; }

 private:
  fs::path m_dir;
  int m_rows;
  std::string m_synchronous;
  std::vector<std::vector<unsigned char>> m_changesets;
  int m_runs = 0;
  double m_best = 0;
};

bool waitUntil(const std::function<bool()>& ok, std::chrono::milliseconds timeout,
               std::chrono::microseconds pollEvery = std::chrono::milliseconds(2)) {
  const auto end = Clock::now() + timeout;
  while (Clock::now() < end) {
    if (ok()) return true;
    std::this_thread::sleep_for(pollEvery);
  }
  return ok();
}

double quantile(std::vector<double> v, double q) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<std::size_t>(q * static_cast<double>(v.size())))];
}

double secondsSince(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

struct Options {
  int rows = 100000, batch = 100, rate = 10000, latencySeconds = 5;
  std::string durability = "normal";
  std::optional<int> groupCommitMs;
  std::string route = "both";
  std::string crmWake = "on";  // crm's wake_on_commit: off polls only every --poll-ms (before ABI 1.1)
};

// A route to measure: crm writes, `target` (an instance of `library`) receives.
struct Route {
  std::string title, target, library;
};

// ipcsyncd for one route; SIGTERM and wait on the way out (stopped hosts are continued first).
class Daemon {
 public:
  Daemon(const fs::path& dir, const std::string& ns, const Options& o, const Route& route) : m_ns(ns) {
    const fs::path config = dir / (route.target + ".yaml");
    std::ofstream out(config);
    out << "namespace: " << ns << "\n"
        << "plugins:\n"
        << "  - name: crm\n    library: crm.so\n    settings: {database: " << (dir / "crm.db").string()
        << ", wake_on_commit: " << (o.crmWake == "on" ? "true" : "false") << "}\n"
        << "  - name: " << route.target << "\n    library: " << route.library
        << "\n    settings: {database: " << (dir / (route.target + ".db")).string() << "}\n"
        << "routes:\n  - name: bench\n    from: crm\n    to: " << route.target << "\n    tables: [orders]\n"
        << "journal:\n  path: " << (dir / (route.target + "-journal.db")).string() << "\n  durability: " << o.durability
        << "\n";
    if (o.groupCommitMs) out << "  group_commit_ms: " << *o.groupCommitMs << "\n";
    out.close();
    m_pid = ::fork();
    if (m_pid == 0) {
      ::execl(IPCSYNC_BENCH_IPCSYNCD, "ipcsyncd", "--config", config.c_str(), "--runtime-dir", dir.c_str(),
              "--log-level", "warn", nullptr);
      ::_exit(127);
    }
  }
  ~Daemon() {
    for (pid_t p : m_stopped) ::kill(p, SIGCONT);
    if (m_pid > 0) {
      ::kill(m_pid, SIGTERM);
      ::waitpid(m_pid, nullptr, 0);
    }
  }
  Daemon(const Daemon&) = delete;
  Daemon& operator=(const Daemon&) = delete;

  // The pid of the registered process `name`, if it is registered.
  std::optional<pid_t> pidOf(const std::string& name) const {
    auto admin = ipcsync::AdminSegment::open(m_ns);
    if (!admin) return std::nullopt;
    for (const auto& [slot, r] : (*admin)->snapshot())
      if (r.nameView() == name && r.state == ipcsync::RecordState::Registered) return r.pid;
    return std::nullopt;
  }
  void stop(pid_t pid) {
    ::kill(pid, SIGSTOP);
    m_stopped.push_back(pid);
  }
  void resume(pid_t pid) {
    ::kill(pid, SIGCONT);
    std::erase(m_stopped, pid);
  }

 private:
  std::string m_ns;
  pid_t m_pid = -1;
  std::vector<pid_t> m_stopped;
};

bool hasTable(const fs::path& file, const char* table) {
  if (!fs::exists(file)) return false;
  Db db(file);
  return db.count(std::string("SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = '") + table + "'") == 1;
}

struct Figures {
  double e2e = 0, writeSeconds = 0, drain = 0, floorBeforeDrain = 0, backlogWriteSeconds = 0, journaledAfter = 0;
  std::string latency;
};

// Runs the three measurements for one route into `out`; returns 0, or 1 after printing why it
// failed. The figures are printed at the end, against the best floor of the whole run.
int measure(const fs::path& base, const Options& o, const Route& route, Floor& floors, Figures& out) {
  const fs::path dir = base / route.target;
  fs::create_directories(dir);
  const std::string ns = "bench-sync-" + route.target + "-" + std::to_string(::getpid());
  Daemon daemon(dir, ns, o, route);
  if (!waitUntil([&] { return daemon.pidOf("plugin.crm") && daemon.pidOf("plugin." + route.target) &&
                              daemon.pidOf("sync") && hasTable(dir / "crm.db", "orders") &&
                              hasTable(dir / (route.target + ".db"), "orders"); },
                 std::chrono::seconds(20))) {
    std::fprintf(stderr, "sync_bench: the daemon did not bring up crm, %s and the sync engine within 20 s\n",
                 route.target.c_str());
    return 1;
  }
  Db crm(dir / "crm.db");
  Db target(dir / (route.target + ".db"));
  HasOrder applied(target);
  const auto fail = [&](const char* what, std::int64_t id) {
    std::fprintf(stderr, "sync_bench: %s: %s holds %lld orders, not yet order %lld\n", what, route.target.c_str(),
                 static_cast<long long>(target.count("SELECT count(*) FROM orders")), static_cast<long long>(id));
    return 1;
  };

  // End to end: write everything as fast as SQLite takes it; time until the target holds it all.
  // Change-sets are applied whole and in order, so the last order there means all are.
  std::int64_t next = 1;
  auto t0 = Clock::now();
  insertAll(crm, next, o.rows, o.batch);
  const double writeSeconds = secondsSince(t0);
  next += o.rows;
  if (!waitUntil([&] { return applied(next - 1); }, std::chrono::seconds(300))) return fail("end to end", next - 1);
  out.e2e = o.rows / secondsSince(t0);
  out.writeSeconds = writeSeconds;

  // Drain: the target's host stopped while the backlog is written and journaled; then timed from
  // its SIGCONT until the target holds the last row.
  const auto targetPid = daemon.pidOf("plugin." + route.target);
  if (!targetPid) {
    std::fprintf(stderr, "sync_bench: plugin.%s is no longer registered\n", route.target.c_str());
    return 1;
  }
  daemon.stop(*targetPid);
  t0 = Clock::now();
  insertAll(crm, next, o.rows, o.batch);
  const double backlogWriteSeconds = secondsSince(t0);
  next += o.rows;
  const auto written = Clock::now();
  if (!waitUntil([&] { return crm.count("SELECT EXISTS(SELECT 1 FROM _ipcsync_changes)") == 0; }, std::chrono::seconds(300))) {
    std::fprintf(stderr, "sync_bench: crm's change log is not empty 300 s after the backlog was written\n");
    return 1;
  }
  const double journaledAfter = secondsSince(written);
  out.floorBeforeDrain = floors.measure();
  daemon.resume(*targetPid);
  t0 = Clock::now();
  if (!waitUntil([&] { return applied(next - 1); }, std::chrono::seconds(300))) return fail("drain", next - 1);
  out.drain = o.rows / secondsSince(t0);
  out.backlogWriteSeconds = backlogWriteSeconds;
  out.journaledAfter = journaledAfter;

  // Latency at a steady rate: one transaction every period; each is applied when the target
  // holds its last row.
  const int perTx = std::max(1, o.rate / 100);  // 100 transactions per second
  const auto period = std::chrono::microseconds(1'000'000LL * perTx / o.rate);
  std::vector<double> latencyMs;
  const auto end = Clock::now() + std::chrono::seconds(o.latencySeconds);
  auto due = Clock::now();
  while (Clock::now() < end) {
    insertOrders(crm, next, perTx);
    const auto committed = Clock::now();
    next += perTx;
    const std::int64_t want = next - 1;
    if (!waitUntil([&] { return applied(want); }, std::chrono::seconds(10), std::chrono::microseconds(100)))
      return fail("a transaction was not applied within 10 s", want);
    latencyMs.push_back(std::chrono::duration<double, std::milli>(Clock::now() - committed).count());
    due += period;
    std::this_thread::sleep_until(due);
  }
  char line[256];
  std::snprintf(line, sizeof line,
                "commit-to-applied at %d rows/s (%d rows per transaction): median %.2f ms, p99 %.2f ms, max %.2f ms "
                "(%zu transactions)",
                o.rate, perTx, quantile(latencyMs, 0.5), quantile(latencyMs, 0.99), quantile(latencyMs, 1.0),
                latencyMs.size());
  out.latency = line;
  if (const auto n = target.count("SELECT count(*) FROM orders"); n != next - 1) {
    std::fprintf(stderr, "sync_bench: %s holds %lld orders, expected %lld\n", route.target.c_str(),
                 static_cast<long long>(n), static_cast<long long>(next - 1));
    return 1;
  }
  return 0;
}

int run(int argc, char** argv) {
  Options o;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i];
    if (a == "--rows") o.rows = std::atoi(argv[i + 1]);
    else if (a == "--batch") o.batch = std::atoi(argv[i + 1]);
    else if (a == "--rate") o.rate = std::atoi(argv[i + 1]);
    else if (a == "--latency-seconds") o.latencySeconds = std::atoi(argv[i + 1]);
    else if (a == "--durability") o.durability = argv[i + 1];
    else if (a == "--group-commit-ms") o.groupCommitMs = std::atoi(argv[i + 1]);
    else if (a == "--route") o.route = argv[i + 1];
    else if (a == "--crm-wake") o.crmWake = argv[i + 1];
    else {
      std::fprintf(stderr, "sync_bench: unknown option %s (see the comment at the top of bench/sync_bench.cpp)\n",
                   a.c_str());
      return 2;
    }
  }
  if (argc % 2 == 0) {
    std::fprintf(stderr, "sync_bench: option %s needs a value\n", argv[argc - 1]);
    return 2;
  }
  if (o.rows <= 0 || o.batch <= 0 || o.rate <= 0 || o.latencySeconds < 0 || (o.groupCommitMs && *o.groupCommitMs < 0) ||
      (o.durability != "full" && o.durability != "normal" && o.durability != "off") ||
      (o.route != "mining" && o.route != "replica" && o.route != "both") || (o.crmWake != "on" && o.crmWake != "off")) {
    std::fprintf(stderr, "sync_bench: --rows, --batch, --rate must be positive, --group-commit-ms at least 0; "
                         "--durability full|normal|off; --route mining|replica|both; --crm-wake on|off\n");
    return 2;
  }
  char tmpl[] = "/tmp/ipcsync-sync-bench-XXXXXX";
  const fs::path dir = ::mkdtemp(tmpl);
  struct Cleanup {
    fs::path dir;
    ~Cleanup() { fs::remove_all(dir); }
  } cleanup{dir};

  std::printf("sync: %d orders in transactions of %d rows, durability %s, group commit %s\n\n", o.rows, o.batch,
              o.durability.c_str(),
              o.groupCommitMs ? (std::to_string(*o.groupCommitMs) + " ms").c_str() : "as configured by default");
  Floor floor(dir, o.rows, o.batch, o.durability);
  const double firstFloor = floor.measure();
  std::vector<Route> routes;
  if (o.route != "replica") routes.push_back({"crm -> mining (its copy of the row and four aggregates)", "mining", "mining.so"});
  if (o.route != "mining") routes.push_back({"crm -> crm replica (sqlite3changeset_apply, like the floor)", "replica", "crm.so"});
  std::vector<Figures> figures(routes.size());
  for (std::size_t i = 0; i < routes.size(); ++i)
    if (const int rc = measure(dir, o, routes[i], floor, figures[i]); rc != 0) return rc;
  const double best = floor.best();
  std::printf("  floor (sqlite3changeset_apply, one process)   %12.0f rows/s   (best of %zu: %.0f first",
              best, routes.size() + 1, firstFloor);
  for (const auto& f : figures) std::printf(", %.0f", f.floorBeforeDrain);
  std::printf(")\n");
  for (std::size_t i = 0; i < routes.size(); ++i) {
    const Figures& f = figures[i];
    std::printf("  %s\n", routes[i].title.c_str());
    std::printf("    end to end, writer included            %12.0f rows/s   ours/floor %.2f  (writing took %.2f s)\n", f.e2e,
                f.e2e / best, f.writeSeconds);
    std::printf("    drain of a journaled backlog           %12.0f rows/s   ours/floor %.2f  (the floor just before it: "
                "%.2f; backlog written in %.2f s, all journaled %.3f s later)\n",
                f.drain, f.drain / best, f.drain / f.floorBeforeDrain, f.backlogWriteSeconds, f.journaledAfter);
    std::printf("    %s\n", f.latency.c_str());
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "sync_bench: %s\n", e.what());
    return 1;
  }
}
