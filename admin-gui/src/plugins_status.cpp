#include "ipcsync/admin/plugins_status.h"

#include "ipcsync/admin/state_file.h"


#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>

namespace ipcsync::admin {
namespace {

// A JSON value as it was written, for messages: 7, true, null, {...}; "nothing" when absent.
QString shown(const QJsonValue& v) {
  if (v.isUndefined()) return QStringLiteral("nothing");
  QByteArray text = QJsonDocument(QJsonArray{v}).toJson(QJsonDocument::Compact);  // "[7]"
  return QString::fromUtf8(text.mid(1, text.size() - 2));
}

// Reads `key` of the object at `where` as a string; null or absent is accepted when `optional`.
bool readString(const QJsonObject& o, const QString& where, const char* key, bool optional, QString& out, QString& error) {
  const QJsonValue v = o.value(QLatin1String(key));
  if (v.isString()) {
    out = v.toString();
    return true;
  }
  if (optional && (v.isNull() || v.isUndefined())) return true;
  error = QStringLiteral("%1.%2: expected a string%3, found %4")
              .arg(where)
              .arg(QLatin1String(key))
              .arg(optional ? QStringLiteral(" or null") : QString())
              .arg(shown(v));
  return false;
}

std::optional<PluginInstance> parseInstance(const QJsonObject& o, const QString& where, QString& error) {
  PluginInstance p;
  if (!readString(o, where, "name", false, p.name, error) || !readString(o, where, "library", false, p.library, error) ||
      !readString(o, where, "state", false, p.state, error) || !readString(o, where, "last_exit", true, p.lastExit, error) ||
      !readString(o, where, "message", true, p.message, error) || !readString(o, where, "since", true, p.since, error) ||
      !readString(o, where, "restart_at", true, p.restartAt, error))
    return std::nullopt;
  const QJsonValue pid = o.value("pid");
  if (pid.isDouble()) p.pid = pid.toInteger();
  else if (!pid.isNull() && !pid.isUndefined()) {
    error = QStringLiteral("%1.pid: expected a number or null").arg(where);
    return std::nullopt;
  }
  const QJsonValue restarts = o.value("restarts");
  if (!restarts.isDouble() && !restarts.isUndefined()) {
    error = QStringLiteral("%1.restarts: expected a number").arg(where);
    return std::nullopt;
  }
  p.restarts = restarts.toInteger();
  return p;
}

}  // namespace

std::optional<PluginsStatus> parsePluginsJson(const QByteArray& document, QString& error) {
  QJsonParseError pe{};
  const QJsonDocument doc = QJsonDocument::fromJson(document, &pe);
  if (pe.error != QJsonParseError::NoError) {
    error = QStringLiteral("not JSON at byte %1: %2").arg(pe.offset).arg(pe.errorString());
    return std::nullopt;
  }
  if (!doc.isObject()) {
    error = QStringLiteral("expected a JSON object with \"instances\" and \"available\"");
    return std::nullopt;
  }
  const QJsonObject root = doc.object();
  if (!root.value("instances").isArray()) {
    error = QStringLiteral("\"instances\": expected an array");
    return std::nullopt;
  }
  PluginsStatus out;
  const QJsonArray list = root.value("instances").toArray();
  for (qsizetype i = 0; i < list.size(); ++i) {
    if (!list[i].isObject()) {
      error = QStringLiteral("instances[%1]: expected an object").arg(i);
      return std::nullopt;
    }
    auto p = parseInstance(list[i].toObject(), QStringLiteral("instances[%1]").arg(i), error);
    if (!p) return std::nullopt;
    out.instances.push_back(std::move(*p));
  }
  const QJsonValue sync = root.value("sync");
  if (sync.isObject()) {
    auto p = parseInstance(sync.toObject(), QStringLiteral("sync"), error);
    if (!p) return std::nullopt;
    out.sync = std::move(*p);
  } else if (!sync.isNull() && !sync.isUndefined()) {
    error = QStringLiteral("\"sync\": expected an object or null");
    return std::nullopt;
  }
  const QJsonValue available = root.value("available");
  if (!available.isUndefined()) {
    if (!available.isArray()) {
      error = QStringLiteral("\"available\": expected an array of file names");
      return std::nullopt;
    }
    const QJsonArray files = available.toArray();
    for (qsizetype i = 0; i < files.size(); ++i) {
      if (!files[i].isString()) {
        error = QStringLiteral("available[%1]: expected a file name (string)").arg(i);
        return std::nullopt;
      }
      out.available.push_back(files[i].toString());
    }
  }
  return out;
}

const PluginsStatus& PluginsFile::refresh(const std::filesystem::path& path) {
  return refreshStateFile(m_stamp, path, m_status, parsePluginsJson,
                          "The daemon rewrites this file whole on every change: check what else writes it.");
}

void PluginsFile::clear() {
  const auto path = m_status.path;
  m_status = {};  // every member, the sync engine's too
  m_status.path = path;
  m_stamp.forget();
}

}  // namespace ipcsync::admin
