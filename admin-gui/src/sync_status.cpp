#include "ipcsync/admin/sync_status.h"

#include "ipcsync/admin/state_file.h"


#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>

namespace ipcsync::admin {
namespace {

// Reads fields of one JSON object, remembering the first one that has the wrong type.
class Fields {
 public:
  Fields(const QJsonObject& o, QString where, QString& error) : m_o(o), m_where(std::move(where)), m_error(error) {}
  bool ok() const { return m_ok; }
  std::uint64_t count(const char* key) {
    const QJsonValue v = m_o.value(QLatin1String(key));
    if (v.isUndefined() || v.isNull()) return 0;
    if (!v.isDouble() || v.toDouble() < 0) return fail(key, "a number of 0 or more"), 0;
    return static_cast<std::uint64_t>(v.toDouble());
  }
  double rate(const char* key) {
    const QJsonValue v = m_o.value(QLatin1String(key));
    if (v.isUndefined() || v.isNull()) return 0;
    if (!v.isDouble()) return fail(key, "a number"), 0;
    return v.toDouble();
  }
  bool flag(const char* key) {
    const QJsonValue v = m_o.value(QLatin1String(key));
    if (v.isUndefined() || v.isNull()) return false;
    if (!v.isBool()) return fail(key, "true or false"), false;
    return v.toBool();
  }
  QString text(const char* key, bool required = false) {
    const QJsonValue v = m_o.value(QLatin1String(key));
    if (!required && (v.isUndefined() || v.isNull())) return {};
    if (!v.isString()) return fail(key, "a string"), QString();
    return v.toString();
  }

 private:
  void fail(const char* key, const char* expected) {
    if (!m_ok) return;
    m_ok = false;
    m_error = QStringLiteral("%1%2: expected %3").arg(m_where, QLatin1String(key), QLatin1String(expected));
  }
  const QJsonObject& m_o;
  QString m_where;
  QString& m_error;
  bool m_ok = true;
};

bool objectList(const QJsonObject& root, const char* key, QJsonArray& out, QString& error) {
  const QJsonValue v = root.value(QLatin1String(key));
  if (v.isUndefined() || v.isNull()) return true;
  if (!v.isArray()) {
    error = QStringLiteral("\"%1\": expected an array").arg(QLatin1String(key));
    return false;
  }
  out = v.toArray();
  for (qsizetype i = 0; i < out.size(); ++i)
    if (!out[i].isObject()) {
      error = QStringLiteral("%1[%2]: expected an object").arg(QLatin1String(key)).arg(i);
      return false;
    }
  return true;
}

}  // namespace

std::optional<SyncStatus> parseSyncJson(const QByteArray& document, QString& error) {
  QJsonParseError pe{};
  const QJsonDocument doc = QJsonDocument::fromJson(document, &pe);
  if (pe.error != QJsonParseError::NoError) {
    error = QStringLiteral("not JSON at byte %1: %2").arg(pe.offset).arg(pe.errorString());
    return std::nullopt;
  }
  if (!doc.isObject()) {
    error = QStringLiteral("expected a JSON object with \"journal\", \"sources\" and \"routes\"");
    return std::nullopt;
  }
  const QJsonObject root = doc.object();
  SyncStatus out;
  out.pid = root.value("pid").toInteger();
  if (root.contains("journal")) {
    if (!root.value("journal").isObject()) {
      error = QStringLiteral("\"journal\": expected an object");
      return std::nullopt;
    }
    const QJsonObject j = root.value("journal").toObject();
    Fields f(j, QStringLiteral("journal."), error);
    out.journal = {f.text("path"), f.count("entries"), f.count("bytes"), f.count("head"), f.count("max_bytes"),
                   f.flag("nearly_full")};
    if (!f.ok()) return std::nullopt;
  }
  QJsonArray sources, routes;
  if (!objectList(root, "sources", sources, error) || !objectList(root, "routes", routes, error)) return std::nullopt;
  for (qsizetype i = 0; i < sources.size(); ++i) {
    const QJsonObject o = sources[i].toObject();
    Fields f(o, QStringLiteral("sources[%1].").arg(i), error);
    SyncSource s{f.text("instance", true), f.flag("connected"), f.count("emitted"), f.count("journaled")};
    if (!f.ok()) return std::nullopt;
    out.sources.push_back(std::move(s));
  }
  for (qsizetype i = 0; i < routes.size(); ++i) {
    const QJsonObject o = routes[i].toObject();
    Fields f(o, QStringLiteral("routes[%1].").arg(i), error);
    SyncRoute r;
    r.route = f.text("route", true);
    r.source = f.text("source", true);
    r.subscriber = f.text("subscriber", true);
    r.connected = f.flag("connected");
    r.cursor = f.count("cursor");
    r.lagChangesets = f.count("lag_changesets");
    r.lagMs = f.count("lag_ms");
    r.applied = f.count("applied");
    r.appliedPerS = f.rate("applied_per_s");
    r.rows = f.count("rows");
    r.rowsPerS = f.rate("rows_per_s");
    r.duplicates = f.count("duplicates");
    r.conflicts = f.count("conflicts");
    r.errors = f.count("errors");
    r.deadLetters = f.count("dead_letters");
    r.lastError = f.text("last_error");
    r.problem = f.text("problem");
    if (!f.ok()) return std::nullopt;
    out.routes.push_back(std::move(r));
  }
  return out;
}

const SyncStatus& SyncFile::refresh(const std::filesystem::path& path) {
  return refreshStateFile(m_stamp, path, m_status, parseSyncJson,
                          "ipcsync-sync rewrites this file whole every 200 ms: check what else writes it.");
}

void SyncFile::clear() {
  const auto path = m_status.path;
  m_status = {};
  m_status.path = path;
  m_stamp.forget();
}

}  // namespace ipcsync::admin
