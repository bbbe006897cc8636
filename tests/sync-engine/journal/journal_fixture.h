// Helpers for the journal suite: entries whose payload is derived from (origin, origin sequence)
// so any reader can check what it got, and a journal opened in a fresh temporary directory.
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "ipcsync/sync/journal.h"
#include "processes.h"

namespace ipcsync::test {

// `bytes` of payload that depend on origin, sequence and piece, so a mix-up shows.
std::vector<unsigned char> payload(const std::string& origin, std::uint64_t originSequence, std::size_t bytes,
                                   std::size_t piece = 0);

// One change-set of `bytes` in one piece (or `pieces` pieces of `bytes` each).
JournalEntry makeEntry(const std::string& origin, std::uint64_t originSequence,
                       std::vector<std::string> tables = {"contacts"}, std::size_t bytes = 64,
                       std::vector<std::string> provenance = {}, std::size_t pieces = 1);

// True when `e` carries exactly the payload makeEntry(e.origin, e.originSequence, ..., bytes, ..., pieces) made.
bool payloadMatches(const JournalEntry& e, std::size_t bytes, std::size_t pieces = 1);

// Everything the journal holds, in order.
std::vector<JournalEntry> readAll(Journal& journal);

// One SQL statement on its own connection to `file`: the first column of the first row as text
// ("" if none, "error: ..." if it failed).
std::string sqlOn(const std::filesystem::path& file, const std::string& sql);

class JournalTest : public ::testing::Test {
 protected:
  JournalConfig config() const;  // journal.db in the temp directory, defaults otherwise
  std::unique_ptr<Journal> open(const JournalConfig& c);  // fails the test on error
  std::unique_ptr<Journal> open() { return open(config()); }

  TempDir m_dir;
};

}  // namespace ipcsync::test
