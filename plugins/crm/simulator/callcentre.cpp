#include "callcentre.h"

#include <sqlite3.h>

#include <fmt/format.h>

#include <array>
#include <map>
#include <chrono>
#include <memory>
#include <random>
#include <thread>
#include <vector>

namespace ipcsync::crm {
extern const char* const kSchemaSql;
}

namespace ipcsync::callcentre {
namespace {

using Clock = std::chrono::steady_clock;

constexpr std::array kRegions{"north", "south", "east", "west"};
constexpr std::array kIndustries{"retail", "logistics", "health", "energy", "finance", "farming"};
constexpr std::array kFirstNames{"Ada", "Ben", "Chloe", "Dev", "Eve", "Farid", "Grace", "Hugo", "Ines", "Jon"};
constexpr std::array kLastNames{"Ngata", "Okafor", "Silva", "Tanaka", "Weber", "Kowalski", "Haddad", "Moreau"};
constexpr std::array kCompanies{"Acme", "Globex", "Initech", "Umbrella", "Hooli", "Stark", "Wayne", "Tyrell"};
constexpr std::array kProducts{"headset", "router", "licence", "support-plan", "desk-phone", "training"};
constexpr std::array kChannels{"phone", "email", "visit"};
constexpr std::array kSummaries{"asked about an invoice", "reported a fault", "wants a quote", "renewal call",
                                "complaint about delivery", "thanked the team"};

struct Failure {
  std::string message;
};

class Db {
 public:
  explicit Db(const std::string& path) {
    if (sqlite3_open_v2(path.c_str(), &m_db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr) != SQLITE_OK)
      throw Failure{fmt::format("cannot open '{}': {}", path, sqlite3_errmsg(m_db))};
    sqlite3_busy_timeout(m_db, 10000);
  }
  ~Db() {
    for (auto& [sql, stmt] : m_cache) sqlite3_finalize(stmt);
    sqlite3_close_v2(m_db);
  }
  Db(const Db&) = delete;
  Db& operator=(const Db&) = delete;

  void exec(const std::string& sql) {
    char* message = nullptr;
    if (sqlite3_exec(m_db, sql.c_str(), nullptr, nullptr, &message) != SQLITE_OK) {
      std::string text = message ? message : sqlite3_errmsg(m_db);
      sqlite3_free(message);
      throw Failure{fmt::format("{} (while running: {})", text, sql.substr(0, 60))};
    }
  }

  // Runs `sql` with integer/text parameters; returns the first column of the first row (or -1)
  // and adds the rows it changed to m_changes.
  template <class... Args>
  int64_t run(const char* sql, const Args&... args) {
    sqlite3_stmt*& stmt = m_cache[sql];
    if (!stmt && sqlite3_prepare_v2(m_db, sql, -1, &stmt, nullptr) != SQLITE_OK)
      throw Failure{fmt::format("{} (preparing: {})", sqlite3_errmsg(m_db), sql)};
    int index = 0;
    (bind(stmt, ++index, args), ...);
    int64_t first = -1;
    int rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW) {
      first = sqlite3_column_type(stmt, 0) == SQLITE_NULL ? -1 : sqlite3_column_int64(stmt, 0);
      while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
      }
    }
    if (rc != SQLITE_DONE) {
      std::string message = sqlite3_errmsg(m_db);
      sqlite3_reset(stmt);
      throw Failure{fmt::format("{} (running: {})", message, sql)};
    }
    sqlite3_reset(stmt);
    sqlite3_clear_bindings(stmt);
    if (!sqlite3_stmt_readonly(stmt)) changes += sqlite3_changes(m_db);
    return first;
  }

  int64_t changes = 0;

 private:
  static void bind(sqlite3_stmt* s, int i, int64_t v) { sqlite3_bind_int64(s, i, v); }
  static void bind(sqlite3_stmt* s, int i, int v) { sqlite3_bind_int64(s, i, v); }
  static void bind(sqlite3_stmt* s, int i, const std::string& v) {
    sqlite3_bind_text(s, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
  }
  sqlite3* m_db = nullptr;
  std::map<std::string, sqlite3_stmt*> m_cache;
};

int64_t nowUs() {
  return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

class CallCentre {
 public:
  CallCentre(Db& db, uint64_t seed, std::FILE* out, bool quiet) : m_db(db), m_rng(seed), m_out(out), m_quiet(quiet) {}

  template <class A>
  const char* pick(const A& items) {
    return items[m_rng() % items.size()];
  }
  int64_t between(int64_t lo, int64_t hi) { return lo + static_cast<int64_t>(m_rng() % static_cast<uint64_t>(hi - lo + 1)); }

  // An existing id of `table`, or -1 if it is empty.
  int64_t existing(const char* table) {
    const int64_t top = m_db.run(fmt::format("SELECT max(id) FROM {}", table).c_str());
    if (top < 0) return -1;
    const int64_t id = m_db.run(fmt::format("SELECT id FROM {} WHERE id >= ?1 ORDER BY id LIMIT 1", table).c_str(), between(1, top));
    return id >= 0 ? id : m_db.run(fmt::format("SELECT min(id) FROM {}", table).c_str());
  }

  void say(const std::string& line) {
    if (!m_quiet) std::fprintf(m_out, "%s\n", line.c_str());
  }

  void newAccount(int64_t txn) {
    const std::string name = fmt::format("{} {}", pick(kCompanies), between(1, 9999));
    const std::string region = pick(kRegions);
    const int64_t id = m_db.run("INSERT INTO accounts(name, region, industry, updated_at) VALUES (?1, ?2, ?3, ?4) RETURNING id",
                                name, region, std::string(pick(kIndustries)), nowUs());
    say(fmt::format("txn {}: new account {} '{}' in {}", txn, id, name, region));
  }
  void newContact(int64_t txn) {
    const int64_t account = existing("accounts");
    if (account < 0) return newAccount(txn);
    const std::string name = fmt::format("{} {}", pick(kFirstNames), pick(kLastNames));
    const int64_t id = m_db.run(
        "INSERT INTO contacts(account_id, name, email, phone, updated_at) VALUES (?1, ?2, ?3, ?4, ?5) RETURNING id", account,
        name, fmt::format("contact{}@customer", between(1, 99999)), fmt::format("+1-555-{:04}", between(0, 9999)), nowUs());
    say(fmt::format("txn {}: new contact {} '{}' for account {}", txn, id, name, account));
  }
  void logInteraction(int64_t txn) {
    const int64_t account = existing("accounts");
    if (account < 0) return newAccount(txn);
    const int64_t contact = m_db.run("SELECT id FROM contacts WHERE account_id = ?1 LIMIT 1", account);
    const std::string channel = pick(kChannels);
    const int64_t now = nowUs();
    const int64_t id = contact >= 0
        ? m_db.run("INSERT INTO interactions(account_id, contact_id, channel, summary, occurred_at, updated_at) "
                   "VALUES (?1, ?2, ?3, ?4, ?5, ?5) RETURNING id", account, contact, channel, std::string(pick(kSummaries)), now)
        : m_db.run("INSERT INTO interactions(account_id, contact_id, channel, summary, occurred_at, updated_at) "
                   "VALUES (?1, NULL, ?2, ?3, ?4, ?4) RETURNING id", account, channel, std::string(pick(kSummaries)), now);
    say(fmt::format("txn {}: logged {} interaction {} with account {}", txn, channel, id, account));
  }
  void placeOrder(int64_t txn) {
    const int64_t account = existing("accounts");
    if (account < 0) return newAccount(txn);
    const std::string product = pick(kProducts);
    const int64_t quantity = between(1, 20), price = between(500, 50000);
    const int64_t id = m_db.run("INSERT INTO orders(account_id, product, quantity, unit_price_cents, ordered_at, updated_at) "
                                "VALUES (?1, ?2, ?3, ?4, ?5, ?5) RETURNING id", account, product, quantity, price, nowUs());
    say(fmt::format("txn {}: account {} ordered {} x {} at {} cents (order {})", txn, account, quantity, product, price, id));
  }
  void changeOrder(int64_t txn) {
    const int64_t order = existing("orders");
    if (order < 0) return placeOrder(txn);
    const int64_t quantity = between(1, 40);
    m_db.run("UPDATE orders SET quantity = CASE WHEN quantity = ?2 THEN ?2 + 1 ELSE ?2 END, "
             "updated_at = max(?3, updated_at + 1) WHERE id = ?1", order, quantity, nowUs());
    say(fmt::format("txn {}: order {} changed to quantity {}", txn, order, quantity));
  }
  void cancelOrder(int64_t txn) {
    const int64_t order = existing("orders");
    if (order < 0) return placeOrder(txn);
    m_db.run("DELETE FROM orders WHERE id = ?1", order);
    say(fmt::format("txn {}: order {} cancelled", txn, order));
  }
  void moveAccount(int64_t txn) {
    const int64_t account = existing("accounts");
    if (account < 0) return newAccount(txn);
    const std::string region = pick(kRegions);
    m_db.run("UPDATE accounts SET region = CASE WHEN region = ?2 THEN (CASE ?2 WHEN 'north' THEN 'south' ELSE 'north' END) "
             "ELSE ?2 END, updated_at = max(?3, updated_at + 1) WHERE id = ?1", account, region, nowUs());
    say(fmt::format("txn {}: account {} moved region", txn, account));
  }

  void operation(int64_t txn) {
    const auto roll = m_rng() % 100;
    if (roll < 10) newAccount(txn);
    else if (roll < 25) newContact(txn);
    else if (roll < 55) logInteraction(txn);
    else if (roll < 75) placeOrder(txn);
    else if (roll < 85) changeOrder(txn);
    else if (roll < 92) cancelOrder(txn);
    else moveAccount(txn);
  }

  std::mt19937_64& rng() { return m_rng; }

 private:
  Db& m_db;
  std::mt19937_64 m_rng;
  std::FILE* m_out;
  bool m_quiet;
};

}  // namespace

std::expected<Totals, std::string> run(const Options& options, std::FILE* out) {
  try {
    Db db(options.database);
    db.exec("PRAGMA journal_mode=WAL");
    db.exec(crm::kSchemaSql);
    CallCentre centre(db, options.seed, out, options.quiet);
    Totals totals;

    db.exec("BEGIN IMMEDIATE");
    const int64_t have = db.run("SELECT count(*) FROM accounts");
    for (int64_t i = have; i < options.accounts; ++i) centre.newAccount(0);
    db.exec("COMMIT");

    const auto start = Clock::now();
    while (true) {
      if (options.operations && totals.operations >= *options.operations) break;
      if (options.durationSeconds && std::chrono::duration<double>(Clock::now() - start).count() >= *options.durationSeconds) break;
      if (options.rate > 0) {
        const auto due = start + std::chrono::duration_cast<Clock::duration>(
                                     std::chrono::duration<double>(static_cast<double>(totals.operations) / options.rate));
        std::this_thread::sleep_until(due);
      }
      ++totals.transactions;
      int64_t inThis = 1 + static_cast<int64_t>(centre.rng()() % 3);
      if (options.operations) inThis = std::min(inThis, *options.operations - totals.operations);
      db.exec("BEGIN IMMEDIATE");
      for (int64_t i = 0; i < inThis; ++i) centre.operation(totals.transactions);
      db.exec("COMMIT");
      totals.operations += inThis;
    }
    totals.rowChanges = db.changes;
    std::fprintf(out, "done: %lld operations in %lld transactions, %lld row changes\n",
                 static_cast<long long>(totals.operations), static_cast<long long>(totals.transactions),
                 static_cast<long long>(totals.rowChanges));
    std::fflush(out);
    return totals;
  } catch (const Failure& f) {
    return std::unexpected(f.message);
  }
}

}  // namespace ipcsync::callcentre
