#include "ipcsync/admin/journal_reader.h"

#include <QDateTime>
#include <sqlite3.h>
#include <time.h>

#include <thread>

namespace ipcsync::admin {
namespace {

QString columnText(sqlite3_stmt* s, int column) {
  const auto* text = reinterpret_cast<const char*>(sqlite3_column_text(s, column));
  return text ? QString::fromUtf8(text, sqlite3_column_bytes(s, column)) : QString();
}

}  // namespace

QString resolutionText(int resolution) {
  switch (resolution) {
    case 0: return QStringLiteral("open");
    case 1: return QStringLiteral("take source requested");
    case 2: return QStringLiteral("take target requested");
    case 3: return QStringLiteral("resolved");
    default: return QStringLiteral("unknown (%1)").arg(resolution);
  }
}

JournalReader::JournalReader(std::chrono::milliseconds minInterval, std::chrono::milliseconds busyWait)
    : m_minInterval(minInterval), m_busyWait(busyWait) {}

int JournalReader::onBusy(void* self, int attempts) {
  auto& r = *static_cast<JournalReader*>(self);
  const auto now = std::chrono::steady_clock::now();
  if (attempts == 0) r.m_busySince = now;
  if (r.m_cancelled.load(std::memory_order_relaxed) || now - r.m_busySince >= r.m_busyWait) return 0;
  std::this_thread::sleep_for(std::min<std::chrono::steady_clock::duration>(std::chrono::milliseconds(5),
                                                                            r.m_busySince + r.m_busyWait - now));
  return 1;
}

JournalReader::~JournalReader() { close(); }

void JournalReader::close() {
  if (m_db) sqlite3_close_v2(m_db);
  m_db = nullptr;
}

const JournalContents& JournalReader::refresh(const std::filesystem::path& path, bool force) {
  const auto now = std::chrono::steady_clock::now();
  if (path != m_contents.path) {
    close();
    m_contents = {};
    m_contents.path = path;
    m_read = false;
  }
  if (path.empty()) return m_contents;
  if (!force && m_read && now - m_lastRead < m_minInterval) return m_contents;
  m_lastRead = now;
  m_read = true;
  if (!read() && !m_contents.busy) {
    close();  // open again next time: the file may have been replaced
    m_contents.deadLetters.clear();
    m_contents.conflicts.clear();
  }
  return m_contents;
}

bool JournalReader::read() {
  const QString where = QString::fromStdString(m_contents.path.string());
  auto fail = [&](const char* what, int rc) {
    const char* detail = m_db ? sqlite3_errmsg(m_db) : sqlite3_errstr(rc);
    // PROTOCOL: SQLite's own retries for a WAL read lock (about 10 s) ran out; busy all the same.
    m_contents.busy = (rc & 0xff) == SQLITE_BUSY || (rc & 0xff) == SQLITE_LOCKED || (rc & 0xff) == SQLITE_PROTOCOL;
    if (m_contents.busy)
      m_contents.error =
          QStringLiteral("journal %1: another connection holds a lock that keeps readers out (%2); %3; trying again in a second.")
              .arg(where, QString::fromUtf8(detail),
                   m_contents.reads == 0 ? QStringLiteral("nothing read yet")
                                         : QStringLiteral("showing the rows read at %1")
                                               .arg(QDateTime::fromMSecsSinceEpoch(m_contents.readAtUs / 1000)
                                                        .toString(QStringLiteral("HH:mm:ss"))));
    else
      m_contents.error = QStringLiteral("journal %1: cannot %2 (%3); the console only reads it and will try again in a second.")
                             .arg(where, QLatin1String(what), QString::fromUtf8(detail));
    return false;
  };
  if (!m_db) {
    // READONLY, and no URI tricks: the console must never create or change the journal.
    const int rc = sqlite3_open_v2(m_contents.path.c_str(), &m_db, SQLITE_OPEN_READONLY, nullptr);
    if (rc != SQLITE_OK) return fail("open it read-only", rc);
    sqlite3_busy_handler(m_db, &JournalReader::onBusy, this);
  }
  std::vector<DeadLetterRow> letters;
  std::vector<ConflictRow> conflicts;
  if (int rc = sqlite3_exec(m_db, "BEGIN", nullptr, nullptr, nullptr); rc != SQLITE_OK) return fail("begin a read", rc);
  struct Rollback {
    sqlite3* db;
    ~Rollback() { sqlite3_exec(db, "ROLLBACK", nullptr, nullptr, nullptr); }
  } rollback{m_db};

  sqlite3_stmt* s = nullptr;
  int rc = sqlite3_prepare_v2(m_db,
                              "SELECT id, route, subscriber, sequence, attempts, failed_at_us, error, replay_requested "
                              "FROM dead_letters ORDER BY id LIMIT 1000",
                              -1, &s, nullptr);
  if (rc != SQLITE_OK) return fail("read its dead letters", rc);
  while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
    letters.push_back({sqlite3_column_int64(s, 0), columnText(s, 1), columnText(s, 2), sqlite3_column_int64(s, 3),
                       sqlite3_column_int64(s, 4), sqlite3_column_int64(s, 5), columnText(s, 6),
                       sqlite3_column_int64(s, 7) != 0});
  }
  sqlite3_finalize(s);
  if (rc != SQLITE_DONE) return fail("read its dead letters", rc);

  rc = sqlite3_prepare_v2(m_db,
                          "SELECT id, route, origin, subscriber, table_name, kind, sequence, key_json, source_json, "
                          "target_json, resolution, parked_at_us, change FROM conflicts WHERE resolution <> 3 "
                          "ORDER BY id LIMIT 1000",
                          -1, &s, nullptr);
  if (rc != SQLITE_OK) return fail("read its conflicts", rc);
  while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
    ConflictRow c{sqlite3_column_int64(s, 0), columnText(s, 1), columnText(s, 2), columnText(s, 3), columnText(s, 4),
                  columnText(s, 5), sqlite3_column_int64(s, 6), columnText(s, 7), columnText(s, 8), columnText(s, 9),
                  sqlite3_column_int(s, 10), sqlite3_column_int64(s, 11), {}, -1};
    c.sides = sideBySide(c.keyJson, c.sourceJson, c.targetJson, sqlite3_column_blob(s, 12),
                         static_cast<std::size_t>(sqlite3_column_bytes(s, 12)));
    conflicts.push_back(std::move(c));
  }
  sqlite3_finalize(s);
  if (rc != SQLITE_DONE) return fail("read its conflicts", rc);

  // What "current" can mean for a console that cannot open the plugins' databases: whether the
  // subscriber journaled changes to the same table after the conflict's change-set.
  rc = sqlite3_prepare_v2(m_db,
                          "SELECT CASE WHEN EXISTS (SELECT 1 FROM origins WHERE origin = ?1) THEN "
                          "(SELECT count(*) FROM entry_tables t JOIN entries e ON e.sequence = t.sequence "
                          "WHERE t.table_name = ?2 AND t.sequence > ?3 AND e.origin = ?1) ELSE -1 END",
                          -1, &s, nullptr);
  if (rc != SQLITE_OK) return fail("read its entries", rc);
  rc = SQLITE_DONE;
  for (ConflictRow& c : conflicts) {
    const QByteArray subscriber = c.subscriber.toUtf8(), table = c.table.toUtf8();
    sqlite3_bind_text(s, 1, subscriber.constData(), static_cast<int>(subscriber.size()), SQLITE_TRANSIENT);
    sqlite3_bind_text(s, 2, table.constData(), static_cast<int>(table.size()), SQLITE_TRANSIENT);
    sqlite3_bind_int64(s, 3, c.sequence);
    if ((rc = sqlite3_step(s)) != SQLITE_ROW) break;
    c.targetChangesSince = sqlite3_column_int64(s, 0);
    sqlite3_reset(s);
    rc = SQLITE_DONE;
  }
  sqlite3_finalize(s);
  if (rc != SQLITE_DONE) return fail("read its entries", rc);
  m_contents.error.clear();
  m_contents.busy = false;
  timespec ts{};
  ::clock_gettime(CLOCK_REALTIME, &ts);
  m_contents.readAtUs = static_cast<std::int64_t>(ts.tv_sec) * 1'000'000 + ts.tv_nsec / 1000;
  ++m_contents.reads;
  m_contents.deadLetters = std::move(letters);
  m_contents.conflicts = std::move(conflicts);
  return true;
}

}  // namespace ipcsync::admin
