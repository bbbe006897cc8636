// AdminPoller: attaches read-only to a namespace's admin segment and reads it on a timer.
//
// Every `interval` (150 ms by default) the poller copies the registry and the topic caches out of
// the segment (each record behind its sequence lock: a bounded read that never waits on the
// engine) and re-reads plugins.json if it changed, then emits snapshotTaken(). It runs on the
// thread that owns it (the GUI thread); a tick costs tens of microseconds.
//
// The engine counts as gone when the segment is missing, its engine pid is dead (or reused), or
// its heartbeat is older than `staleAfter` (1 s). The poller then drops its mapping, emits an
// offline snapshot, and tries to open the namespace again on every tick, so it reattaches by
// itself to a new engine (a new segment, a new pid). It never writes the segment.
//
// plugins.json is read from <runtimeDir>/<ns>/plugins.json when a runtime directory is given,
// else from the directory of the engine's socket as the segment names it (the daemon writes the
// file beside engine.sock), else from the default runtime directory. sync.json is read from the
// same directory (marked stale when the pid that wrote it has ended); the journal it names is
// opened read-only and queried at most once a second.
#pragma once

#include <QObject>
#include <QTimer>

#include <chrono>
#include <filesystem>
#include <memory>

#include "ipcsync/admin/namespace_snapshot.h"
#include "ipcsync/admin/plugins_status.h"
#include "ipcsync/ipccore/admin_segment.h"

namespace ipcsync::admin {

class AdminPoller : public QObject {
  Q_OBJECT

 public:
  struct Options {
    QString ns = QStringLiteral("default");
    std::filesystem::path runtimeDir;  // empty: as the segment says, else the default
    std::chrono::milliseconds interval{150};
    std::chrono::milliseconds staleAfter{1000};
  };

  explicit AdminPoller(Options options, QObject* parent = nullptr);
  ~AdminPoller() override;
  AdminPoller(const AdminPoller&) = delete;
  AdminPoller& operator=(const AdminPoller&) = delete;

  // Starts the timer and reads once at once.
  void start();
  void stop();
  const NamespaceSnapshot& last() const noexcept { return m_last; }
  const Options& options() const noexcept { return m_options; }

 public Q_SLOTS:
  // Reads now (F5), whatever the timer says.
  void refreshNow();

 Q_SIGNALS:
  void snapshotTaken(const ipcsync::admin::NamespaceSnapshot& snapshot);
  // Emitted when the engine comes or goes (and on the first read).
  void onlineChanged(bool online);

 private:
  void read(NamespaceSnapshot& out);
  // False, with `problem` set, when the segment's engine has ended or stopped ticking.
  bool usable(const AdminSegment& segment, std::uint64_t nowNs, QString& problem) const;
  std::filesystem::path pluginsPath() const;
  // The directory plugins.json and sync.json are in.
  std::filesystem::path statusDir() const;

  Options m_options;
  QTimer m_timer;
  std::unique_ptr<AdminSegment> m_segment;
  PluginsFile m_plugins;
  SyncFile m_sync;
  JournalReader m_journal;
  NamespaceSnapshot m_last;
  bool m_first = true;
  bool m_forceJournal = false;
};

}  // namespace ipcsync::admin
