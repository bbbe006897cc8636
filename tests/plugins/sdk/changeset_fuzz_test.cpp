// Malformed changesets: every truncation and a few thousand random mutations of a valid one go
// through the reader and the splitter. Each must end in a clean result or an error message,
// never a crash or an out-of-bounds read (run under ASan to see the latter).
#include <gtest/gtest.h>

#include <random>
#include <set>

#include "changeset_values.h"
#include "ipcsync/plugin_sdk/changeset.h"

namespace ipcsync::plugin_sdk {
namespace {

using test::OwnedValue;

struct Sample {
  std::vector<unsigned char> bytes;
  std::set<size_t> boundaries;  // sizes at which the prefix is a whole changeset
};

Sample sample() {
  Sample s;
  ChangesetWriter w;
  s.boundaries.insert(0);
  auto put = [&](std::string table, std::vector<unsigned char> pk, int op, std::vector<OwnedValue> o, std::vector<OwnedValue> n) {
    auto ov = test::views(o);
    auto nv = test::views(n);
    auto r = w.add(table, static_cast<int>(pk.size()), pk.data(), op, o.empty() ? nullptr : ov.data(), n.empty() ? nullptr : nv.data());
    EXPECT_TRUE(r) << r.error();
    s.boundaries.insert(w.bytes().size());
  };
  put("accounts", {1, 0, 0}, IPCSYNC_OP_INSERT, {}, {OwnedValue::of(1), OwnedValue::text("Acme"), OwnedValue::real_(1.5)});
  put("accounts", {1, 0, 0}, IPCSYNC_OP_UPDATE, {OwnedValue::of(1), OwnedValue::text("Acme"), OwnedValue::undefined()},
      {OwnedValue::undefined(), OwnedValue::text("Acme Ltd"), OwnedValue::undefined()});
  put("orders", {1, 2}, IPCSYNC_OP_INSERT, {}, {OwnedValue::of(7), OwnedValue::blob(std::string(200, '\x01'))});
  put("accounts", {1, 0, 0}, IPCSYNC_OP_DELETE, {OwnedValue::of(1), OwnedValue::text("Acme Ltd"), OwnedValue::real_(1.5)}, {});
  put("orders", {1, 2}, IPCSYNC_OP_DELETE, {OwnedValue::of(7), OwnedValue::null()}, {});
  s.bytes = w.bytes();
  return s;
}

// Walks `bytes` fully; returns the change count or the error.
std::expected<size_t, std::string> walk(const std::vector<unsigned char>& bytes) {
  auto reader = ChangesetReader::open(bytes);
  if (!reader) return std::unexpected(reader.error());
  size_t count = 0;
  ipcsync_change change{};
  for (;;) {
    auto more = reader->next(change);
    if (!more) {
      auto again = reader->next(change);  // errors are sticky
      EXPECT_FALSE(again);
      return std::unexpected(more.error());
    }
    if (!*more) return count;
    ++count;
    // Touch every value so ASan sees any bad pointer.
    for (int i = 0; i < change.column_count; ++i)
      for (const ipcsync_value* side : {change.old_values, change.new_values})
        if (side && (side[i].type == IPCSYNC_VALUE_TEXT || side[i].type == IPCSYNC_VALUE_BLOB) && side[i].size > 0) {
          volatile unsigned char sink = static_cast<const unsigned char*>(side[i].bytes)[side[i].size - 1];
          (void)sink;
        }
  }
}

TEST(ChangesetFuzzTest, EveryTruncationIsAnErrorUnlessItEndsBetweenChanges) {
  const Sample s = sample();
  for (size_t n = 0; n < s.bytes.size(); ++n) {
    std::vector<unsigned char> prefix(s.bytes.begin(), s.bytes.begin() + static_cast<long>(n));
    auto result = walk(prefix);
    if (s.boundaries.count(n)) {
      EXPECT_TRUE(result) << "prefix of " << n << " bytes: " << result.error();
    } else {
      ASSERT_FALSE(result) << "prefix of " << n << " bytes read as " << *result << " changes";
      EXPECT_NE(result.error().find("malformed changeset at byte"), std::string::npos) << result.error();
      EXPECT_FALSE(splitChangeset(prefix, 64));
    }
  }
}

TEST(ChangesetFuzzTest, RandomMutationsGiveAResultOrAnErrorNeverACrash) {
  const auto seed = std::random_device{}();
  std::printf("seed %u\n", seed);
  std::mt19937 rng(seed);
  const Sample s = sample();
  int errors = 0;
  const int rounds = 5000;
  for (int round = 0; round < rounds; ++round) {
    std::vector<unsigned char> bytes = s.bytes;
    const int edits = 1 + static_cast<int>(rng() % 4);
    for (int e = 0; e < edits; ++e) {
      const size_t at = rng() % bytes.size();
      switch (rng() % 4) {
        case 0: bytes[at] = static_cast<unsigned char>(rng()); break;
        case 1: bytes[at] ^= static_cast<unsigned char>(1u << (rng() % 8)); break;
        case 2: bytes.insert(bytes.begin() + static_cast<long>(at), static_cast<unsigned char>(rng())); break;
        default: bytes.erase(bytes.begin() + static_cast<long>(at)); break;
      }
      if (bytes.empty()) bytes.push_back('T');
    }
    auto result = walk(bytes);
    if (!result) {
      ++errors;
      EXPECT_FALSE(result.error().empty());
    }
    auto pieces = splitChangeset(bytes, 1 + rng() % 300);
    if (pieces) {
      for (const auto& piece : *pieces) {
        EXPECT_TRUE(walk(piece)) << "a piece of a split changeset must read back";
      }
    }
  }
  std::printf("%d of %d mutations were refused as malformed\n", errors, rounds);
  EXPECT_GT(errors, rounds / 4);
}

}  // namespace
}  // namespace ipcsync::plugin_sdk
