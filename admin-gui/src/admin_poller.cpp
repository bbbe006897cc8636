#include "ipcsync/admin/admin_poller.h"

#include <signal.h>
#include <time.h>

#include <cerrno>

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

AdminPoller::AdminPoller(Options options, QObject* parent) : QObject(parent), m_options(std::move(options)) {
  m_timer.setInterval(m_options.interval);
  m_timer.setTimerType(Qt::PreciseTimer);
  connect(&m_timer, &QTimer::timeout, this, &AdminPoller::refreshNow);
}

AdminPoller::~AdminPoller() = default;

void AdminPoller::start() {
  m_timer.start();
  refreshNow();
}

void AdminPoller::stop() { m_timer.stop(); }

std::filesystem::path AdminPoller::statusDir() const {
  const std::string ns = m_options.ns.toStdString();
  if (!m_options.runtimeDir.empty()) return m_options.runtimeDir / ns;
  if (m_segment) {
    const std::filesystem::path socket = m_segment->engine().socketPath;
    if (!socket.empty()) return socket.parent_path();
  }
  return defaultRuntimeDir() / ns;
}

std::filesystem::path AdminPoller::pluginsPath() const { return statusDir() / "plugins.json"; }

void AdminPoller::read(NamespaceSnapshot& out) {
  const std::string ns = m_options.ns.toStdString();
  out.ns = m_options.ns;
  out.takenAtNs = clockNs(CLOCK_REALTIME);
  out.monotonicNs = clockNs(CLOCK_MONOTONIC);

  if (m_segment && !usable(*m_segment, out.takenAtNs, out.problem)) m_segment.reset();
  if (!m_segment && out.problem.isEmpty()) {
    auto opened = AdminSegment::open(ns);
    if (!opened) out.problem = QString::fromStdString(opened.error().message());
    else if (usable(**opened, out.takenAtNs, out.problem)) m_segment = std::move(*opened);
  }
  if (!m_segment) {
    m_plugins.clear();
    out.plugins = m_plugins.status();
    out.plugins.path = pluginsPath();
    m_sync.clear();
    out.sync = m_sync.status();
    out.sync.path = statusDir() / "sync.json";
    out.journal = m_journal.refresh({});
    return;
  }
  out.online = true;
  out.engine = m_segment->engine();
  out.capacity = m_segment->capacity();
  out.heartbeatNs = m_segment->heartbeatNs();
  out.records = m_segment->snapshot();
  out.caches = m_segment->caches();
  out.plugins = m_plugins.refresh(pluginsPath());
  out.sync = m_sync.refresh(statusDir() / "sync.json");
  if (out.sync.present && out.sync.error.isEmpty() && out.sync.pid > 0 &&
      ::kill(static_cast<pid_t>(out.sync.pid), 0) != 0 && errno == ESRCH)
    out.sync.error = QStringLiteral("%1 was written by ipcsync-sync pid %2, which has ended: the figures are its last "
                                    "ones; the daemon restarts it (see the Plugins pane) or it was stopped")
                         .arg(QString::fromStdString(out.sync.path.string()))
                         .arg(out.sync.pid);
  const std::string journal = out.sync.present ? out.sync.journal.path.toStdString() : std::string();
  out.journal = m_journal.refresh(journal, m_forceJournal);
  m_forceJournal = false;
}

void AdminPoller::refreshNow() {
  if (!m_first) m_forceJournal = sender() != &m_timer;  // F5 reads the journal now
  NamespaceSnapshot next;
  const std::uint64_t began = clockNs(CLOCK_MONOTONIC);
  read(next);
  next.readCostNs = clockNs(CLOCK_MONOTONIC) - began;
  const bool changed = m_first || next.online != m_last.online;
  m_first = false;
  m_last = std::move(next);
  if (changed) Q_EMIT onlineChanged(m_last.online);
  Q_EMIT snapshotTaken(m_last);
}

}  // namespace ipcsync::admin
