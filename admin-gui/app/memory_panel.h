// MemoryPanel: the memory of the selected registration: arena map, the manager's figures, and
// free blocks per order. Fed a record on every refresh; shows a hint when none is selected.
#pragma once

#include <QLabel>
#include <QTableView>
#include <QWidget>

#include <optional>

#include "arena_map_widget.h"
#include "ipcsync/admin/memory_model.h"

namespace ipcsync::admin {

class MemoryPanel : public QWidget {
  Q_OBJECT

 public:
  explicit MemoryPanel(QWidget* parent = nullptr);

  void showRecord(const std::optional<ProcessRecord>& record);

  ArenaMapWidget* arenaMap() const noexcept { return m_map; }
  QTableView* ordersView() const noexcept { return m_orders; }
  FreeBlocksModel* ordersModel() const noexcept { return m_model; }
  // The figures as shown, e.g. figure("Fragmentation") == "12.5%".
  QString figure(const QString& name) const;

 private:
  QLabel* m_title;
  ArenaMapWidget* m_map;
  QTableView* m_orders;
  FreeBlocksModel* m_model;
  std::vector<std::pair<QString, QLabel*>> m_figures;
};

}  // namespace ipcsync::admin
