// The call-centre simulator: plain-SQL work on a CRM database file, as the people of a call
// centre would cause it. New accounts and contacts, interactions logged, orders placed, changed
// and cancelled, accounts moving region; each in a small transaction of its own. It knows nothing
// of ipcsync: whatever captures changes (the crm plugin's triggers) sees ordinary writes.
#pragma once

#include <cstdint>
#include <cstdio>
#include <expected>
#include <optional>
#include <string>

namespace ipcsync::callcentre {

struct Options {
  std::string database;
  double rate = 0;                       // operations per second; 0 = as fast as possible
  std::optional<double> durationSeconds; // stop after this long ...
  std::optional<int64_t> operations;     // ... or after this many operations
  uint64_t seed = 0;
  int accounts = 20;                     // accounts to have before the work starts
  bool quiet = false;                    // only the summary line
};

struct Totals {
  int64_t operations = 0;
  int64_t transactions = 0;
  int64_t rowChanges = 0;  // rows inserted, updated or deleted, setup included
};

// Runs the simulation, printing one line per operation (unless quiet) and a summary to `out`.
// Fails with a message if the database cannot be opened or written.
std::expected<Totals, std::string> run(const Options& options, std::FILE* out);

}  // namespace ipcsync::callcentre
