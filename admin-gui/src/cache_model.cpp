#include "ipcsync/admin/cache_model.h"

#include <QLocale>

#include "ipcsync/admin/format.h"

namespace ipcsync::admin {

void CacheModel::update(const NamespaceSnapshot& snapshot) {
  std::vector<CacheRow> fresh;
  for (const auto& c : snapshot.caches) {
    const auto name = c.topicView();
    fresh.push_back({QString::fromUtf8(name.data(), static_cast<qsizetype>(name.size())), c, snapshot.takenAtNs});
  }
  apply(std::move(fresh));
}

QVariant CacheModel::headerData(int section, Qt::Orientation orientation, int role) const {
  if (orientation != Qt::Horizontal) return {};
  static const char* const kTitles[kColumnCount] = {"Topic", "Held / depth", "Bytes", "Oldest", "Hits"};
  static const char* const kTips[kColumnCount] = {
      "Topic whose last messages the engine keeps", "Messages held now / most it keeps",
      "Payload bytes held in the engine's block", "Age of the oldest held message",
      "Cached messages handed to subscribers that arrived late"};
  if (section < 0 || section >= kColumnCount) return {};
  if (role == Qt::DisplayRole) return QString::fromLatin1(kTitles[section]);
  if (role == Qt::ToolTipRole) return QString::fromLatin1(kTips[section]);
  return {};
}

QVariant CacheModel::cell(const CacheRow& row, int column, int role) const {
  const CacheRecord& c = row.record;
  const std::uint64_t age = c.oldestNs && row.takenAtNs > c.oldestNs ? row.takenAtNs - c.oldestNs : 0;
  if (role == Qt::TextAlignmentRole)
    return QVariant::fromValue(column == kTopic ? Qt::AlignLeft | Qt::AlignVCenter : Qt::AlignRight | Qt::AlignVCenter);
  if (role == kSortRole) {
    switch (column) {
      case kTopic: return row.topic.toLower();
      case kHeld: return c.entries;
      case kBytes: return static_cast<qulonglong>(c.bytes);
      case kOldest: return static_cast<qulonglong>(age / 1'000'000'000ULL);
      case kHits: return static_cast<qulonglong>(c.hits);
      default: return {};
    }
  }
  if (role != Qt::DisplayRole) return {};
  switch (column) {
    case kTopic: return row.topic;
    case kHeld: return QStringLiteral("%1 / %2").arg(c.entries).arg(c.depth);
    case kBytes: return humanBytes(c.bytes);
    case kOldest: return c.entries ? humanAge(age) : QStringLiteral("—");
    case kHits: return QLocale::c().toString(static_cast<qulonglong>(c.hits));
    default: return {};
  }
}

}  // namespace ipcsync::admin
