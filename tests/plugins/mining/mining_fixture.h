// The fixture every mining suite shares: a temporary data directory, mining.so loaded into the
// test host, helpers to apply a change-set whole or in pieces, and the check that every aggregate
// in mining.db equals a fresh GROUP BY over the source tables.
#pragma once

#include <gtest/gtest.h>

#include <filesystem>
#include <map>
#include <memory>
#include <string>

#include "crm_source.h"
#include "scratch.h"
#include "test_host.h"

namespace ipcsync::test {

// An envelope for `data` on `route` with `sequence`, piece `index` of `count`.
ipcsync_envelope envelopeFor(const Bytes& data, const char* route, uint64_t sequence, uint32_t index = 0,
                             uint32_t count = 1);

// The reference queries: each aggregate as a GROUP BY over the source tables, and the same
// aggregate as mining.db holds it, both ordered by key.
struct AggregateQuery {
  const char* name;
  const char* fromSource;
  const char* fromMining;
};
const std::vector<AggregateQuery>& aggregateQueries();
std::string topCustomersFromSource(int64_t limit);

class MiningTest : public ::testing::Test {
 protected:
  void SetUp() override;

  // A fresh host on the same data directory, created; fails the test when create() fails.
  std::unique_ptr<TestHost> makeHost(std::map<std::string, std::string> settings = {});
  std::filesystem::path dataDir() const { return dir.path() / "data"; }
  std::filesystem::path databasePath() const { return dataDir() / "mining.db"; }

  // Applies `data` whole; returns the status and fills `result`.
  int apply(const Bytes& data, const char* route, uint64_t sequence, ipcsync_apply_result& result);
  // Applies `data` whole and expects success; returns the result.
  ipcsync_apply_result applyOk(const Bytes& data, const char* route, uint64_t sequence);

  // Rows of `sql` run on mining.db through a separate read-only connection (what readers see).
  Rows miningRows(const std::string& sql) const;
  // Every aggregate, the top customers view and the copies, compared with the source.
  void expectMatchesSource(const CrmSource& source, const std::string& context, int64_t topCustomers = 10) const;
  // Every table of mining.db, for "nothing changed" comparisons.
  Rows everything() const;

  TempDir dir;
  std::unique_ptr<TestHost> host;
};

}  // namespace ipcsync::test
