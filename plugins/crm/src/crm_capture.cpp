#include "crm_capture.h"

#include <fmt/format.h>
#include <ipcsync/plugin_sdk/changeset.h>

#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/inotify.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <utility>

#include "crm_values.h"

namespace ipcsync::crm {
namespace {

constexpr const char* kOrigin = "crm";
constexpr int kMaxChangeSetsPerPoll = 64;
// A wake-up event waits this long after the last event for the commit that caused it to become
// visible, polled again every kFirstRetryDelay for kRetryEvenlyFor, then after growing delays.
// (Not sched_yield() inside poll(): on a busy machine it hands the CPU to anyone, for a whole
// time slice, while a sleeping host is woken promptly by its timer.)
constexpr auto kCommitVisibleWithin = std::chrono::milliseconds(100);
constexpr auto kFirstRetryDelay = std::chrono::microseconds(100);
constexpr auto kRetryEvenlyFor = std::chrono::milliseconds(5);
constexpr auto kMaxRetryDelay = std::chrono::microseconds(10000);
// A writer that never pauses must not keep one poll() from returning: its next write wakes the
// host again.
constexpr auto kMaxWokenPoll = std::chrono::milliseconds(5);

int64_t nowUs() {
  return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

ipcsync_envelope envelope(uint64_t sequence, int64_t commitTimeUs, const std::vector<std::vector<unsigned char>>& pieces,
                          size_t index, const char* route, const char* const* provenance) {
  ipcsync_envelope e{};
  e.struct_size = sizeof e;
  e.origin = kOrigin;
  e.sequence = sequence;
  e.route = route;
  e.commit_time_us = commitTimeUs;
  e.provenance = provenance;
  e.provenance_count = 1;
  e.piece_index = static_cast<uint32_t>(index);
  e.piece_count = static_cast<uint32_t>(pieces.size());
  e.data = pieces[index].data();
  e.size = pieces[index].size();
  return e;
}

// Appends one logged row (a trigger's record) to `writer` in SQLite's changeset encoding.
Result<void> addLogged(plugin_sdk::ChangesetWriter& writer, const TableInfo& t, int op, sqlite3_stmt* row,
                       int oldAt, int newAt) {
  const int n = static_cast<int>(t.columns.size());
  std::vector<ipcsync_value> oldV(static_cast<size_t>(n)), newV(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) {
    oldV[static_cast<size_t>(i)] = fromColumn(row, oldAt + i);
    newV[static_cast<size_t>(i)] = fromColumn(row, newAt + i);
  }
  auto add = [&](int addOp, const ipcsync_value* o, const ipcsync_value* nv) -> Result<void> {
    if (auto r = writer.add(t.name, n, t.primaryKey.data(), addOp, o, nv); !r)
      return fail(IPCSYNC_EINTERNAL, "cannot encode a captured change: " + r.error());
    return {};
  };
  if (op == IPCSYNC_OP_INSERT) return add(op, nullptr, newV.data());
  if (op == IPCSYNC_OP_DELETE) return add(op, oldV.data(), nullptr);

  bool keyChanged = false, anyChanged = false;
  std::vector<ipcsync_value> oldU(static_cast<size_t>(n)), newU(static_cast<size_t>(n));
  for (size_t i = 0; i < static_cast<size_t>(n); ++i) {
    const bool changed = !sameValue(oldV[i], newV[i]);
    // Every old value travels (the change log has the whole row; SQLite's changeset format allows
    // old values for unchanged columns): a route's row filter needs the whole old row to tell a
    // row moving into or out of it. New values only for the changed columns.
    oldU[i] = oldV[i];
    if (t.primaryKey[i]) {
      keyChanged = keyChanged || changed;
    } else if (changed) {
      anyChanged = true;
      newU[i] = newV[i];
    }
  }
  if (keyChanged) {  // a changed key is a different row: SQLite's sessions record it the same way
    if (auto r = add(IPCSYNC_OP_DELETE, oldV.data(), nullptr); !r) return r;
    return add(IPCSYNC_OP_INSERT, nullptr, newV.data());
  }
  if (!anyChanged) return {};  // an UPDATE that wrote the same values changes nothing
  return add(IPCSYNC_OP_UPDATE, oldU.data(), newU.data());
}

// Bytes of the table header ChangesetWriter writes before a table's first change.
size_t tableHeaderBytes(const TableInfo& t) {
  size_t varint = 1;
  for (auto v = static_cast<uint64_t>(t.columns.size()) >> 7; v != 0; v >>= 7) ++varint;
  return 1 + varint + t.columns.size() + t.name.size() + 1;
}

}  // namespace

Result<WalWatch> WalWatch::open(const std::string& database) {
  const auto failed = [](const std::string& what) { return fail(IPCSYNC_EIO, what + ": " + std::strerror(errno)); };
  const int epoll = ::epoll_create1(EPOLL_CLOEXEC);
  if (epoll < 0) return failed("epoll_create1");
  const int inotify = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  const int timer = ::timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
  const auto slash = database.rfind('/');
  const std::string dir = slash == std::string::npos ? "." : (slash == 0 ? "/" : database.substr(0, slash));
  const std::string wal = database + "-wal";
  WalWatch watch(epoll, inotify, timer, wal, wal.substr(slash == std::string::npos ? 0 : slash + 1));
  if (inotify < 0) return failed("inotify_init1");
  if (timer < 0) return failed("timerfd_create");
  for (int fd : {inotify, timer}) {
    epoll_event e{};
    e.events = EPOLLIN;
    e.data.fd = fd;
    if (::epoll_ctl(epoll, EPOLL_CTL_ADD, fd, &e) < 0) return failed("epoll_ctl");
  }
  if (::inotify_add_watch(inotify, dir.c_str(), IN_CREATE | IN_MOVED_TO) < 0)
    return failed("inotify_add_watch on '" + dir + "'");
  (void)::inotify_add_watch(inotify, wal.c_str(), IN_MODIFY);  // absent until a connection opens it in WAL mode
  return watch;
}

WalWatch::WalWatch(WalWatch&& other) noexcept
    : m_epoll(std::exchange(other.m_epoll, -1)),
      m_inotify(std::exchange(other.m_inotify, -1)),
      m_timer(std::exchange(other.m_timer, -1)),
      m_wal(std::move(other.m_wal)),
      m_walName(std::move(other.m_walName)) {}

WalWatch::~WalWatch() {
  for (int fd : {m_epoll, m_inotify, m_timer})
    if (fd >= 0) ::close(fd);
}

void WalWatch::readTimer() {
  std::uint64_t expiries = 0;
  (void)!::read(m_timer, &expiries, sizeof expiries);
}

bool WalWatch::drain() {
  bool any = false;
  alignas(inotify_event) char buffer[4096];
  for (;;) {
    const ssize_t n = ::read(m_inotify, buffer, sizeof buffer);
    if (n <= 0) break;  // EAGAIN: empty (an error: the periodic poll still captures)
    any = true;
    for (ssize_t at = 0; at < n;) {
      const auto* e = reinterpret_cast<const inotify_event*>(buffer + at);
      if ((e->mask & (IN_CREATE | IN_MOVED_TO)) != 0 && e->len > 0 && m_walName == e->name)
        (void)::inotify_add_watch(m_inotify, m_wal.c_str(), IN_MODIFY);
      at += static_cast<ssize_t>(sizeof(inotify_event) + e->len);
    }
  }
  return any;
}

void WalWatch::retryIn(std::chrono::microseconds delay) {
  itimerspec t{};
  t.it_value.tv_sec = static_cast<time_t>(delay.count() / 1000000);
  t.it_value.tv_nsec = static_cast<long>(delay.count() % 1000000) * 1000 + 1;  // zero would disarm
  (void)::timerfd_settime(m_timer, 0, &t, nullptr);
}

void WalWatch::cancelRetry() {
  itimerspec t{};
  (void)::timerfd_settime(m_timer, 0, &t, nullptr);
}

Result<void> Capture::load() {
  auto read = [&](const char* key) { return m_db.integer(fmt::format("SELECT value FROM {} WHERE key = '{}'", kState, key), 0); };
  auto last = read("last_sequence");
  auto change = read("last_change");
  auto acked = read("acked_sequence");
  if (!last) return std::unexpected(last.error());
  if (!change) return std::unexpected(change.error());
  if (!acked) return std::unexpected(acked.error());
  m_lastSequence = static_cast<uint64_t>(*last);
  m_lastChange = *change;
  m_acked = static_cast<uint64_t>(*acked);
  return {};
}

Result<void> Capture::saveState() {
  auto stmt = m_db.prepare(fmt::format("UPDATE {} SET value = ?2 WHERE key = ?1", kState));
  if (!stmt) return std::unexpected(stmt.error());
  for (auto [key, value] : {std::pair<const char*, int64_t>{"last_sequence", static_cast<int64_t>(m_lastSequence)},
                            {"last_change", m_lastChange},
                            {"acked_sequence", static_cast<int64_t>(m_acked)}}) {
    stmt->bind(1, key).bind(2, value);
    if (auto r = stmt->run(); !r) return r;
  }
  return {};
}

Result<void> Capture::start(uint64_t journaledThrough) {
  if (journaledThrough < m_acked)
    return fail(IPCSYNC_EINVAL,
                fmt::format("start: the journal holds change-sets through {} but crm was told through {} that they were "
                            "journaled and has forgotten them; the change-sets {}..{} are lost to the journal. Resynchronise "
                            "the subscribers with a snapshot, or restore the journal",
                            journaledThrough, m_acked, journaledThrough + 1, m_acked));
  if (journaledThrough > m_lastSequence) {
    const std::string message = fmt::format(
        "start: the journal holds change-sets through {} but this database only cut through {}; numbering continues "
        "at {} (was the database replaced?)", journaledThrough, m_lastSequence, journaledThrough + 1);
    m_services.log(m_services.host, IPCSYNC_LOG_WARN, message.c_str());
    const uint64_t before = m_lastSequence;
    m_lastSequence = journaledThrough;
    if (auto r = saveState(); !r) {
      m_lastSequence = before;
      return r;
    }
  }
  m_emittedThrough = journaledThrough;
  m_pending.reset();
  m_started = true;
  return {};
}

void Capture::stop() {
  m_started = false;
  m_pending.reset();
}

Result<void> Capture::cutInTransaction() {
  auto maxChange = m_db.integer(fmt::format("SELECT max(seq) FROM {}", kChangeLog), 0);
  if (!maxChange) return std::unexpected(maxChange.error());
  if (*maxChange <= m_lastChange) return {};
  auto boundary = m_db.prepare(fmt::format("SELECT seq FROM {} WHERE seq > ?1 ORDER BY seq LIMIT 1 OFFSET ?2", kChangeLog));
  auto record = m_db.prepare(fmt::format("INSERT INTO {}(sequence, first_change, last_change) VALUES (?1, ?2, ?3)", kEmitted));
  if (!boundary) return std::unexpected(boundary.error());
  if (!record) return std::unexpected(record.error());
  while (m_lastChange < *maxChange) {
    boundary->bind(1, m_lastChange).bind(2, m_settings.batchRows - 1);
    auto row = boundary->step();
    if (!row) return std::unexpected(row.error());
    const int64_t end = *row ? std::min(boundary->integer(0), *maxChange) : *maxChange;
    boundary->reset();
    record->bind(1, static_cast<int64_t>(m_lastSequence + 1)).bind(2, m_lastChange + 1).bind(3, end);
    if (auto r = record->run(); !r) return r;
    ++m_lastSequence;
    m_lastChange = end;
  }
  return saveState();
}

Result<void> Capture::cut() {
  auto maxChange = m_db.integer(fmt::format("SELECT max(seq) FROM {}", kChangeLog), 0);
  if (!maxChange) return std::unexpected(maxChange.error());
  if (*maxChange <= m_lastChange) return {};
  if (auto r = m_db.exec("BEGIN IMMEDIATE"); !r) return r;
  const uint64_t sequence = m_lastSequence;
  const int64_t change = m_lastChange;
  auto r = cutInTransaction();
  if (r) r = m_db.exec("COMMIT");
  readOwnWakeEvents();
  if (!r) {
    m_db.rollback();
    m_lastSequence = sequence;
    m_lastChange = change;
  }
  return r;
}

Result<Capture::Pending> Capture::build(uint64_t sequence) {
  auto range = m_db.prepare(fmt::format("SELECT first_change, last_change FROM {} WHERE sequence = ?1", kEmitted));
  if (!range) return std::unexpected(range.error());
  range->bind(1, static_cast<int64_t>(sequence));
  auto found = range->step();
  if (!found) return std::unexpected(found.error());
  if (!*found)
    return fail(IPCSYNC_EIO, fmt::format("change-set {} has no entry in {}: the database was changed behind crm's back",
                                         sequence, kEmitted));
  const int64_t first = range->integer(0), last = range->integer(1);

  const int width = changeLogWidth();
  auto rows = m_db.prepare(fmt::format("SELECT * FROM {} WHERE seq BETWEEN ?1 AND ?2 ORDER BY seq", kChangeLog));
  if (!rows) return std::unexpected(rows.error());
  rows->bind(1, first).bind(2, last);
  // Columns: seq, tbl, op, at, o0.., n0..
  const int oldAt = 4, newAt = oldAt + width;
  // Pieces are cut here, not with plugin_sdk::splitChangeset: that re-encodes through SQLite's
  // iterator, which drops an UPDATE's old values for unchanged columns (the whole old row must
  // reach the sync engine's row filters). A logged row (one change, or two for a changed key) is
  // encoded on its own first to know its size; a piece closes before it would pass the limit.
  plugin_sdk::ChangesetWriter piece, one;
  std::string pieceTable;
  Pending out;
  out.sequence = sequence;
  for (;;) {
    auto row = rows->step();
    if (!row) return std::unexpected(row.error());
    if (!*row) break;
    const std::string table = rows->text(1);
    const TableInfo* info = findCrmTable(table);
    if (!info) return fail(IPCSYNC_EIO, fmt::format("the change log names an unknown table '{}'", table));
    out.commitTimeUs = std::max(out.commitTimeUs, rows->integer(3));
    const int op = static_cast<int>(rows->integer(2));
    one.clear();
    if (auto r = addLogged(one, *info, op, rows->get(), oldAt, newAt); !r) return std::unexpected(r.error());
    if (one.empty()) continue;  // an UPDATE that wrote the same values
    size_t needed = one.bytes().size();
    if (!piece.empty() && pieceTable == info->name) needed -= tableHeaderBytes(*info);
    if (!piece.empty() && piece.bytes().size() + needed > m_settings.maxPieceBytes) {
      out.pieces.push_back(piece.bytes());
      piece.clear();
    }
    if (auto r = addLogged(piece, *info, op, rows->get(), oldAt, newAt); !r) return std::unexpected(r.error());
    pieceTable = info->name;
  }
  if (out.commitTimeUs == 0) out.commitTimeUs = nowUs();
  if (!piece.empty()) out.pieces.push_back(piece.bytes());
  if (out.pieces.empty()) out.pieces.emplace_back();  // nothing left after dropping no-op updates
  return out;
}

Result<bool> Capture::emitPending() {
  const char* provenance[] = {kOrigin};
  while (m_pending->next < m_pending->pieces.size()) {
    auto e = envelope(m_pending->sequence, m_pending->commitTimeUs, m_pending->pieces, m_pending->next, nullptr, provenance);
    ipcsync_error error{};
    const int status = m_services.emit(m_services.host, &e, &error);
    if (status == IPCSYNC_EBUSY) return false;
    if (status != IPCSYNC_OK)
      return fail(status, fmt::format("the host refused change-set {} piece {} of {}: {}", m_pending->sequence,
                                      m_pending->next, m_pending->pieces.size(), error.message));
    ++m_pending->next;
  }
  m_emittedThrough = m_pending->sequence;
  m_pending.reset();
  return true;
}

Result<void> Capture::poll(bool applyOpen) {
  if (!m_wake) return pollOnce(applyOpen);
  using Clock = std::chrono::steady_clock;
  // Events read here are another process's: crm reads those of its own commits right after them
  // (readOwnWakeEvents). An event is "unexplained" until a commit by another connection is seen.
  m_wake->readTimer();
  if (m_wake->drain()) m_unexplainedSince = Clock::now();
  const auto start = Clock::now();
  for (;;) {
    const std::optional<int64_t> seen = m_dataVersionAtCut;
    if (auto r = pollOnce(applyOpen); !r) return r;
    if (m_dataVersionAtCut != seen) m_unexplainedSince.reset();
    const auto now = Clock::now();
    if (m_wake->drain()) {  // a write made while this poll looked: look again
      m_unexplainedSince = now;
      if (now - start < kMaxWokenPoll) continue;
    }
    if (!m_unexplainedSince || applyOpen || m_pending) break;
    if (now - *m_unexplainedSince >= kCommitVisibleWithin) {
      // A write to the log and no commit after it: a transaction still open (spilling pages).
      // Its commit writes the log again, which wakes the host.
      m_unexplainedSince.reset();
      break;
    }
    // Not visible yet: the writer publishes its commit after the write that woke this process (and
    // after an fsync under synchronous=FULL). Poll again soon rather than block the host; less
    // often once the wait grows longer than a commit's fsync usually takes.
    m_retryDelay = now - *m_unexplainedSince < kRetryEvenlyFor
                       ? kFirstRetryDelay
                       : std::min(kMaxRetryDelay, std::max(kFirstRetryDelay, m_retryDelay * 2));
    m_wake->retryIn(m_retryDelay);
    return {};
  }
  if (m_retryDelay.count() != 0) {
    m_retryDelay = std::chrono::microseconds(0);
    m_wake->cancelRetry();
  }
  return {};
}

void Capture::readOwnWakeEvents() {
  if (m_wake) m_wake->drain();
}

Result<void> Capture::pollOnce(bool applyOpen) {
  if (!m_started) return fail(IPCSYNC_EINVAL, "poll: crm was not started; call start() first");
  if (m_deferredAck && !applyOpen) {
    const uint64_t sequence = *m_deferredAck;
    m_deferredAck.reset();
    if (auto r = acknowledgeNow(sequence); !r) return r;
  }
  for (int i = 0; i < kMaxChangeSetsPerPoll; ++i) {
    if (m_pending) {
      auto done = emitPending();
      if (!done) return std::unexpected(done.error());
      if (!*done) return {};
      continue;
    }
    if (m_emittedThrough >= m_lastSequence) {
      if (applyOpen) return {};
      auto version = m_db.integer("PRAGMA data_version", -1);
      if (!version) return std::unexpected(version.error());
      if (m_dataVersionAtCut == *version) return {};  // nobody committed since the last cut
      if (auto r = cut(); !r) return r;
      m_dataVersionAtCut = *version;
      if (m_emittedThrough >= m_lastSequence) return {};
    }
    auto built = build(m_emittedThrough + 1);
    if (!built) return std::unexpected(built.error());
    m_pending = std::move(*built);
  }
  return {};
}

Result<void> Capture::acknowledge(uint64_t sequence, bool applyOpen) {
  if (sequence > m_lastSequence)
    return fail(IPCSYNC_EINVAL, fmt::format("acknowledge: change-set {} was never emitted (crm cut through {}); "
                                            "acknowledge only what the journal holds", sequence, m_lastSequence));
  if (sequence <= m_acked) return {};
  if (applyOpen) {  // the apply transaction holds the write lock; forget at the next poll
    m_deferredAck = std::max(m_deferredAck.value_or(0), sequence);
    return {};
  }
  return acknowledgeNow(sequence);
}

Result<void> Capture::acknowledgeNow(uint64_t sequence) {
  if (sequence <= m_acked) return {};
  auto lastChange = m_db.integer(fmt::format("SELECT max(last_change) FROM {} WHERE sequence <= {}", kEmitted, sequence), -1);
  if (!lastChange) return std::unexpected(lastChange.error());
  if (auto r = m_db.exec("BEGIN IMMEDIATE"); !r) return r;
  const uint64_t before = m_acked;
  m_acked = sequence;
  Result<void> r;
  if (*lastChange >= 0) r = m_db.exec(fmt::format("DELETE FROM {} WHERE seq <= {}", kChangeLog, *lastChange));
  if (r) r = m_db.exec(fmt::format("DELETE FROM {} WHERE sequence <= {}", kEmitted, sequence));
  if (r) r = saveState();
  if (r) r = m_db.exec("COMMIT");
  readOwnWakeEvents();
  if (!r) {
    m_db.rollback();
    m_acked = before;
  }
  return r;
}

Result<uint64_t> Capture::snapshot(const TableInfo& table, const std::string& route, size_t maxPieceBytes) {
  if (auto r = m_db.exec("BEGIN IMMEDIATE"); !r) return std::unexpected(r.error());
  const uint64_t sequence = m_lastSequence;
  const int64_t change = m_lastChange;
  plugin_sdk::ChangesetWriter writer;
  auto inTransaction = [&]() -> Result<void> {
    if (auto r = cutInTransaction(); !r) return r;
    auto rows = m_db.prepare(fmt::format("SELECT * FROM {} ORDER BY rowid", quoteIdentifier(table.name)));
    if (!rows) return std::unexpected(rows.error());
    const int n = static_cast<int>(table.columns.size());
    std::vector<ipcsync_value> values(static_cast<size_t>(n));
    for (;;) {
      auto row = rows->step();
      if (!row) return std::unexpected(row.error());
      if (!*row) break;
      for (int i = 0; i < n; ++i) values[static_cast<size_t>(i)] = fromColumn(rows->get(), i);
      if (auto r = writer.add(table.name, n, table.primaryKey.data(), IPCSYNC_OP_INSERT, nullptr, values.data()); !r)
        return fail(IPCSYNC_EINTERNAL, "cannot encode a snapshot row: " + r.error());
    }
    return m_db.exec("COMMIT");
  };
  auto done = inTransaction();
  readOwnWakeEvents();
  if (auto r = done; !r) {
    m_db.rollback();
    m_lastSequence = sequence;
    m_lastChange = change;
    return std::unexpected(r.error());
  }
  const uint64_t asOf = m_lastSequence;
  auto pieces = plugin_sdk::splitChangeset(writer.bytes(), maxPieceBytes ? maxPieceBytes : m_settings.maxPieceBytes);
  if (!pieces) return fail(IPCSYNC_EINTERNAL, "cannot split the snapshot: " + pieces.error());
  if (pieces->empty()) pieces->emplace_back();  // an empty table is one empty piece
  const char* provenance[] = {kOrigin};
  const int64_t now = nowUs();
  for (size_t i = 0; i < pieces->size(); ++i) {
    auto e = envelope(asOf, now, *pieces, i, route.c_str(), provenance);
    ipcsync_error error{};
    const int status = m_services.emit_snapshot(m_services.host, &e, &error);
    if (status != IPCSYNC_OK)
      return fail(status, fmt::format("snapshot of '{}': the host refused piece {} of {} ({}); ask for the snapshot again",
                                      table.name, i, pieces->size(), error.message));
  }
  return asOf;
}

}  // namespace ipcsync::crm
