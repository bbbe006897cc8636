// The sync topology: which plugin instances' tables flow where, how, and where the journal lives
// (docs/CONFIG.md, "Routes" and "Journal").
//
// Plain data with documented defaults. The YAML loader (loadDaemonConfig) fills it and, before
// anyone uses it, validateTopology() has checked it against the plugins' own descriptions: every
// route names configured instances and tables they produce/accept, columns exist, tables have a
// primary key, no loop lacks protection. The sync engine process and the daemon read it; nothing
// here does I/O.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace ipcsync {

// What happens when an incoming change meets a target row that differs from what it expected.
// Mirrors ipcsync_conflict_policy in plugins/include/ipcsync/plugin.h.
enum class ConflictPolicy { SourceWins, TargetWins, LastWriterWins, Park };

// What travels on a route, per table of the source. Empty include = every column.
struct TableRule {
  std::string table;                       // as the source names it
  std::string renameTo;                    // empty: same name at the target
  std::vector<std::string> includeColumns; // only these (the primary key always travels)
  std::vector<std::string> excludeColumns; // all but these (never a primary-key column)
  std::string rowFilter;                   // SQL expression over the row's columns; empty: all rows
  std::string where;                       // "FILE:LINE:COL" of the rule in the YAML file (for messages); may be empty
};

struct RouteConfig {
  std::string name;                 // unique; default "<from>-to-<first target>"
  std::string from;                 // plugin instance that produces
  std::vector<std::string> to;      // one or more instances that accept
  std::vector<TableRule> tables;    // empty: every table the source produces and each target accepts
  bool bidirectional = false;       // also carries the targets' changes back (same rules, reversed; source/target wins mirrored)
  ConflictPolicy conflict = ConflictPolicy::SourceWins;
  std::string timestampColumn;      // required for LastWriterWins
  bool snapshot = false;            // load the source tables first, then stream
  std::uint32_t maxRetries = 5;     // a change-set failing this often goes to the dead letters
  std::string where;                // "FILE:LINE:COL" of the route in the YAML file (for messages); may be empty
};

enum class Durability { Full, Normal, Off };  // SQLite synchronous=FULL / NORMAL / OFF

struct JournalConfig {
  std::filesystem::path path;                      // empty: <state dir>/journal.db
  Durability durability = Durability::Normal;
  std::chrono::milliseconds groupCommit{0};        // longest a change-set waits for others to share its commit (0: none)
  std::uint32_t groupCommitMax = 256;              // most change-sets per commit
  std::uint64_t maxBytes = 1ull << 30;             // bound: sources are pushed back beyond it
  std::uint32_t warnAtPercent = 80;                // warn before the bound is reached
  std::chrono::seconds retention{0};               // keep acknowledged change-sets this long (0: drop at once)
  std::uint64_t pieceBytes = 256 * 1024;           // change-sets travel in pieces of at most this
};

struct Topology {
  std::vector<RouteConfig> routes;
  JournalConfig journal;
};

}  // namespace ipcsync
