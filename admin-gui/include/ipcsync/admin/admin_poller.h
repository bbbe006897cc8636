// AdminPoller: attaches read-only to a namespace's admin segment and reads it on a timer.
//
// Every `interval` (150 ms by default) the poller copies the registry and the topic caches out of
// the segment (each record behind its sequence lock: a bounded read that never waits on the
// engine) and re-reads plugins.json and sync.json if they changed, then emits snapshotTaken().
//
// Threads: the poller lives on the thread that owns it (the GUI thread), and so do its signals,
// but it reads nothing there. A tick's reads (segment, status files) run on a reader thread, and
// the journal's on a second one, because a journal read may wait for a lock (up to `journalWait`)
// while the tick must go on. A tick that comes while the last read still runs is skipped, not
// queued; the snapshot carries the newest journal contents read so far. So the window never
// waits on the engine, the sync engine or the file system.
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
// opened read-only and queried at most once a second (JournalReader).
#pragma once

#include <QObject>
#include <QThread>
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
    std::chrono::milliseconds journalWait{1000};  // how long a journal read waits for a lock
  };

  explicit AdminPoller(Options options, QObject* parent = nullptr);
  ~AdminPoller() override;
  AdminPoller(const AdminPoller&) = delete;
  AdminPoller& operator=(const AdminPoller&) = delete;

  // Starts the timer and reads once at once.
  void start();
  void stop();
  // The last snapshot emitted (empty until the first read completes).
  const NamespaceSnapshot& last() const noexcept { return m_last; }
  // Snapshots emitted so far.
  std::uint64_t snapshots() const noexcept { return m_snapshots; }
  const Options& options() const noexcept { return m_options; }

 public Q_SLOTS:
  // Reads now (F5), whatever the timer says, the journal too; the snapshot follows when read.
  void refreshNow();

 Q_SIGNALS:
  void snapshotTaken(const ipcsync::admin::NamespaceSnapshot& snapshot);
  // Emitted when the engine comes or goes (and on the first read).
  void onlineChanged(bool online);

 private:
  // What the reader thread keeps between ticks; touched only by the one read in flight.
  struct ReaderState {
    std::unique_ptr<AdminSegment> segment;
    PluginsFile plugins;
    SyncFile sync;
  };

  void tick(bool forced);
  void read(NamespaceSnapshot& out);
  void onRead(NamespaceSnapshot next);
  void readJournal(const std::filesystem::path& path, bool force);
  // False, with `problem` set, when the segment's engine has ended or stopped ticking.
  bool usable(const AdminSegment& segment, std::uint64_t nowNs, QString& problem) const;
  // The directory plugins.json and sync.json are in.
  std::filesystem::path statusDir() const;

  Options m_options;
  QTimer m_timer;
  QThread m_readerThread, m_journalThread;
  QObject* m_readerContext;   // lives on m_readerThread: reads are queued to it
  QObject* m_journalContext;  // lives on m_journalThread
  ReaderState m_state;        // reader thread only, one read at a time
  JournalReader m_journal;    // journal thread only, one read at a time (cancel(): any thread)
  std::filesystem::path m_journalHandedPath;  // journal thread: what was last handed to the GUI thread
  std::uint64_t m_journalHandedReads = 0;
  QString m_journalHandedError;
  // GUI thread:
  NamespaceSnapshot m_last;
  JournalContents m_journalContents;  // the newest the journal thread handed over
  std::uint64_t m_snapshots = 0;
  bool m_reading = false, m_readAgain = false, m_journalReading = false;
  bool m_forceJournal = false, m_first = true;
};

}  // namespace ipcsync::admin
