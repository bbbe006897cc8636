#include "ipcsync/sync/journal_cli.h"

#include <fmt/format.h>

#include <charconv>
#include <ctime>
#include <memory>
#include <optional>
#include <vector>

#include "ipcsync/sync/journal.h"

namespace ipcsync::journal_cli {
namespace {

constexpr const char* kDeadletterUsage = "usage: ipcsync deadletter list\n       ipcsync deadletter replay ID\n";
constexpr const char* kConflictsUsage =
    "usage: ipcsync conflicts list [--all]\n       ipcsync conflicts resolve ID --take source|target\n";

std::unique_ptr<Journal> openExisting(const std::filesystem::path& journal, std::FILE* err) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(journal, ec)) {
    fmt::print(err,
               "error: no journal at {}; give the sync engine's journal file (by default <state dir>/journal.db)\n",
               journal.string());
    return nullptr;
  }
  auto opened = Journal::open(JournalConfig{.path = journal});
  if (!opened) {
    fmt::print(err, "error: {}\n", opened.error().message);
    return nullptr;
  }
  return std::move(*opened);
}

int fail(const JournalError& e, std::FILE* err) {
  fmt::print(err, "error: {}\n", e.message);
  return e.kind == JournalError::Kind::NotFound ? kNotFound : kRuntimeError;
}

std::optional<std::uint64_t> parseId(std::string_view text) {
  std::uint64_t v = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || end != text.data() + text.size() || v == 0) return std::nullopt;
  return v;
}

std::string utc(std::int64_t us) {
  const std::time_t s = static_cast<std::time_t>(us / 1000000);
  std::tm tm{};
  gmtime_r(&s, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", &tm);
  return buf;
}

std::string oneLine(std::string s) {
  for (char& c : s)
    if (c == '\n' || c == '\r' || c == '\t') c = ' ';
  return s;
}

// Columns padded to their widest cell; the last column is not padded.
void printTable(std::FILE* out, const std::vector<std::vector<std::string>>& rows) {
  std::vector<std::size_t> width;
  for (const auto& r : rows)
    for (std::size_t i = 0; i < r.size(); ++i) {
      if (width.size() <= i) width.push_back(0);
      width[i] = std::max(width[i], r[i].size());
    }
  for (const auto& r : rows) {
    std::string line;
    for (std::size_t i = 0; i < r.size(); ++i)
      line += i + 1 < r.size() ? fmt::format("{:<{}}  ", r[i], width[i]) : r[i];
    fmt::print(out, "{}\n", line);
  }
}

const char* stateName(ConflictResolution r) {
  switch (r) {
    case ConflictResolution::Open: return "open";
    case ConflictResolution::TakeSourceRequested: return "take-source-requested";
    case ConflictResolution::TakeTargetRequested: return "take-target-requested";
    case ConflictResolution::Resolved: return "resolved";
  }
  return "?";
}

}  // namespace

int listDeadLetters(const std::filesystem::path& journal, std::FILE* out, std::FILE* err) {
  auto j = openExisting(journal, err);
  if (!j) return kRuntimeError;
  auto letters = j->deadLetters();
  if (!letters) return fail(letters.error(), err);
  if (letters->empty()) {
    fmt::print(out, "no dead letters in {}\n", journal.string());
    return kOk;
  }
  std::vector<std::vector<std::string>> rows{
      {"ID", "ROUTE", "SUBSCRIBER", "SEQUENCE", "ATTEMPTS", "FAILED (UTC)", "REPLAY", "LAST ERROR"}};
  for (const auto& l : *letters)
    rows.push_back({std::to_string(l.id), l.route, l.subscriber, std::to_string(l.sequence), std::to_string(l.attempts),
                    utc(l.failedAtUs), l.replayRequested ? "requested" : "-", oneLine(l.error)});
  printTable(out, rows);
  return kOk;
}

int replayDeadLetter(const std::filesystem::path& journal, std::string_view id, std::FILE* out, std::FILE* err) {
  const auto parsed = parseId(id);
  if (!parsed) {
    fmt::print(err, "error: '{}' is not a dead-letter id (a positive number from `ipcsync deadletter list`)\n{}", id,
               kDeadletterUsage);
    return kUsage;
  }
  auto j = openExisting(journal, err);
  if (!j) return kRuntimeError;
  if (auto ok = j->requestReplay(*parsed); !ok) return fail(ok.error(), err);
  fmt::print(out, "dead letter {} marked for replay; the sync engine retries it on its next pass\n", *parsed);
  return kOk;
}

int listConflicts(const std::filesystem::path& journal, bool all, std::FILE* out, std::FILE* err) {
  auto j = openExisting(journal, err);
  if (!j) return kRuntimeError;
  auto parked = j->conflicts(!all);
  if (!parked) return fail(parked.error(), err);
  if (parked->empty()) {
    fmt::print(out, "no {}conflicts in {}\n", all ? "" : "unresolved ", journal.string());
    return kOk;
  }
  std::vector<std::vector<std::string>> rows{
      {"ID", "ROUTE", "ORIGIN", "SUBSCRIBER", "TABLE", "KIND", "SEQUENCE", "STATE", "PARKED (UTC)", "KEY"}};
  for (const auto& c : *parked)
    rows.push_back({std::to_string(c.id), c.route, c.origin, c.subscriber, c.table, c.kind, std::to_string(c.sequence),
                    stateName(c.resolution), utc(c.parkedAtUs), oneLine(c.keyJson)});
  printTable(out, rows);
  return kOk;
}

int resolveConflict(const std::filesystem::path& journal, std::string_view id, std::string_view take, std::FILE* out,
                    std::FILE* err) {
  const auto parsed = parseId(id);
  if (!parsed) {
    fmt::print(err, "error: '{}' is not a conflict id (a positive number from `ipcsync conflicts list`)\n{}", id,
               kConflictsUsage);
    return kUsage;
  }
  if (take != "source" && take != "target") {
    fmt::print(err, "error: --take must be 'source' or 'target', not '{}'\n{}", take, kConflictsUsage);
    return kUsage;
  }
  auto j = openExisting(journal, err);
  if (!j) return kRuntimeError;
  const auto choice =
      take == "source" ? ConflictResolution::TakeSourceRequested : ConflictResolution::TakeTargetRequested;
  if (auto ok = j->requestResolution(*parsed, choice); !ok) return fail(ok.error(), err);
  fmt::print(out, "conflict {}: take {} recorded; the sync engine applies it on its next pass\n", *parsed, take);
  return kOk;
}

int deadletterCommand(const std::filesystem::path& journal, std::span<const std::string> args, std::FILE* out,
                      std::FILE* err) {
  if (args.size() == 1 && args[0] == "list") return listDeadLetters(journal, out, err);
  if (args.size() == 2 && args[0] == "replay") return replayDeadLetter(journal, args[1], out, err);
  fmt::print(err, "{}", kDeadletterUsage);
  return kUsage;
}

int conflictsCommand(const std::filesystem::path& journal, std::span<const std::string> args, std::FILE* out,
                     std::FILE* err) {
  if (!args.empty() && args[0] == "list" && args.size() <= 2) {
    if (args.size() == 1) return listConflicts(journal, false, out, err);
    if (args[1] == "--all") return listConflicts(journal, true, out, err);
  }
  if (!args.empty() && args[0] == "resolve") {
    if (args.size() == 4 && args[2] == "--take") return resolveConflict(journal, args[1], args[3], out, err);
    if (args.size() == 3 && args[2].starts_with("--take="))
      return resolveConflict(journal, args[1], std::string_view(args[2]).substr(7), out, err);
  }
  fmt::print(err, "{}", kConflictsUsage);
  return kUsage;
}

}  // namespace ipcsync::journal_cli
