// The sync engine's two console tabs.
//
// TopologyPanel: the topology picture above the routes table (sortable).
// JournalPanel: the journal's usage (head, entries, bytes, nearly-full), each route's cursor, the
// dead letters and the open conflicts; beside the conflicts, the selected one's detail: base,
// source and target values per column, the differing ones tinted. An unreadable journal shows its
// error text in place of the rows (a busy one keeps its last rows and says so). Both are fed by
// update(); GUI thread only.
#pragma once

#include <QLabel>
#include <QSortFilterProxyModel>
#include <QTableView>
#include <QWidget>

#include <optional>

#include "ipcsync/admin/journal_models.h"
#include "ipcsync/admin/namespace_snapshot.h"
#include "ipcsync/admin/routes_model.h"
#include "topology_widget.h"

namespace ipcsync::admin {

// A table view set up the way every console table is (row selection, no grid tab-trap).
QTableView* makeConsoleTable(QAbstractItemModel* model, const QString& name, QWidget* parent);

class TopologyPanel : public QWidget {
  Q_OBJECT

 public:
  explicit TopologyPanel(QWidget* parent = nullptr);
  void update(const NamespaceSnapshot& snapshot);

  TopologyWidget* picture() const noexcept { return m_picture; }
  RoutesModel* routes() const noexcept { return m_routes; }
  QTableView* routesView() const noexcept { return m_routesView; }

 private:
  TopologyWidget* m_picture;
  RoutesModel* m_routes;
  QSortFilterProxyModel* m_proxy;
  QTableView* m_routesView;
  QLabel* m_note;
  bool m_sized = false;
};

class JournalPanel : public QWidget {
  Q_OBJECT

 public:
  explicit JournalPanel(QWidget* parent = nullptr);
  void update(const NamespaceSnapshot& snapshot);

  DeadLettersModel* deadLetters() const noexcept { return m_deadLetters; }
  ConflictsModel* conflicts() const noexcept { return m_conflicts; }
  QTableView* cursorsView() const noexcept { return m_cursorsView; }
  QTableView* deadLettersView() const noexcept { return m_deadLettersView; }
  QTableView* conflictsView() const noexcept { return m_conflictsView; }
  ConflictDetailModel* conflictDetail() const noexcept { return m_detail; }
  QTableView* conflictDetailView() const noexcept { return m_detailView; }
  QString conflictHeadingText() const { return m_heading->text(); }
  QString usageText() const { return m_usage->text(); }
  QString errorText() const { return m_error->text(); }

 private:
  void showSelectedConflict();

  QLabel* m_usage;
  QLabel* m_error;
  RoutesModel* m_cursors;
  DeadLettersModel* m_deadLetters;
  ConflictsModel* m_conflicts;
  QTableView* m_cursorsView;
  QTableView* m_deadLettersView;
  QTableView* m_conflictsView;
  ConflictDetailModel* m_detail;
  QTableView* m_detailView;
  QLabel* m_heading;
  std::optional<std::int64_t> m_selectedConflict;
  bool m_sized = false;
  bool m_conflictsSized = false;
};

}  // namespace ipcsync::admin
