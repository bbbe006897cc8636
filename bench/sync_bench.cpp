// sync_bench: rows per second end to end (crm -> mining through ipcsyncd) and commit-to-applied
// latency, next to the floor measured in the same run: one process applying the same changesets
// straight into a target database with sqlite3changeset_apply (no IPC, no journal).
//
//   build/release/bench/sync_bench [--rows N] [--batch ROWS_PER_TRANSACTION] [--rate ROWS_PER_S]
//                                  [--latency-seconds S] [--durability full|normal|off]
//
// The end-to-end run writes orders into the CRM file with plain SQL (as the call-centre
// simulator does), and watches mining's own copy of the orders table fill up.
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

// The floor: capture the same transactions with the session extension, then apply every
// changeset to a fresh target in one process. Returns rows per second of the apply alone.
double floorRowsPerSecond(const fs::path& dir, int rows, int batch, const char* synchronous) {
  Db source(dir / "floor-source.db");
  source.exec("PRAGMA journal_mode=WAL;");
  source.exec(kOrdersSchema);
  std::vector<std::vector<unsigned char>> changesets;
  for (int done = 0; done < rows; done += batch) {
    sqlite3_session* session = nullptr;
    sqlite3session_create(source.db, "main", &session);
    sqlite3session_attach(session, "orders");
    insertOrders(source, done + 1, std::min(batch, rows - done));
    int n = 0;
    void* p = nullptr;
    sqlite3session_changeset(session, &n, &p);
    changesets.emplace_back(static_cast<unsigned char*>(p), static_cast<unsigned char*>(p) + n);
    sqlite3_free(p);
    sqlite3session_delete(session);
  }
  Db target(dir / "floor-target.db");
  target.exec("PRAGMA journal_mode=WAL;");
  target.exec(std::string("PRAGMA synchronous=") + synchronous + ";");
  target.exec(kOrdersSchema);
  const auto t0 = Clock::now();
  for (auto& c : changesets) {
    target.exec("BEGIN;");
    const int rc = sqlite3changeset_apply(
        target.db, static_cast<int>(c.size()), c.data(), nullptr,
        [](void*, int, sqlite3_changeset_iter*) { return SQLITE_CHANGESET_REPLACE; }, nullptr);
    if (rc != SQLITE_OK) throw std::runtime_error("floor apply failed");
    target.exec("COMMIT;");
  }
  const double s = std::chrono::duration<double>(Clock::now() - t0).count();
  if (target.count("SELECT count(*) FROM orders") != rows) throw std::runtime_error("floor lost rows");
  return rows / s;
}

struct Daemon {
  pid_t pid = -1;
  ~Daemon() {
    if (pid > 0) {
      ::kill(pid, SIGTERM);
      ::waitpid(pid, nullptr, 0);
    }
  }
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

int run(int argc, char** argv) {
  int rows = 100000, batch = 100, rate = 10000, latencySeconds = 5;
  std::string durability = "normal";
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i];
    if (a == "--rows") rows = std::atoi(argv[i + 1]);
    else if (a == "--batch") batch = std::atoi(argv[i + 1]);
    else if (a == "--rate") rate = std::atoi(argv[i + 1]);
    else if (a == "--latency-seconds") latencySeconds = std::atoi(argv[i + 1]);
    else if (a == "--durability") durability = argv[i + 1];
    else {
      std::fprintf(stderr, "sync_bench: unknown option %s\n", a.c_str());
      return 2;
    }
  }
  if (rows <= 0 || batch <= 0 || rate <= 0 || (durability != "full" && durability != "normal" && durability != "off")) {
    std::fprintf(stderr, "sync_bench: --rows, --batch, --rate must be positive; --durability full|normal|off\n");
    return 2;
  }
  char tmpl[] = "/tmp/ipcsync-sync-bench-XXXXXX";
  const fs::path dir = ::mkdtemp(tmpl);
  struct Cleanup {
    fs::path dir;
    ~Cleanup() { fs::remove_all(dir); }
  } cleanup{dir};

  std::printf("sync: %d orders in transactions of %d rows, durability %s\n\n", rows, batch, durability.c_str());
  const double floor = floorRowsPerSecond(dir, rows, batch, durability.c_str());
  std::printf("  floor (sqlite3changeset_apply, one process)   %12.0f rows/s\n", floor);

  const std::string ns = "bench-sync-" + std::to_string(::getpid());
  const fs::path config = dir / "bench.yaml";
  std::ofstream(config) << "namespace: " << ns << "\n"
                        << "plugins:\n"
                        << "  - name: crm\n    library: crm.so\n    settings: {database: " << (dir / "crm.db").string() << "}\n"
                        << "  - name: mining\n    library: mining.so\n    settings: {database: " << (dir / "mining.db").string()
                        << "}\n"
                        << "routes:\n  - name: sales\n    from: crm\n    to: mining\n    tables: [accounts, orders]\n"
                        << "journal:\n  path: " << (dir / "journal.db").string() << "\n  durability: " << durability << "\n";
  Daemon daemon;
  daemon.pid = ::fork();
  if (daemon.pid == 0) {
    ::execl(IPCSYNC_BENCH_IPCSYNCD, "ipcsyncd", "--config", config.c_str(), "--runtime-dir", dir.c_str(), "--log-level",
            "warn", nullptr);
    ::_exit(127);
  }
  auto registered = [&](const std::string& name) {
    auto admin = ipcsync::AdminSegment::open(ns);
    if (!admin) return false;
    for (const auto& [slot, r] : (*admin)->snapshot())
      if (r.nameView() == name && r.state == ipcsync::RecordState::Registered) return true;
    return false;
  };
  // The hosts register before their plugin creates its tables: wait for the tables too.
  auto hasTable = [&](const fs::path& file, const char* table) {
    if (!fs::exists(file)) return false;
    Db db(file);
    return db.count(std::string("SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = '") + table + "'") == 1;
  };
  if (!waitUntil([&] { return registered("plugin.crm") && registered("plugin.mining") && registered("sync") &&
                              hasTable(dir / "crm.db", "orders") && hasTable(dir / "mining.db", "orders"); },
                 std::chrono::seconds(20))) {
    std::fprintf(stderr, "sync_bench: the daemon did not bring up crm, mining and the sync engine within 20 s\n");
    return 1;
  }
  Db crm(dir / "crm.db");
  Db mining(dir / "mining.db");
  auto applied = [&] { return mining.count("SELECT count(*) FROM orders"); };

  // Throughput: write everything as fast as SQLite takes it; time until mining holds it all.
  const auto t0 = Clock::now();
  for (int done = 0; done < rows; done += batch) insertOrders(crm, done + 1, std::min(batch, rows - done));
  const double writeSeconds = std::chrono::duration<double>(Clock::now() - t0).count();
  if (!waitUntil([&] { return applied() >= rows; }, std::chrono::seconds(300))) {
    std::fprintf(stderr, "sync_bench: mining holds %lld of %d orders after 300 s\n", static_cast<long long>(applied()), rows);
    return 1;
  }
  const double e2e = rows / std::chrono::duration<double>(Clock::now() - t0).count();
  std::printf("  ipcsync crm -> mining, end to end             %12.0f rows/s   ours/floor %.2f  (writing took %.2f s)\n",
              e2e, e2e / floor, writeSeconds);

  // Latency at a steady rate: one transaction every period; each is applied when mining's count
  // reaches its last row.
  const int perTx = std::max(1, rate / 100);  // 100 transactions per second
  const auto period = std::chrono::microseconds(1'000'000 * perTx / rate);
  std::vector<double> latencyMs;
  std::int64_t next = rows + 1;
  const auto end = Clock::now() + std::chrono::seconds(latencySeconds);
  auto due = Clock::now();
  while (Clock::now() < end) {
    insertOrders(crm, next, perTx);
    const auto committed = Clock::now();
    next += perTx;
    const std::int64_t want = next - 1;
    if (!waitUntil([&] { return applied() >= want; }, std::chrono::seconds(10), std::chrono::microseconds(100))) {
      std::fprintf(stderr, "sync_bench: a transaction was not applied within 10 s\n");
      return 1;
    }
    latencyMs.push_back(std::chrono::duration<double, std::milli>(Clock::now() - committed).count());
    due += period;
    std::this_thread::sleep_until(due);
  }
  std::printf("  commit-to-applied at %d rows/s (%d rows per transaction): median %.2f ms, p99 %.2f ms, max %.2f ms (%zu transactions)\n",
              rate, perTx, quantile(latencyMs, 0.5), quantile(latencyMs, 0.99), quantile(latencyMs, 1.0), latencyMs.size());
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
