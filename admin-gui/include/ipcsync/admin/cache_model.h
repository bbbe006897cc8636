// CacheModel: the topic caches the engine keeps (topic, held/depth, bytes, age of the oldest
// message, hits), one row per topic, keyed by topic name. GUI thread only.
#pragma once

#include "ipcsync/admin/keyed_table_model.h"
#include "ipcsync/admin/namespace_snapshot.h"

namespace ipcsync::admin {

struct CacheRow {
  QString topic;
  CacheRecord record;
  std::uint64_t takenAtNs = 0;
};

class CacheModel : public KeyedTableModel<CacheRow, QString> {
  Q_OBJECT

 public:
  enum Column { kTopic, kHeld, kBytes, kOldest, kHits, kColumnCount };
  using KeyedTableModel::KeyedTableModel;

  void update(const NamespaceSnapshot& snapshot);
  QVariant headerData(int section, Qt::Orientation orientation, int role) const override;

 protected:
  int columns() const override { return kColumnCount; }
  QString keyOf(const CacheRow& row) const override { return row.topic; }
  QVariant cell(const CacheRow& row, int column, int role) const override;
};

}  // namespace ipcsync::admin
