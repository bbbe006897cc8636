#include "ipcsync/admin/admin_poller.h"

#include <signal.h>
#include <time.h>

#include <cerrno>
#include <memory>

#include "ipcsync/ipccore/engine_config.h"

namespace ipcsync::admin {
namespace {

std::uint64_t clockNs(clockid_t clock) {
  timespec ts{};
  ::clock_gettime(clock, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000'000ULL + static_cast<std::uint64_t>(ts.tv_nsec);
}

}  // namespace

bool AdminPoller::usable(const AdminSegment& segment, std::uint64_t nowNs, QString& problem) const {
  const std::uint64_t beat = segment.heartbeatNs();
  const auto staleNs = static_cast<std::uint64_t>(std::chrono::nanoseconds(m_options.staleAfter).count());
  if (!segment.engineAlive()) {
    problem = QStringLiteral("the engine (pid %1) of namespace '%2' has ended").arg(segment.engine().pid).arg(m_options.ns);
    return false;
  }
  if (nowNs > beat && nowNs - beat > staleNs) {
    problem = QStringLiteral("the engine (pid %1) of namespace '%2' has not ticked for %3 s (stopped or hung?)")
                  .arg(segment.engine().pid)
                  .arg(m_options.ns)
                  .arg(static_cast<double>(nowNs - beat) / 1e9, 0, 'f', 1);
    return false;
  }
  return true;
}

AdminPoller::AdminPoller(Options options, QObject* parent)
    : QObject(parent),
      m_options(std::move(options)),
      m_readerContext(new QObject),
      m_journalContext(new QObject),
      m_journal(std::chrono::seconds(1), m_options.journalWait) {
  m_timer.setInterval(m_options.interval);
  m_timer.setTimerType(Qt::PreciseTimer);
  connect(&m_timer, &QTimer::timeout, this, [this] { tick(false); });
  m_readerThread.setObjectName(QStringLiteral("ipcsync-admin reader"));
  m_journalThread.setObjectName(QStringLiteral("ipcsync-admin journal"));
  m_readerContext->moveToThread(&m_readerThread);
  m_journalContext->moveToThread(&m_journalThread);
}

AdminPoller::~AdminPoller() {
  m_timer.stop();
  m_journal.cancel();  // a journal read waiting for a lock gives up now
  m_readerThread.quit();
  m_journalThread.quit();
  m_readerThread.wait();
  m_journalThread.wait();
  delete m_readerContext;  // their threads have ended; events still queued to them go too
  delete m_journalContext;
}

void AdminPoller::start() {
  if (!m_readerThread.isRunning()) m_readerThread.start();
  if (!m_journalThread.isRunning()) m_journalThread.start();
  m_timer.start();
  tick(false);
}

void AdminPoller::stop() { m_timer.stop(); }

void AdminPoller::refreshNow() { tick(true); }

void AdminPoller::tick(bool forced) {
  if (forced && !m_first) m_forceJournal = true;  // F5 reads the journal now
  if (m_reading) {  // the last read still runs: skip this tick, or run once more right after it for F5
    m_readAgain = m_readAgain || forced;
    return;
  }
  m_reading = true;
  QMetaObject::invokeMethod(
      m_readerContext,
      [this] {
        auto next = std::make_shared<NamespaceSnapshot>();
        const std::uint64_t began = clockNs(CLOCK_MONOTONIC);
        read(*next);
        next->readCostNs = clockNs(CLOCK_MONOTONIC) - began;
        QMetaObject::invokeMethod(this, [this, next] { onRead(std::move(*next)); }, Qt::QueuedConnection);
      },
      Qt::QueuedConnection);
}

void AdminPoller::readJournal(const std::filesystem::path& path, bool force) {
  if (m_journalReading) return;  // a force stays pending for the next one
  m_journalReading = true;
  if (force) m_forceJournal = false;
  QMetaObject::invokeMethod(
      m_journalContext,
      [this, path, force] {
        const JournalContents& c = m_journal.refresh(path, force);
        // Hand over only what changed: a read within the interval returns the same contents.
        std::shared_ptr<JournalContents> fresh;
        if (c.path != m_journalHandedPath || c.reads != m_journalHandedReads || c.error != m_journalHandedError) {
          fresh = std::make_shared<JournalContents>(c);
          m_journalHandedPath = c.path;
          m_journalHandedReads = c.reads;
          m_journalHandedError = c.error;
        }
        QMetaObject::invokeMethod(
            this,
            [this, fresh] {
              m_journalReading = false;
              if (fresh) m_journalContents = std::move(*fresh);
            },
            Qt::QueuedConnection);
      },
      Qt::QueuedConnection);
}

std::filesystem::path AdminPoller::statusDir() const {
  const std::string ns = m_options.ns.toStdString();
  if (!m_options.runtimeDir.empty()) return m_options.runtimeDir / ns;
  if (m_state.segment) {
    const std::filesystem::path socket = m_state.segment->engine().socketPath;
    if (!socket.empty()) return socket.parent_path();
  }
  return defaultRuntimeDir() / ns;
}

void AdminPoller::read(NamespaceSnapshot& out) {
  const std::string ns = m_options.ns.toStdString();
  out.ns = m_options.ns;
  out.takenAtNs = clockNs(CLOCK_REALTIME);
  out.monotonicNs = clockNs(CLOCK_MONOTONIC);
  auto& segment = m_state.segment;

  if (segment && !usable(*segment, out.takenAtNs, out.problem)) segment.reset();
  if (!segment && out.problem.isEmpty()) {
    auto opened = AdminSegment::open(ns);
    if (!opened) out.problem = QString::fromStdString(opened.error().message());
    else if (usable(**opened, out.takenAtNs, out.problem)) segment = std::move(*opened);
  }
  if (!segment) {
    m_state.plugins.clear();
    out.plugins = m_state.plugins.status();
    out.plugins.path = statusDir() / "plugins.json";
    m_state.sync.clear();
    out.sync = m_state.sync.status();
    out.sync.path = statusDir() / "sync.json";
    return;
  }
  out.online = true;
  out.engine = segment->engine();
  out.capacity = segment->capacity();
  out.heartbeatNs = segment->heartbeatNs();
  out.records = segment->snapshot();
  out.caches = segment->caches();
  out.plugins = m_state.plugins.refresh(statusDir() / "plugins.json");
  out.sync = m_state.sync.refresh(statusDir() / "sync.json");
  if (out.sync.present && out.sync.error.isEmpty() && out.sync.pid > 0 &&
      ::kill(static_cast<pid_t>(out.sync.pid), 0) != 0 && errno == ESRCH)
    out.sync.error = QStringLiteral("%1 was written by ipcsync-sync pid %2, which has ended: the figures are its last "
                                    "ones; the daemon restarts it (see the Plugins pane) or it was stopped")
                         .arg(QString::fromStdString(out.sync.path.string()))
                         .arg(out.sync.pid);
}

void AdminPoller::onRead(NamespaceSnapshot next) {
  m_reading = false;
  // The journal sync.json names: its newest contents so far, and a read on the journal thread
  // when one is due (JournalReader keeps to once a second unless forced).
  const std::filesystem::path journal =
      next.online && next.sync.present ? std::filesystem::path(next.sync.journal.path.toStdString()) : std::filesystem::path();
  readJournal(journal, m_forceJournal);
  if (m_journalContents.path == journal) next.journal = m_journalContents;
  else next.journal.path = journal;  // not read yet: no rows

  const bool changed = m_first || next.online != m_last.online;
  m_first = false;
  m_last = std::move(next);
  ++m_snapshots;
  if (changed) Q_EMIT onlineChanged(m_last.online);
  Q_EMIT snapshotTaken(m_last);
  if (m_readAgain) {
    m_readAgain = false;
    tick(false);
  }
}

}  // namespace ipcsync::admin
