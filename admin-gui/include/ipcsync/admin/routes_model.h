// RoutesModel: one row per delivery of sync.json's routes[] (route, source → subscriber), keyed by
// (route, subscriber), with live lag, throughput and error counts. Disconnected routes show grey,
// routes with a problem or dead letters red, routes with errors or conflicts orange. GUI thread only.
#pragma once

#include "ipcsync/admin/keyed_table_model.h"
#include "ipcsync/admin/sync_status.h"

namespace ipcsync::admin {

class RoutesModel : public KeyedTableModel<SyncRoute, QString> {
  Q_OBJECT

 public:
  enum Column {
    kRoute, kFrom, kTo, kCursor, kLag, kLagMs, kAppliedPerS, kRowsPerS, kConflicts, kErrors, kDeadLetters, kLastError,
    kColumnCount
  };
  explicit RoutesModel(QObject* parent = nullptr);

  void update(const SyncStatus& status);
  QVariant headerData(int section, Qt::Orientation orientation, int role) const override;

 protected:
  int columns() const override { return kColumnCount; }
  QString keyOf(const SyncRoute& row) const override;
  QVariant cell(const SyncRoute& row, int column, int role) const override;
};

}  // namespace ipcsync::admin
