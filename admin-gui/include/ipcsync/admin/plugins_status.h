// PluginsStatus: the daemon's plugins.json (docs/design/supervision.md), as the console shows it.
//
// PluginsFile reads <runtime-dir>/<namespace>/plugins.json, re-parsing only when the file changed
// (inode, size or modification time; the daemon replaces it by rename). A document that does not
// parse or lacks a field keeps the last good content and reports what was wrong and where.
// Not thread-safe; plain values otherwise.
#pragma once

#include <QString>
#include <QStringList>

#include <cstdint>
#include <filesystem>
#include <optional>
#include <vector>

#include "ipcsync/admin/file_stamp.h"

namespace ipcsync::admin {

struct PluginInstance {
  QString name;
  QString library;
  QString state;  // starting, running, restarting, failed, stopping, stopped
  std::optional<std::int64_t> pid;
  std::int64_t restarts = 0;
  QString lastExit;  // empty when none ended yet
  QString message;
  QString since;
  QString restartAt;  // only while restarting

  friend bool operator==(const PluginInstance&, const PluginInstance&) = default;
};

struct PluginsStatus {
  std::filesystem::path path;  // where it was (or would be) read
  bool present = false;        // the file exists
  QString error;               // empty when the last read parsed; else what was wrong, where, what to do
  std::vector<PluginInstance> instances;
  QStringList available;       // *.so in plugins_dir that no instance uses
  std::optional<PluginInstance> sync;  // the sync engine (member "sync"); none without routes
};

// Parses a plugins.json document. On failure returns nothing and sets `error` to a message naming
// the offset or the field.
std::optional<PluginsStatus> parsePluginsJson(const QByteArray& document, QString& error);

class PluginsFile {
 public:
  // Reads `path` if it changed since the last call. A missing file empties the content (the daemon
  // removes it on a clean stop); an unreadable or malformed one keeps the last good content.
  const PluginsStatus& refresh(const std::filesystem::path& path);
  // Forgets the content (e.g. the engine went away, so the file is stale).
  void clear();
  const PluginsStatus& status() const noexcept { return m_status; }

 private:
  PluginsStatus m_status;
  FileStamp m_stamp;
};

}  // namespace ipcsync::admin
