#include "journal_fixture.h"

#include <sqlite3.h>

namespace ipcsync::test {

std::vector<unsigned char> payload(const std::string& origin, std::uint64_t originSequence, std::size_t bytes,
                                   std::size_t piece) {
  std::uint64_t x = std::hash<std::string>{}(origin) ^ (originSequence * 0x9E3779B97F4A7C15ull) ^ (piece << 48);
  std::vector<unsigned char> out(bytes);
  for (auto& b : out) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    b = static_cast<unsigned char>(x);
  }
  return out;
}

JournalEntry makeEntry(const std::string& origin, std::uint64_t originSequence, std::vector<std::string> tables,
                       std::size_t bytes, std::vector<std::string> provenance, std::size_t pieces) {
  JournalEntry e;
  e.origin = origin;
  e.originSequence = originSequence;
  e.commitTimeUs = 1'700'000'000'000'000 + static_cast<std::int64_t>(originSequence);
  e.tables = std::move(tables);
  e.provenance = provenance.empty() ? std::vector<std::string>{origin} : std::move(provenance);
  for (std::size_t p = 0; p < pieces; ++p) e.pieces.push_back(payload(origin, originSequence, bytes, p));
  return e;
}

bool payloadMatches(const JournalEntry& e, std::size_t bytes, std::size_t pieces) {
  if (e.pieces.size() != pieces) return false;
  for (std::size_t p = 0; p < pieces; ++p)
    if (e.pieces[p] != payload(e.origin, e.originSequence, bytes, p)) return false;
  return true;
}

std::vector<JournalEntry> readAll(Journal& journal) {
  auto all = journal.read(0, std::size_t{1} << 40);
  EXPECT_TRUE(all.has_value()) << all.error().message;
  return all ? std::move(*all) : std::vector<JournalEntry>{};
}

JournalConfig JournalTest::config() const {
  JournalConfig c;
  c.path = m_dir.path() / "journal.db";
  return c;
}

std::unique_ptr<Journal> JournalTest::open(const JournalConfig& c) {
  auto j = Journal::open(c);
  EXPECT_TRUE(j.has_value()) << j.error().message;
  return j ? std::move(*j) : nullptr;
}

std::string sqlOn(const std::filesystem::path& file, const std::string& sql) {
  sqlite3* db = nullptr;
  std::string out;
  if (sqlite3_open_v2(file.c_str(), &db, SQLITE_OPEN_READWRITE, nullptr) == SQLITE_OK) {
    sqlite3_stmt* s = nullptr;
    if (sqlite3_prepare_v2(db, sql.c_str(), -1, &s, nullptr) == SQLITE_OK) {
      const int rc = sqlite3_step(s);
      if (rc == SQLITE_ROW && sqlite3_column_text(s, 0))
        out = reinterpret_cast<const char*>(sqlite3_column_text(s, 0));
      else if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        out = std::string("error: ") + sqlite3_errmsg(db);
    } else {
      out = std::string("error: ") + sqlite3_errmsg(db);
    }
    sqlite3_finalize(s);
  }
  sqlite3_close(db);
  return out;
}

}  // namespace ipcsync::test
