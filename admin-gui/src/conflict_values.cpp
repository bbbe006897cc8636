#include "ipcsync/admin/conflict_values.h"

#include <QByteArray>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>

#include <algorithm>
#include <cstdint>
#include <expected>
#include <optional>
#include <set>
#include <string>

#include "ipcsync/plugin_sdk/changeset.h"

namespace ipcsync::admin {
namespace {

QJsonObject objectOf(const QString& json) {
  const QJsonDocument doc = QJsonDocument::fromJson(json.toUtf8());
  return doc.isObject() ? doc.object() : QJsonObject();
}

bool rowPresent(const QString& json) { return QJsonDocument::fromJson(json.toUtf8()).isObject(); }

// Values as the crm plugin writes them into the JSON (BLOBs as {"$blob": hex}).
QJsonValue jsonOf(const ipcsync_value& v) {
  switch (v.type) {
    case IPCSYNC_VALUE_INTEGER: return QJsonValue(static_cast<qint64>(v.integer));
    case IPCSYNC_VALUE_FLOAT: return QJsonValue(v.real);
    case IPCSYNC_VALUE_TEXT:
      return QJsonValue(QString::fromUtf8(static_cast<const char*>(v.bytes), static_cast<qsizetype>(v.size)));
    case IPCSYNC_VALUE_BLOB: {
      const QByteArray bytes(static_cast<const char*>(v.bytes), static_cast<qsizetype>(v.size));
      return QJsonObject{{QStringLiteral("$blob"), QString::fromLatin1(bytes.toHex())}};
    }
    case IPCSYNC_VALUE_NULL: return QJsonValue(QJsonValue::Null);
    default: return QJsonValue(QJsonValue::Undefined);
  }
}

// Equal as values: 5 and 5.0 are the same number.
bool same(const QJsonValue& a, const QJsonValue& b) {
  if (a.isDouble() && b.isDouble()) return a.toDouble() == b.toDouble();
  return a == b;
}

struct Decoded {
  int op = 0;
  std::vector<bool> pk;
  std::vector<QJsonValue> oldV, newV;
};

// The first change of `change`, through the plugin SDK's reader, which checks the whole structure
// first (SQLite 3.40's own iterator never returns on a table header cut short).
std::optional<Decoded> decode(const void* change, std::size_t size, QString& note) {
  if (!change || size == 0) {
    note = QStringLiteral("the parked change is empty, so the base values are unknown");
    return std::nullopt;
  }
  auto reader = plugin_sdk::ChangesetReader::open({static_cast<const unsigned char*>(change), size});
  ipcsync_change c{};
  c.struct_size = sizeof c;
  std::expected<bool, std::string> got = reader ? reader->next(c) : std::unexpected(reader.error());
  if (!got || !*got || c.column_count <= 0) {
    note = QStringLiteral("the parked change is not a changeset SQLite can read (%1), so the base values are unknown")
               .arg(!got ? QString::fromStdString(got.error()) : QStringLiteral("it holds no change"));
    return std::nullopt;
  }
  Decoded d;
  d.op = c.op;
  for (int i = 0; i < c.column_count; ++i) {
    const auto u = static_cast<std::size_t>(i);
    d.pk.push_back(c.primary_key[u] != 0);
    d.oldV.push_back(c.old_values ? jsonOf(c.old_values[u]) : QJsonValue(QJsonValue::Undefined));
    d.newV.push_back(c.new_values ? jsonOf(c.new_values[u]) : QJsonValue(QJsonValue::Undefined));
  }
  return d;
}

}  // namespace

QString displayValue(const QJsonValue& value) {
  switch (value.type()) {
    case QJsonValue::Undefined: return {};
    case QJsonValue::Null: return QStringLiteral("NULL");
    case QJsonValue::String: return value.toString();
    case QJsonValue::Bool: return value.toBool() ? QStringLiteral("true") : QStringLiteral("false");
    case QJsonValue::Double: {
      const double d = value.toDouble();
      const auto i = value.toInteger();
      return static_cast<double>(i) == d ? QString::number(i) : QString::number(d, 'g', 17);
    }
    case QJsonValue::Object:
      if (const QJsonObject o = value.toObject(); o.size() == 1 && o.contains(QStringLiteral("$blob")))
        return QStringLiteral("x'%1'").arg(o.value(QStringLiteral("$blob")).toString());
      return QString::fromUtf8(QJsonDocument(value.toObject()).toJson(QJsonDocument::Compact));
    case QJsonValue::Array: return QString::fromUtf8(QJsonDocument(value.toArray()).toJson(QJsonDocument::Compact));
  }
  return {};
}

ConflictSides sideBySide(const QString& keyJson, const QString& sourceJson, const QString& targetJson, const void* change,
                         std::size_t size) {
  ConflictSides out;
  const QJsonObject key = objectOf(keyJson), source = objectOf(sourceJson), target = objectOf(targetJson);
  const bool hasTarget = rowPresent(targetJson);
  const std::optional<Decoded> d = decode(change, size, out.note);
  const auto undefined = QJsonValue(QJsonValue::Undefined);

  // Name each value of the change: key columns against key_json, the others against the JSON that
  // holds them (UPDATE and INSERT: source_json; DELETE: target_json), unique matches first.
  const int n = d ? static_cast<int>(d->pk.size()) : 0;
  std::vector<QString> names(static_cast<std::size_t>(n));
  std::vector<QJsonValue> probe(static_cast<std::size_t>(n));
  std::vector<const QJsonObject*> pool(static_cast<std::size_t>(n), nullptr);
  for (int i = 0; i < n; ++i) {
    const auto u = static_cast<std::size_t>(i);
    const bool insert = d->op == IPCSYNC_OP_INSERT;
    probe[u] = insert || (d->op == IPCSYNC_OP_UPDATE && !d->pk[u]) ? d->newV[u] : d->oldV[u];
    if (probe[u].isUndefined()) continue;  // an UPDATE's unchanged column: not in the change
    pool[u] = d->pk[u] ? &key : d->op == IPCSYNC_OP_DELETE ? &target : &source;
  }
  std::set<QString> taken;
  auto free = [&](const QJsonObject& obj, int i) {
    std::vector<QString> c;
    for (auto it = obj.begin(); it != obj.end(); ++it) {
      const bool keyName = key.contains(it.key());
      if (taken.contains(it.key()) || keyName != d->pk[static_cast<std::size_t>(i)]) continue;
      c.push_back(it.key());
    }
    return c;
  };
  for (bool progress = true; progress;) {
    progress = false;
    for (int i = 0; i < n; ++i) {
      const auto u = static_cast<std::size_t>(i);
      if (!pool[u] || !names[u].isEmpty()) continue;
      std::vector<QString> matches;
      for (const QString& name : free(*pool[u], i))
        if (same(pool[u]->value(name), probe[u])) matches.push_back(name);
      if (matches.size() == 1) {
        names[u] = matches.front();
        taken.insert(names[u]);
        progress = true;
      }
    }
    if (progress) continue;
    // One unnamed value and one unused name left in a pool (e.g. a DELETE's column the target changed).
    for (const QJsonObject* obj : {&key, &source, &target}) {
      for (bool keySide : {true, false}) {
        int only = -1, count = 0;
        for (int i = 0; i < n; ++i)
          if (pool[static_cast<std::size_t>(i)] == obj && names[static_cast<std::size_t>(i)].isEmpty() &&
              d->pk[static_cast<std::size_t>(i)] == keySide) {
            only = i;
            ++count;
          }
        if (count != 1) continue;
        const auto left = free(*obj, only);
        if (left.size() != 1) continue;
        names[static_cast<std::size_t>(only)] = left.front();
        taken.insert(left.front());
        progress = true;
      }
    }
  }

  int unnamed = 0;
  std::set<QString> shown;
  auto add = [&](ConflictColumn c) {
    if (!c.name.isEmpty()) shown.insert(c.name);
    out.columns.push_back(std::move(c));
  };
  auto finish = [&](ConflictColumn& c) {
    const bool changes = !c.source.isUndefined();
    c.sourceChanged = changes && !c.key && !c.base.isUndefined() && !same(c.base, c.source);
    c.targetChanged = hasTarget && !c.base.isUndefined() && !c.target.isUndefined() && !same(c.base, c.target);
    if (d && d->op == IPCSYNC_OP_DELETE) c.differs = c.targetChanged;
    else if (changes && !c.key) c.differs = !hasTarget || !same(c.source, c.target);
  };
  for (bool keyPass : {true, false}) {
    for (int i = 0; i < n; ++i) {
      const auto u = static_cast<std::size_t>(i);
      if (d->pk[u] != keyPass || (probe[u].isUndefined() && !d->pk[u])) continue;
      ConflictColumn c;
      c.key = d->pk[u];
      c.name = names[u];
      if (c.name.isEmpty()) {
        c.name = QStringLiteral("column %1").arg(i + 1);
        ++unnamed;
      } else {
        c.target = hasTarget ? target.value(c.name) : undefined;
      }
      c.base = d->oldV[u];
      c.source = c.key ? (d->newV[u].isUndefined() ? d->oldV[u] : d->newV[u]) : d->newV[u];
      finish(c);
      add(std::move(c));
    }
  }
  // Columns the change does not carry (an UPDATE's unchanged ones), or all of them when it could
  // not be decoded: named by the JSON, key first.
  std::vector<QString> rest;
  for (const QJsonObject* obj : {&key, &source, &target})
    for (auto it = obj->begin(); it != obj->end(); ++it)
      if (!shown.contains(it.key()) && std::find(rest.begin(), rest.end(), it.key()) == rest.end()) rest.push_back(it.key());
  std::stable_sort(rest.begin(), rest.end(), [&](const QString& a, const QString& b) { return key.contains(a) > key.contains(b); });
  for (const QString& name : rest) {
    ConflictColumn c;
    c.name = name;
    c.key = key.contains(name);
    c.base = c.key && d ? key.value(name) : undefined;
    c.source = c.key ? key.value(name) : source.contains(name) ? source.value(name) : undefined;
    c.target = hasTarget ? target.value(name) : undefined;
    finish(c);
    add(std::move(c));
  }
  if (d) out.op = d->op == IPCSYNC_OP_INSERT ? QStringLiteral("INSERT") : d->op == IPCSYNC_OP_UPDATE ? QStringLiteral("UPDATE") : QStringLiteral("DELETE");
  if (unnamed > 0)
    out.note = QStringLiteral("%1 value(s) of the change could not be matched to a column name (equal values, or a "
                              "column the JSON does not name); they are shown by position")
                   .arg(unnamed);
  return out;
}

}  // namespace ipcsync::admin
