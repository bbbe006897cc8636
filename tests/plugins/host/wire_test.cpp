// The wire codec: round trips, and defensive decoding of every truncation and of random bytes.
#include <gtest/gtest.h>

#include <cstdio>
#include <random>

#include "ipcsync/plugin_host/wire.h"

namespace ipcsync::wire {
namespace {

std::vector<std::byte> bytes(std::string_view s) {
  std::vector<std::byte> out(s.size());
  std::memcpy(out.data(), s.data(), s.size());
  return out;
}

Envelope sampleEnvelope(const std::vector<std::byte>& data) {
  Envelope e;
  e.origin = "crm";
  e.sequence = 0x0102030405060708ULL;
  e.route = "crm->mining";
  e.commitTimeUs = -5;
  e.provenance = {"crm", "bridge"};
  e.pieceIndex = 1;
  e.pieceCount = 3;
  e.conflictPolicy = 2;
  e.timestampColumn = std::nullopt;
  e.data = data;
  return e;
}

TEST(WireTest, AFrameWithANonZeroReservedFieldIsRefused) {
  auto frame = encode(Kind::Describe, Empty{});
  ASSERT_TRUE(peekKind(frame));
  frame[3] = std::byte{1};
  auto kind = peekKind(frame);
  ASSERT_FALSE(kind);
  EXPECT_NE(kind.error().find("reserved"), std::string::npos) << kind.error();
}

TEST(WireTest, AnEnvelopeSurvivesARoundTripFieldByField) {
  const auto data = bytes("changeset bytes");
  const auto frame = encode(Kind::Apply, sampleEnvelope(data));
  EXPECT_EQ(frame.size(), encodedSize(Kind::Apply, sampleEnvelope(data)));
  ASSERT_EQ(peekKind(frame).value(), Kind::Apply);
  auto e = decode<Envelope>(frame);
  ASSERT_TRUE(e) << e.error();
  EXPECT_EQ(e->origin, "crm");
  EXPECT_EQ(e->sequence, 0x0102030405060708ULL);
  EXPECT_EQ(e->route, "crm->mining");
  EXPECT_EQ(e->commitTimeUs, -5);
  EXPECT_EQ(e->provenance, (std::vector<std::string>{"crm", "bridge"}));
  EXPECT_EQ(e->pieceIndex, 1u);
  EXPECT_EQ(e->pieceCount, 3u);
  EXPECT_EQ(e->conflictPolicy, 2u);
  EXPECT_FALSE(e->timestampColumn.has_value());
  ASSERT_EQ(e->data.size(), data.size());
  EXPECT_EQ(std::memcmp(e->data.data(), data.data(), data.size()), 0);
}

TEST(WireTest, ANullRouteAndAnEmptyRouteStayDistinct) {
  Envelope e;
  e.route = std::nullopt;
  EXPECT_FALSE(decode<Envelope>(encode(Kind::Emit, e))->route.has_value());
  e.route = "";
  EXPECT_EQ(decode<Envelope>(encode(Kind::Emit, e))->route, "");
}

TEST(WireTest, ConflictsAndRepliesRoundTrip) {
  const auto change = bytes("x");
  Conflict c{"r", "crm", 9, "items", "data", "{\"id\":1}", std::nullopt, "{\"v\":1}", change};
  auto back = decode<Conflict>(encode(Kind::Conflict, c));
  ASSERT_TRUE(back) << back.error();
  EXPECT_EQ(back->keyJson, "{\"id\":1}");
  EXPECT_FALSE(back->sourceJson);
  EXPECT_EQ(back->targetJson, "{\"v\":1}");
  EXPECT_EQ(decode<ApplyResult>(encode(Kind::ApplyResult, ApplyResult{1, 2, 3}))->conflicts, 3u);
  EXPECT_EQ(decode<Failure>(encode(Kind::Failure, Failure{4, "no"}))->message, "no");
  EXPECT_EQ(decode<SnapshotDone>(encode(Kind::SnapshotDone, SnapshotDone{77}))->asOf, 77u);
}

TEST(WireTest, EveryTruncationOfAFrameIsAnErrorNamingTheField) {
  const auto data = bytes("0123456789");
  const auto frame = encode(Kind::Apply, sampleEnvelope(data));
  for (std::size_t n = 0; n < frame.size(); ++n) {
    auto e = decode<Envelope>(std::span(frame).first(n));
    ASSERT_FALSE(e) << "a frame cut to " << n << " of " << frame.size() << " bytes decoded";
    if (n >= kHeaderSize) {
      EXPECT_NE(e.error().find("field '"), std::string::npos) << e.error();
    }
  }
}

TEST(WireTest, TrailingBytesUnknownKindsAndOtherVersionsAreRefused) {
  auto frame = encode(Kind::Start, Start{5});
  frame.push_back(std::byte{0});
  EXPECT_NE(decode<Start>(frame).error().find("unexpected bytes"), std::string::npos);
  auto unknown = encode(Kind::Start, Start{5});
  unknown[1] = std::byte{200};
  EXPECT_NE(peekKind(unknown).error().find("unknown kind 200"), std::string::npos);
  auto other = encode(Kind::Start, Start{5});
  other[0] = std::byte{9};
  EXPECT_NE(peekKind(other).error().find("wire version 9"), std::string::npos);
}

TEST(WireTest, HugeAnnouncedLengthsAreRefusedWithoutReadingPastTheFrame) {
  // A blob that claims 2^64-1 bytes, and a provenance list that claims four billion strings.
  std::vector<std::byte> blob = encode(Kind::Emit, Envelope{});
  for (std::size_t i = blob.size() - 8; i < blob.size(); ++i) blob[i] = std::byte{0xFF};
  auto b = decode<Envelope>(blob);
  ASSERT_FALSE(b);
  EXPECT_NE(b.error().find("field 'data'"), std::string::npos) << b.error();
  std::vector<std::byte> frame = encode(Kind::Emit, Envelope{});
  const std::size_t provenanceAt = kHeaderSize + 4 + 8 + 4 + 8;  // origin "", sequence, route "", time
  for (int i = 0; i < 4; ++i) frame[provenanceAt + i] = std::byte{0xFF};
  auto e = decode<Envelope>(frame);
  ASSERT_FALSE(e);
  EXPECT_NE(e.error().find("provenance"), std::string::npos) << e.error();
}

TEST(WireTest, RandomBytesNeverCrashTheDecoder) {
  const unsigned seed = std::random_device{}();
  std::printf("WireTest seed: %u\n", seed);
  std::mt19937 rng(seed);
  const auto data = bytes("abc");
  const auto good = encode(Kind::Apply, sampleEnvelope(data));
  int decoded = 0;
  for (int round = 0; round < 20000; ++round) {
    auto frame = good;
    const int flips = 1 + static_cast<int>(rng() % 4);
    for (int f = 0; f < flips; ++f) frame[rng() % frame.size()] = static_cast<std::byte>(rng());
    if (rng() % 4 == 0) frame.resize(rng() % frame.size());
    auto e = decode<Envelope>(frame);
    if (e) {
      ++decoded;
      EXPECT_LE(e->data.size(), frame.size());
    } else {
      EXPECT_FALSE(e.error().empty());
    }
  }
  SCOPED_TRACE(seed);
  EXPECT_LT(decoded, 20000);
}

}  // namespace
}  // namespace ipcsync::wire
