// Capture: writes by any process reach the change-set stream, whole transactions in commit order,
// under back-pressure and across restarts.
#include <sys/wait.h>
#include <unistd.h>

#include <ipcsync/plugin_sdk/changeset.h>

#include <random>
#include <set>

#include "changeset_values.h"
#include "crm_fixture.h"

namespace ipcsync::test {
namespace {

std::vector<OwnedChange> changesOf(const std::vector<RecordedEnvelope>& envelopes) {
  std::vector<OwnedChange> out;
  for (const auto& e : envelopes) {
    auto reader = plugin_sdk::ChangesetReader::open(e.data);
    EXPECT_TRUE(reader) << reader.error();
    if (!reader) continue;
    ipcsync_change c{};
    while (true) {
      auto more = reader->next(c);
      EXPECT_TRUE(more) << more.error();
      if (!more || !*more) break;
      out.push_back(OwnedChange::from(c));
    }
  }
  return out;
}

// Sequences 1..n with pieces 0..count-1 each, every one exactly once and in order.
void expectWholeStream(const std::vector<RecordedEnvelope>& emitted, uint64_t first = 1) {
  uint64_t sequence = first;
  uint32_t piece = 0;
  for (const auto& e : emitted) {
    ASSERT_EQ(e.sequence, sequence) << "piece " << e.pieceIndex;
    ASSERT_EQ(e.pieceIndex, piece) << "sequence " << e.sequence;
    if (++piece == e.pieceCount) {
      piece = 0;
      ++sequence;
    }
  }
  EXPECT_EQ(piece, 0u) << "the last change-set is incomplete";
}

using CrmCaptureTest = CrmTest;

TEST_F(CrmCaptureTest, CapturesInsertsUpdatesAndDeletesMadeByTheSqlite3Shell) {
  auto src = crm("src");
  const std::string db = path("src.db");
  shell(db, "INSERT INTO accounts VALUES (1, 'Acme', 'north', 'retail', 100);"
            "INSERT INTO accounts VALUES (2, 'Globex', 'south', NULL, 100);");
  pollAll(*src);
  shell(db, "UPDATE accounts SET region = 'east', updated_at = 200 WHERE id = 1;");
  pollAll(*src);
  shell(db, "DELETE FROM accounts WHERE id = 2;");
  pollAll(*src);

  ASSERT_EQ(src->emitted.size(), 3u);
  expectWholeStream(src->emitted);
  auto changes = changesOf(src->emitted);
  ASSERT_EQ(changes.size(), 4u);
  const std::vector<unsigned char> pk{1, 0, 0, 0, 0};
  EXPECT_EQ(changes[0], (OwnedChange{"accounts", IPCSYNC_OP_INSERT, pk, {},
                                     {OwnedValue::of(1), OwnedValue::text("Acme"), OwnedValue::text("north"),
                                      OwnedValue::text("retail"), OwnedValue::of(100)}}));
  EXPECT_EQ(changes[1].newValues[3], OwnedValue::null());
  EXPECT_EQ(changes[2], (OwnedChange{"accounts", IPCSYNC_OP_UPDATE, pk,
                                     {OwnedValue::of(1), {}, OwnedValue::text("north"), {}, OwnedValue::of(100)},
                                     {{}, {}, OwnedValue::text("east"), {}, OwnedValue::of(200)}}));
  EXPECT_EQ(changes[3].op, IPCSYNC_OP_DELETE);
  EXPECT_EQ(changes[3].oldValues[1], OwnedValue::text("Globex"));

  auto dst = crm("dst");
  feed(*src, *dst, "r");
  expectSameTables(path("src.db"), path("dst.db"));
}

// The old values of the first UPDATE record in `bytes`, as written (SQLite's iterator, and so
// ChangesetReader, drops those of unchanged columns): for each column its type byte (0 undefined,
// 1 integer, 3 text, 5 NULL) and, for text, the text.
std::vector<std::pair<int, std::string>> rawUpdateOldValues(const std::vector<unsigned char>& bytes) {
  std::vector<std::pair<int, std::string>> out;
  size_t at = 0, columns = 0;
  while (at < bytes.size()) {
    if (bytes[at] == 'T') {
      columns = bytes[at + 1];  // fewer than 128 columns: a one-byte varint
      at += 2 + columns;
      while (bytes.at(at) != 0) ++at;
      ++at;
      continue;
    }
    const int op = bytes.at(at);
    at += 2;
    auto skipValue = [&](bool keep) {
      const int type = bytes.at(at++);
      std::string text;
      if (type == 1 || type == 2) at += 8;
      if (type == 3 || type == 4) {
        const size_t size = bytes.at(at++);  // short values: a one-byte varint
        text.assign(reinterpret_cast<const char*>(bytes.data()) + at, size);
        at += size;
      }
      if (keep) out.emplace_back(type, text);
    };
    for (size_t i = 0; op != IPCSYNC_OP_INSERT && i < columns; ++i) skipValue(op == IPCSYNC_OP_UPDATE);
    if (op == IPCSYNC_OP_UPDATE) return out;
    for (size_t i = 0; op != IPCSYNC_OP_DELETE && i < columns; ++i) skipValue(false);
  }
  return out;
}

// An UPDATE carries the whole old row (a route's row filter needs it to tell a row moving into or
// out of it), new values only for the changed columns; SQLite's own readers see key + changed.
TEST_F(CrmCaptureTest, UpdatesCarryTheWholeOldRow) {
  auto src = crm("src", {{"max_piece_bytes", "100"}});
  const std::string db = path("src.db");
  shell(db, "INSERT INTO accounts VALUES (1, 'Acme', 'north', 'retail', 100);"
            "INSERT INTO accounts VALUES (2, 'Globex', 'south', NULL, 100);");
  pollAll(*src);
  shell(db, "BEGIN; UPDATE accounts SET region = 'east', updated_at = 200 WHERE id = 1;"
            "UPDATE accounts SET name = 'Globex Corp' WHERE id = 2; COMMIT;");
  pollAll(*src);
  expectWholeStream(src->emitted);
  std::vector<RecordedEnvelope> updates;
  for (const auto& e : src->emitted)
    if (e.sequence == 2) updates.push_back(e);
  ASSERT_EQ(updates.size(), 2u) << "a 100-byte bound puts each update in a piece of its own";
  using V = std::vector<std::pair<int, std::string>>;
  EXPECT_EQ(rawUpdateOldValues(updates[0].data), (V{{1, ""}, {3, "Acme"}, {3, "north"}, {3, "retail"}, {1, ""}}));
  EXPECT_EQ(rawUpdateOldValues(updates[1].data), (V{{1, ""}, {3, "Globex"}, {3, "south"}, {5, ""}, {1, ""}}));
  auto changes = changesOf({updates[1]});
  ASSERT_EQ(changes.size(), 1u);
  const std::vector<unsigned char> pk{1, 0, 0, 0, 0};
  EXPECT_EQ(changes[0], (OwnedChange{"accounts", IPCSYNC_OP_UPDATE, pk,
                                     {OwnedValue::of(2), OwnedValue::text("Globex"), {}, {}, {}},
                                     {{}, OwnedValue::text("Globex Corp"), {}, {}, {}}}));
  auto dst = crm("dst");
  feed(*src, *dst, "r");
  expectSameTables(path("src.db"), path("dst.db"));
}

TEST_F(CrmCaptureTest, EmitsInterleavedTransactionsOfTwoProcessesWholeAndInCommitOrder) {
  auto src = crm("src");
  const std::string db = path("src.db");
  shell(db, "INSERT INTO accounts VALUES (1, 'Counter', 'north', NULL, 0);");
  const int perProcess = 60;
  const auto seed = std::random_device{}();
  std::printf("seed %u\n", seed);
  std::vector<pid_t> children;
  for (int proc = 1; proc <= 2; ++proc) {
    const pid_t pid = fork();
    if (pid == 0) {
      try {
        SqliteDb conn(db);
        std::mt19937 rng(seed + static_cast<unsigned>(proc));
        for (int t = 0; t < perProcess; ++t) {
          // Each transaction bumps the shared counter and records its value: the value is the
          // transaction's place in commit order.
          conn.exec("BEGIN IMMEDIATE;"
                    "UPDATE accounts SET updated_at = updated_at + 1 WHERE id = 1;"
                    "INSERT INTO interactions(account_id, contact_id, channel, summary, occurred_at, updated_at) "
                    "VALUES (1, " + std::to_string(proc) + ", 'phone', 't" + std::to_string(t) +
                    "', (SELECT updated_at FROM accounts WHERE id = 1), 0);");
          usleep(static_cast<useconds_t>(rng() % 2000));
          conn.exec("COMMIT");
          usleep(static_cast<useconds_t>(rng() % 1000));
        }
      } catch (const std::exception& e) {
        std::fprintf(stderr, "child %d: %s\n", proc, e.what());
        _exit(1);
      }
      _exit(0);
    }
    children.push_back(pid);
  }
  size_t running = children.size();
  while (running > 0) {
    ASSERT_EQ(src->poll(), IPCSYNC_OK) << src->lastError();
    for (auto& pid : children) {
      int status = 0;
      if (pid > 0 && waitpid(pid, &status, WNOHANG) == pid) {
        EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        pid = -1;
        --running;
      }
    }
    usleep(500);
  }
  pollAll(*src);
  expectWholeStream(src->emitted);
  // How many change-sets the polls cut depends on scheduling (a loaded machine may cut once);
  // what must hold either way is checked below: every transaction whole, in commit order.
  RecordProperty("change_sets", static_cast<int>(src->emitted.size()));

  auto changes = changesOf(src->emitted);
  ASSERT_EQ(changes.size(), 1u + 2u * 2u * perProcess);  // the counter row, then two changes a transaction
  std::map<int64_t, int> lastOfProcess;
  for (size_t i = 1; i < changes.size(); i += 2) {
    const int64_t k = static_cast<int64_t>(i / 2 + 1);
    // The counter update and its interaction sit together, in the order the commits happened.
    ASSERT_EQ(changes[i].table, "accounts");
    EXPECT_EQ(changes[i].newValues[4], OwnedValue::of(k));
    ASSERT_EQ(changes[i + 1].table, "interactions");
    EXPECT_EQ(changes[i + 1].newValues[5], OwnedValue::of(k));
    const int64_t proc = changes[i + 1].newValues[2].integer;
    const int t = std::stoi(changes[i + 1].newValues[4].bytes.substr(1));
    auto [it, first] = lastOfProcess.try_emplace(proc, t);
    if (!first) {
      EXPECT_EQ(t, it->second + 1) << "process " << proc;
      it->second = t;
    }
  }
  auto dst = crm("dst");
  feed(*src, *dst, "r");
  expectSameTables(path("src.db"), path("dst.db"));
}

TEST_F(CrmCaptureTest, BackPressureLosesNothingAndRepeatsNothing) {
  auto src = crm("src", {{"max_piece_bytes", "300"}, {"batch_rows", "7"}});
  const auto seed = std::random_device{}();
  std::printf("seed %u\n", seed);
  std::mt19937 rng(seed);
  SqliteDb conn(path("src.db"));
  int64_t id = 0;
  for (int round = 0; round < 40; ++round) {
    conn.exec("BEGIN");
    for (unsigned i = 0; i < 1 + rng() % 12; ++i) {
      ++id;
      conn.exec("INSERT INTO orders VALUES (" + std::to_string(id) + ", 1, 'headset', " + std::to_string(rng() % 9 + 1) +
                ", 1999, 0, 0)");
      if (id % 3 == 0) conn.exec("UPDATE orders SET quantity = quantity + 1 WHERE id = " + std::to_string(id - 1));
      if (id % 5 == 0) conn.exec("DELETE FROM orders WHERE id = " + std::to_string(id - 2));
    }
    conn.exec("COMMIT");
    src->busyEmits = static_cast<int>(rng() % 4);
    ASSERT_EQ(src->poll(), IPCSYNC_OK) << src->lastError();
  }
  src->busyEmits = 0;
  pollAll(*src);
  expectWholeStream(src->emitted);
  bool multiPiece = false;
  for (const auto& e : src->emitted) multiPiece = multiPiece || e.pieceCount > 1;
  EXPECT_TRUE(multiPiece) << "max_piece_bytes 300 should have split some change-sets";
  for (const auto& e : src->emitted) {
    if (changesOf({e}).size() > 1) {
      EXPECT_LE(e.data.size(), 300u);
    }
  }
  auto dst = crm("dst");
  feed(*src, *dst, "r");
  expectSameTables(path("src.db"), path("dst.db"));
}

TEST_F(CrmCaptureTest, RestartResumesAfterJournaledThroughWithTheSameChangeSets) {
  auto src = crm("src");
  SqliteDb conn(path("src.db"));
  for (int i = 1; i <= 5; ++i) {
    conn.exec("INSERT INTO accounts VALUES (" + std::to_string(i) + ", 'a', 'north', NULL, 0)");
    pollAll(*src);
  }
  ASSERT_EQ(src->emitted.size(), 5u);
  const auto before = src->emitted;
  ASSERT_EQ(src->acknowledge(2), IPCSYNC_OK) << src->lastError();
  EXPECT_EQ(conn.scalar("SELECT count(*) FROM _ipcsync_changes"), 3) << "acknowledged changes are forgotten";
  src->destroy();
  conn.exec("INSERT INTO accounts VALUES (6, 'written while crm was down', 'west', NULL, 0)");

  TestHost again(IPCSYNC_CRM_PLUGIN, {{"database", path("src.db")}}, m_dir / "src-data");
  ASSERT_EQ(again.create(), IPCSYNC_OK) << again.lastError();
  ASSERT_EQ(again.start(3), IPCSYNC_OK) << again.lastError();
  pollAll(again);
  ASSERT_EQ(again.emitted.size(), 3u);
  EXPECT_EQ(again.emitted[0].sequence, 4u);
  EXPECT_EQ(again.emitted[0].data, before[3].data);
  EXPECT_EQ(again.emitted[1].sequence, 5u);
  EXPECT_EQ(again.emitted[1].data, before[4].data);
  EXPECT_EQ(again.emitted[2].sequence, 6u);
  auto changes = changesOf({again.emitted[2]});
  ASSERT_EQ(changes.size(), 1u);
  EXPECT_EQ(changes[0].newValues[0], OwnedValue::of(6));
}

TEST_F(CrmCaptureTest, SnapshotThenLaterChangesEqualTheSourceTableWithNoGapOrDuplicate) {
  auto src = crm("src");
  SqliteDb conn(path("src.db"));
  auto order = [&](int id, int quantity) {
    conn.exec("INSERT INTO orders VALUES (" + std::to_string(id) + ", 1, 'router', " + std::to_string(quantity) + ", 500, 0, 0)");
  };
  for (int i = 1; i <= 30; ++i) order(i, i);
  pollAll(*src);
  conn.exec("UPDATE orders SET quantity = 99 WHERE id <= 5; DELETE FROM orders WHERE id > 25;");  // not polled yet
  uint64_t asOf = 0;
  ASSERT_EQ(src->snapshot("orders", "snap", 200, asOf), IPCSYNC_OK) << src->lastError();
  EXPECT_GT(src->snapshotPieces.size(), 1u);
  conn.exec("UPDATE orders SET quantity = 7 WHERE id = 1; DELETE FROM orders WHERE id = 2;");
  order(40, 4);
  pollAll(*src);
  ASSERT_FALSE(src->emitted.empty());
  EXPECT_GT(src->emitted.back().sequence, asOf);

  SqliteDb replica;
  replica.exec(crmSchema());
  for (const auto& piece : src->snapshotPieces) {
    EXPECT_EQ(piece.sequence, asOf);
    replica.apply(piece.data);  // throws on any conflict, so a duplicate would show
  }
  for (const auto& e : src->emitted)
    if (e.sequence > asOf) replica.apply(e.data);
  EXPECT_EQ(replica.table("orders"), conn.table("orders"));
}

TEST_F(CrmCaptureTest, TheSimulatorRunsNOperationsAndEveryRowChangeIsCaptured) {
  auto src = crm("src");
  std::string output;
  ASSERT_EQ(runProcess({IPCSYNC_CALLCENTRE, "--database", path("src.db"), "--operations", "400", "--seed", "11",
                        "--accounts", "15", "--quiet"}, "", &output), 0) << output;
  const auto at = output.find("done: 400 operations");
  ASSERT_NE(at, std::string::npos) << output;
  const auto comma = output.find(", ", output.find("transactions", at));
  const long long rowChanges = std::stoll(output.substr(comma + 2));
  pollAll(*src);
  EXPECT_EQ(static_cast<long long>(changesOf(src->emitted).size()), rowChanges) << output;
  expectWholeStream(src->emitted);
}

}  // namespace
}  // namespace ipcsync::test
