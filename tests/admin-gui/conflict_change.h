// Test support: real one-change SQLite changesets (from the session extension, as a plugin
// captures them) and parked conflicts built from them, for the console's conflict views.
#pragma once

#include <sqlite3.h>

#include <string>
#include <vector>

#include "ipcsync/sync/journal.h"

namespace ipcsync::test {

// Runs `setup` on a fresh in-memory database, records `change` with a session on every table and
// returns the changeset (empty on any SQLite failure, which fails the caller's expectations).
inline std::vector<unsigned char> captureChange(const std::string& setup, const std::string& change) {
  sqlite3* db = nullptr;
  std::vector<unsigned char> out;
  if (sqlite3_open(":memory:", &db) != SQLITE_OK) return out;
  sqlite3_session* session = nullptr;
  int size = 0;
  void* bytes = nullptr;
  if (sqlite3_exec(db, setup.c_str(), nullptr, nullptr, nullptr) == SQLITE_OK &&
      sqlite3session_create(db, "main", &session) == SQLITE_OK && sqlite3session_attach(session, nullptr) == SQLITE_OK &&
      sqlite3_exec(db, change.c_str(), nullptr, nullptr, nullptr) == SQLITE_OK &&
      sqlite3session_changeset(session, &size, &bytes) == SQLITE_OK) {
    const auto* b = static_cast<const unsigned char*>(bytes);
    out.assign(b, b + size);
  }
  sqlite3_free(bytes);
  if (session) sqlite3session_delete(session);
  sqlite3_close(db);
  return out;
}

inline constexpr const char* kAccounts =
    "CREATE TABLE accounts (id INTEGER PRIMARY KEY, name TEXT, region TEXT, credit INTEGER);"
    "INSERT INTO accounts VALUES (7, 'Ada', 'north', 100);";

// crm's account 7: the source moved it to the south and raised its credit, while the target had
// moved it west (so region differs from the base at both ends).
inline ParkedConflict accountConflict(std::uint64_t sequence) {
  ParkedConflict pc;
  pc.route = "crm-replicas";
  pc.origin = "crm";
  pc.subscriber = "crm2";
  pc.table = "accounts";
  pc.kind = "data";
  pc.sequence = sequence;
  pc.keyJson = R"({"id":7})";
  pc.sourceJson = R"({"credit":150,"id":7,"region":"south"})";
  pc.targetJson = R"({"credit":100,"id":7,"name":"Ada","region":"west"})";
  pc.change = captureChange(kAccounts, "UPDATE accounts SET region = 'south', credit = 150 WHERE id = 7");
  return pc;
}

}  // namespace ipcsync::test
