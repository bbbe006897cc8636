#include "sync_fixture.h"

#include <fcntl.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>
#include <thread>

namespace ipcsync::sync::test {

namespace {
int decode(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}
}  // namespace

Process::Process(const std::vector<std::string>& argv, const std::filesystem::path& log) {
  m_pid = ::fork();
  if (m_pid == 0) {
    const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd >= 0) {
      ::dup2(fd, STDERR_FILENO);
      ::dup2(fd, STDOUT_FILENO);
    }
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    ::execv(args[0], args.data());
    ::_exit(127);
  }
}

Process::~Process() {
  if (running()) signalAndWait(SIGKILL);
}

bool Process::running() {
  if (m_pid <= 0 || m_code >= 0) return false;
  int status = 0;
  if (::waitpid(m_pid, &status, WNOHANG) == m_pid) {
    m_code = decode(status);
    return false;
  }
  return true;
}

int Process::signalAndWait(int signal) {
  if (!running()) return m_code;
  ::kill(m_pid, signal);
  int status = 0;
  while (::waitpid(m_pid, &status, 0) < 0 && errno == EINTR) {
  }
  m_code = decode(status);
  return m_code;
}

int Process::waitExit(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (running()) {
    if (std::chrono::steady_clock::now() >= deadline) return -1;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return m_code;
}

namespace {
sqlite3* openDb(const std::filesystem::path& db) {
  sqlite3* h = nullptr;
  if (sqlite3_open(db.c_str(), &h) != SQLITE_OK) ADD_FAILURE() << "cannot open " << db;
  sqlite3_busy_timeout(h, 5000);
  return h;
}
}  // namespace

void exec(const std::filesystem::path& db, const std::string& sql) {
  sqlite3* h = openDb(db);
  char* err = nullptr;
  if (sqlite3_exec(h, sql.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
    ADD_FAILURE() << db << ": " << (err ? err : "?") << " in: " << sql.substr(0, 200);
    sqlite3_free(err);
  }
  sqlite3_close(h);
}

std::string query(const std::filesystem::path& db, const std::string& sql) {
  sqlite3* h = openDb(db);
  std::string out;
  sqlite3_stmt* s = nullptr;
  if (sqlite3_prepare_v2(h, sql.c_str(), -1, &s, nullptr) != SQLITE_OK) {
    out = std::string("(error: ") + sqlite3_errmsg(h) + ")";
  } else {
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
      for (int i = 0; i < sqlite3_column_count(s); ++i) {
        const auto* t = sqlite3_column_text(s, i);
        out += (i ? "|" : "") + std::string(t ? reinterpret_cast<const char*>(t) : "NULL");
      }
      out += "\n";
    }
    if (rc != SQLITE_DONE) out += std::string("(error: ") + sqlite3_errmsg(h) + ")";
  }
  sqlite3_finalize(s);
  sqlite3_close(h);
  return out;
}

bool eventually(const std::function<bool()>& predicate, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!predicate()) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return true;
}

void SyncE2eTest::SetUp() { startEngine("sync"); }

std::unique_ptr<Process> SyncE2eTest::startHost(const std::string& instance, const std::string& plugin) {
  const std::string pluginPath =
      plugin.find('/') != std::string::npos ? plugin : std::string(IPCSYNC_PLUGINS_DIR) + "/" + plugin + ".so";
  auto p = std::make_unique<Process>(
      std::vector<std::string>{IPCSYNC_PLUGIN_HOST_BIN, "--plugin", pluginPath, "--instance", instance, "--namespace", ns,
                               "--runtime-dir", dir.path().string(), "--data-dir", (dir.path() / (instance + "-data")).string(),
                               "--setting", "database=" + db(instance).string(), "--poll-ms", "5"},
      logOf(instance));
  EXPECT_TRUE(eventually([&] { return registered("plugin." + instance) || !p->running(); }, std::chrono::seconds(20)))
      << log(instance);
  EXPECT_TRUE(p->running()) << log(instance);
  return p;
}

bool SyncE2eTest::connected(const Process& sync) const {
  return eventually([&] { return sourcesConnected(statusPath(), sync.pid()); }, std::chrono::seconds(60));
}

std::unique_ptr<Process> SyncE2eTest::startSync(const std::string& routesJson, const std::string& journalExtra,
                                                const std::vector<std::string>& extraArgs) {
  const auto file = dir.path() / "topology.json";
  std::ofstream(file) << R"({"routes":)" << routesJson << R"(,"journal":{"path":")" << journalPath().string() << '"'
                      << journalExtra << "}}";
  const char* other = std::getenv("IPCSYNC_TEST_SYNC_BIN");
  std::vector<std::string> argv{other && *other ? other : IPCSYNC_SYNC_BIN, "--namespace", ns, "--runtime-dir",
                                dir.path().string(), "--topology", file.string()};
  argv.insert(argv.end(), extraArgs.begin(), extraArgs.end());
  auto p = std::make_unique<Process>(argv, logOf("sync"));
  EXPECT_TRUE(eventually([&] { return registered("sync") || !p->running(); }, std::chrono::seconds(20))) << log("sync");
  return p;
}

std::string SyncE2eTest::log(const std::string& name) const {
  std::ifstream in(logOf(name));
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

bool SyncE2eTest::gone(const std::string& instance) {
  return eventually([&] { return !record(instance).has_value(); }, std::chrono::seconds(20));
}

}  // namespace ipcsync::sync::test

namespace ipcsync::sync::test {

namespace {
const char* const kWorkloadRegions[] = {"north", "south", "east", "west"};
const char* const kWorkloadProducts[] = {"widget", "gadget", "gizmo"};

const char* const kGroupBys[][2] = {
    {"SELECT a.region, count(*), sum(o.quantity), sum(o.quantity * o.unit_price_cents) FROM orders o LEFT JOIN accounts "
     "a ON a.id = o.account_id WHERE typeof(o.quantity) = 'integer' GROUP BY a.region ORDER BY 1",
     "SELECT region, order_count, units, revenue_cents FROM sales_by_region ORDER BY 1"},
    {"SELECT product, count(*), sum(quantity), sum(quantity * unit_price_cents) FROM orders WHERE typeof(quantity) = "
     "'integer' GROUP BY product ORDER BY 1",
     "SELECT product, order_count, units, revenue_cents FROM sales_by_product ORDER BY 1"},
    {"SELECT account_id, count(*), sum(quantity), sum(quantity * unit_price_cents) FROM orders WHERE typeof(quantity) = "
     "'integer' GROUP BY account_id ORDER BY 1",
     "SELECT account_id, order_count, units, revenue_cents FROM sales_by_customer ORDER BY 1"},
};
}  // namespace

void crmWorkload(const std::filesystem::path& db, std::uint64_t seed, int transactions, std::int64_t idBase) {
  std::mt19937_64 rng(seed);
  const std::string range = " WHERE id >= " + std::to_string(idBase) + " AND id < " + std::to_string(idBase + 1000000);
  std::int64_t nextAccount = std::max<std::int64_t>(idBase, std::stoll(query(db, "SELECT coalesce(max(id), 0) FROM accounts" + range)) + 1);
  std::int64_t nextOrder = std::max<std::int64_t>(idBase, std::stoll(query(db, "SELECT coalesce(max(id), 0) FROM orders" + range)) + 1);
  for (int t = 0; t < transactions; ++t) {
    std::string sql = "BEGIN;";
    const int ops = 1 + static_cast<int>(rng() % 4);
    for (int o = 0; o < ops; ++o) {
      const auto pick = rng() % 10;
      if (pick < 2 || nextAccount == idBase) {
        const auto id = nextAccount++;
        sql += "INSERT INTO accounts VALUES(" + std::to_string(id) + ",'acct " + std::to_string(id) + "','" +
               kWorkloadRegions[rng() % 4] + "','retail',1);";
      } else if (pick < 7) {
        const auto account = idBase + static_cast<std::int64_t>(rng() % static_cast<std::uint64_t>(nextAccount - idBase));
        sql += "INSERT INTO orders VALUES(" + std::to_string(nextOrder++) + "," + std::to_string(account) + ",'" +
               kWorkloadProducts[rng() % 3] + "'," + std::to_string(1 + rng() % 9) + "," +
               std::to_string(100 + rng() % 900) + "," +
               std::to_string(1700000000000000 + static_cast<std::int64_t>(rng() % 100) * 86400000000) + ",1);";
      } else if (pick < 9 && nextOrder > idBase) {
        const auto id = idBase + static_cast<std::int64_t>(rng() % static_cast<std::uint64_t>(nextOrder - idBase));
        sql += "UPDATE orders SET quantity = quantity + 1, updated_at = updated_at + 1 WHERE id = " + std::to_string(id) + ";";
      } else if (nextOrder > idBase) {
        const auto id = idBase + static_cast<std::int64_t>(rng() % static_cast<std::uint64_t>(nextOrder - idBase));
        sql += "DELETE FROM orders WHERE id = " + std::to_string(id) + ";";
      }
    }
    exec(db, sql + "COMMIT;");
  }
}

nlohmann::json readJson(const std::filesystem::path& file) {
  std::ifstream in(file);
  if (!in) return {};
  auto doc = nlohmann::json::parse(in, nullptr, false);
  return doc.is_discarded() ? nlohmann::json{} : doc;
}

std::uint64_t testSeed(const char* what) {
  std::uint64_t seed = std::random_device{}();
  if (const char* s = std::getenv("IPCSYNC_TEST_SEED")) seed = std::stoull(s);
  std::printf("%s: seed %llu (IPCSYNC_TEST_SEED=%llu repeats it)\n", what, static_cast<unsigned long long>(seed),
              static_cast<unsigned long long>(seed));
  std::fflush(stdout);
  return seed;
}

std::string crmTableRows(const std::filesystem::path& db) {
  std::string out;
  for (const char* t : {"accounts", "contacts", "interactions", "orders"})
    out += std::string(t) + ":\n" + query(db, std::string("SELECT * FROM ") + t + " ORDER BY id");
  return out;
}

std::string crmChecksums(const std::filesystem::path& db) {
  std::string out;
  for (const char* t : {"accounts", "contacts", "interactions", "orders"}) {
    const auto rows = query(db, std::string("SELECT * FROM ") + t + " ORDER BY id");
    std::uint64_t h = 1469598103934665603ull;
    for (const char c : rows) h = (h ^ static_cast<unsigned char>(c)) * 1099511628211ull;
    out += std::string(t) + ": " + std::to_string(std::count(rows.begin(), rows.end(), '\n')) + " rows, checksum " +
           std::to_string(h) + "\n";
  }
  return out;
}

bool miningEqualsGroupBy(const std::filesystem::path& crm, const std::filesystem::path& mining) {
  for (const auto& q : kGroupBys)
    if (query(crm, q[0]) != query(mining, q[1])) return false;
  return !query(crm, kGroupBys[2][0]).empty();
}

std::string miningComparison(const std::filesystem::path& crm, const std::filesystem::path& mining) {
  std::string out;
  for (const auto& q : kGroupBys) out += "crm:\n" + query(crm, q[0]) + "mining:\n" + query(mining, q[1]);
  return out;
}

bool sourcesConnected(const std::filesystem::path& status, pid_t syncPid) {
  std::ifstream in(status);
  if (!in) return false;
  try {
    const auto doc = nlohmann::json::parse(in);
    if (doc.at("pid").get<pid_t>() != syncPid || doc.at("sources").empty()) return false;
    for (const auto& s : doc.at("sources"))
      if (!s.at("connected").get<bool>()) return false;
    return true;
  } catch (const nlohmann::json::exception&) {
    return false;
  }
}

std::string integrityCheck(const std::filesystem::path& db) {
  auto out = query(db, "PRAGMA integrity_check");
  while (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

}  // namespace ipcsync::sync::test
