// ArenaMapWidget: a picture of one block's arenas, one cell per arena up to geometry.maxArenas.
// Inactive arenas are outlined and hatched; active ones fill from the bottom by how full they
// are, from green (empty) to red (full). A tool-tip names each arena and its fill.
#pragma once

#include <QWidget>

#include <cstdint>
#include <optional>
#include <vector>

#include "ipcsync/ipccore/process_record.h"

namespace ipcsync::admin {

class ArenaMapWidget : public QWidget {
  Q_OBJECT

 public:
  explicit ArenaMapWidget(QWidget* parent = nullptr);

  // Shows `record`'s arenas (nothing: an empty map with a hint). Repaints only if a cell changed.
  void setRecord(const std::optional<ProcessRecord>& record);
  // What is drawn: per arena, its fill in thousandths, or nothing when inactive.
  const std::vector<std::optional<std::uint16_t>>& cells() const noexcept { return m_cells; }

  QSize sizeHint() const override { return {360, 150}; }
  QSize minimumSizeHint() const override { return {160, 80}; }

 protected:
  void paintEvent(QPaintEvent* event) override;
  bool event(QEvent* event) override;

 private:
  struct Grid {
    int columns = 1, rows = 1, cell = 8, left = 0, top = 0;
  };
  Grid grid() const;
  int cellAt(QPoint pos) const;

  std::vector<std::optional<std::uint16_t>> m_cells;
  std::uint64_t m_arenaBytes = 0;
};

}  // namespace ipcsync::admin
