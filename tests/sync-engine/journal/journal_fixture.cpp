#include "journal_fixture.h"

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

}  // namespace ipcsync::test
