// The operator's view of a journal, for the `ipcsync deadletter` and `ipcsync conflicts`
// commands: each function opens the journal file (never creating one), prints a table or a
// confirmation to `out` and any error (naming the file and what to do) to `err`, and returns
// the exit code. The sync engine may be running on the same file: requests are recorded in the
// journal and the engine acts on them (docs/design/journal.md, "Operator requests").
//
// Thread safety: each call opens and closes its own connection. Nothing is owned across calls.
#pragma once

#include <cstdio>
#include <filesystem>
#include <span>
#include <string>
#include <string_view>

namespace ipcsync::journal_cli {

// Exit codes shared by every command here (docs/ERRORS.md).
inline constexpr int kOk = 0;
inline constexpr int kRuntimeError = 1;  // the journal is missing, locked, damaged, or refused the request
inline constexpr int kUsage = 2;         // bad arguments: nothing was opened
inline constexpr int kNotFound = 3;      // no dead letter / conflict with that id

// `ipcsync deadletter list`: one row per dead letter (id, route, subscriber, sequence, attempts,
// failed at (UTC), replay requested, last error).
int listDeadLetters(const std::filesystem::path& journal, std::FILE* out, std::FILE* err);
// `ipcsync deadletter replay ID`: asks the sync engine to try that change-set again.
int replayDeadLetter(const std::filesystem::path& journal, std::string_view id, std::FILE* out, std::FILE* err);

// `ipcsync conflicts list [--all]`: the conflicts not yet resolved (all: resolved ones too).
int listConflicts(const std::filesystem::path& journal, bool all, std::FILE* out, std::FILE* err);
// `ipcsync conflicts resolve ID --take source|target`: records the choice for the sync engine.
int resolveConflict(const std::filesystem::path& journal, std::string_view id, std::string_view take,
                    std::FILE* out, std::FILE* err);

// The same commands from their words after "deadletter" / "conflicts" (e.g. {"replay", "7"}), for
// a CLI that hands the rest of its command line over; usage errors print the synopsis.
int deadletterCommand(const std::filesystem::path& journal, std::span<const std::string> args, std::FILE* out,
                      std::FILE* err);
int conflictsCommand(const std::filesystem::path& journal, std::span<const std::string> args, std::FILE* out,
                     std::FILE* err);

}  // namespace ipcsync::journal_cli
