// refreshStateFile: the one way the console reads a state file its writer replaces whole
// (plugins.json, sync.json): again only when its FileStamp says it changed.
#pragma once

#include <QFile>
#include <QString>
#include <filesystem>

#include "ipcsync/admin/file_stamp.h"

namespace ipcsync::admin {

// `Status` has `path`, `present` and `error`; `parse(bytes, error)` returns std::optional<Status>.
// A missing file leaves an empty status (path kept); an unreadable or malformed one keeps the last
// good content, with `error` naming the file, what was wrong and `advice` on what to check.
template <class Status, class Parse>
const Status& refreshStateFile(FileStamp& stamp, const std::filesystem::path& path, Status& status, Parse parse,
                               const char* advice) {
  if (path != status.path) stamp.forget();
  switch (stamp.look(path)) {
    case FileStamp::Look::Missing:
      status = {};
      status.path = path;
      return status;
    case FileStamp::Look::Unchanged: return status;
    case FileStamp::Look::Changed: break;
  }
  status.path = path;
  status.present = true;
  const QString where = QString::fromStdString(path.string());
  QFile file(where);
  if (!file.open(QIODevice::ReadOnly)) {
    status.error = QStringLiteral("%1: cannot read (%2); showing the last good content. Check the file's permissions.")
                       .arg(where, file.errorString());
    return status;
  }
  QString error;
  auto parsed = parse(file.readAll(), error);
  if (!parsed) {
    status.error = QStringLiteral("%1: %2; showing the last good content. %3").arg(where, error, QString::fromUtf8(advice));
    return status;
  }
  parsed->path = path;
  parsed->present = true;
  status = std::move(*parsed);
  return status;
}

}  // namespace ipcsync::admin
