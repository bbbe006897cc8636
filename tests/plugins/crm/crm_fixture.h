// Shared pieces of the crm suites: a temporary directory per test, crm instances loaded into
// ipcsync::test::TestHost, real child processes (the sqlite3 shell, the simulator), and helpers
// that feed one instance's emitted change-sets into another and compare databases.
#pragma once

#include <gtest/gtest.h>

#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "sqlite_test_db.h"
#include "test_host.h"

namespace ipcsync::test {

// Runs `argv` as a real process with `input` on its stdin; returns the exit code (128+signal if
// killed) and puts its stdout (and stderr) in `output`.
int runProcess(const std::vector<std::string>& argv, const std::string& input, std::string* output = nullptr);

// Envelope pointing into `r`, for apply().
ipcsync_envelope envelopeFor(const RecordedEnvelope& r, const char* route,
                             ipcsync_conflict_policy policy = IPCSYNC_CONFLICT_SOURCE_WINS, const char* timestamp = nullptr);
ipcsync_envelope envelopeFor(const std::vector<unsigned char>& data, uint64_t sequence, const char* route,
                             uint32_t pieceIndex = 0, uint32_t pieceCount = 1,
                             ipcsync_conflict_policy policy = IPCSYNC_CONFLICT_SOURCE_WINS, const char* timestamp = nullptr);

// A changeset captured by SQLite's session extension from `changes` run on an in-memory CRM
// database prepared with `setup`.
std::vector<unsigned char> crmChangeset(const std::string& setup, const std::string& changes);

// The CRM schema text (schema.sql), read from the source tree.
std::string crmSchema();

class CrmTest : public ::testing::Test {
 protected:
  CrmTest();
  ~CrmTest() override;

  std::string path(const std::string& name) const { return (m_dir / name).string(); }
  // A crm instance on <dir>/<name>.db, created (and started unless `start` is false).
  std::unique_ptr<TestHost> crm(const std::string& name, std::map<std::string, std::string> settings = {}, bool start = true);
  // Polls until a poll emits nothing more; fails the test on an error.
  static void pollAll(TestHost& host);
  // Applies source.emitted[from...] to `target` on `route`; returns how many were applied.
  static size_t feed(const TestHost& source, TestHost& target, const char* route, size_t from = 0);
  // Runs SQL through the real sqlite3 shell on `db`; fails the test if the shell fails.
  void shell(const std::string& db, const std::string& sql);
  // Every CRM table of two databases, equal row for row.
  static void expectSameTables(const std::string& a, const std::string& b);

  std::filesystem::path m_dir;
};

}  // namespace ipcsync::test
