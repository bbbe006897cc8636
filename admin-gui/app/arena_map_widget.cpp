#include "arena_map_widget.h"

#include <QHelpEvent>
#include <QPainter>
#include <QToolTip>

#include <algorithm>
#include <cmath>

#include "ipcsync/admin/format.h"
#include "ipcsync/admin/memory_model.h"

namespace ipcsync::admin {
namespace {

constexpr int kLegend = 18;  // pixels under the grid for the legend
constexpr int kGap = 2;

QColor fillColour(std::uint16_t permille) {
  // green (0) -> amber (500) -> red (1000)
  const double t = std::clamp(permille / 1000.0, 0.0, 1.0);
  const auto mix = [](int a, int b, double f) { return static_cast<int>(a + (b - a) * f); };
  if (t < 0.5) return QColor(mix(0x43, 0xf0, t * 2), mix(0xa0, 0xa0, t * 2), mix(0x47, 0x20, t * 2));
  return QColor(mix(0xf0, 0xd3, (t - 0.5) * 2), mix(0xa0, 0x2f, (t - 0.5) * 2), mix(0x20, 0x2f, (t - 0.5) * 2));
}

}  // namespace

ArenaMapWidget::ArenaMapWidget(QWidget* parent) : QWidget(parent) {
  setSizePolicy(QSizePolicy::Expanding, QSizePolicy::Expanding);
  setAccessibleName(QStringLiteral("Arena map"));
}

void ArenaMapWidget::setRecord(const std::optional<ProcessRecord>& record) {
  auto cells = record ? arenaCells(*record) : std::vector<std::optional<std::uint16_t>>{};
  const std::uint64_t arenaBytes = record ? record->geometry.arenaSize() : 0;
  if (cells == m_cells && arenaBytes == m_arenaBytes) return;
  m_cells = std::move(cells);
  m_arenaBytes = arenaBytes;
  update();
}

ArenaMapWidget::Grid ArenaMapWidget::grid() const {
  Grid g;
  const int n = std::max<int>(1, static_cast<int>(m_cells.size()));
  const int w = std::max(1, width() - 2), h = std::max(1, height() - kLegend - 2);
  // The most columns whose square cells still fit: try each column count, keep the biggest cell.
  for (int cols = 1; cols <= n; ++cols) {
    const int rows = (n + cols - 1) / cols;
    const int cell = std::min(w / cols, h / rows) - kGap;
    if (cell > g.cell || cols == 1) {
      g.columns = cols;
      g.rows = rows;
      g.cell = std::max(cell, 3);
    }
  }
  g.cell = std::min(g.cell, 40);
  g.left = 1;
  g.top = 1;
  return g;
}

int ArenaMapWidget::cellAt(QPoint pos) const {
  const Grid g = grid();
  const int stride = g.cell + kGap;
  const int c = (pos.x() - g.left) / stride, r = (pos.y() - g.top) / stride;
  if (pos.x() < g.left || pos.y() < g.top || c >= g.columns) return -1;
  const int i = r * g.columns + c;
  return i < static_cast<int>(m_cells.size()) ? i : -1;
}

void ArenaMapWidget::paintEvent(QPaintEvent*) {
  QPainter p(this);
  const QPalette& pal = palette();
  if (m_cells.empty()) {
    p.setPen(pal.color(QPalette::PlaceholderText));
    p.drawText(rect(), Qt::AlignCenter | Qt::TextWordWrap, tr("Select a registration to see its arenas"));
    return;
  }
  const Grid g = grid();
  const int stride = g.cell + kGap;
  int active = 0;
  for (std::size_t i = 0; i < m_cells.size(); ++i) {
    const int col = static_cast<int>(i) % g.columns, row = static_cast<int>(i) / g.columns;
    const QRect box(g.left + col * stride, g.top + row * stride, g.cell, g.cell);
    if (!m_cells[i]) {
      p.fillRect(box, QBrush(pal.color(QPalette::Mid), Qt::BDiagPattern));
      p.setPen(pal.color(QPalette::Mid));
      p.drawRect(box.adjusted(0, 0, -1, -1));
      continue;
    }
    ++active;
    const std::uint16_t fill = *m_cells[i];
    p.fillRect(box, QColor(0xe8, 0xf5, 0xe9));
    const int filled = fill == 0 ? 0 : std::max(1, static_cast<int>(std::lround(g.cell * (fill / 1000.0))));
    p.fillRect(QRect(box.left(), box.bottom() - filled + 1, box.width(), filled), fillColour(fill));
    p.setPen(QColor(0x2e, 0x5e, 0x30));
    p.drawRect(box.adjusted(0, 0, -1, -1));
  }
  p.setPen(pal.color(QPalette::WindowText));
  const QRect legend(0, std::min(height() - kLegend, g.top + g.rows * stride + 4), width(), kLegend);
  p.drawText(legend, Qt::AlignLeft | Qt::AlignVCenter,
             tr("%1 of %2 arenas active, %3 each; hatched: inactive")
                 .arg(active)
                 .arg(m_cells.size())
                 .arg(humanBytes(m_arenaBytes)));
}

bool ArenaMapWidget::event(QEvent* event) {
  if (event->type() == QEvent::ToolTip) {
    auto* help = static_cast<QHelpEvent*>(event);
    const int i = cellAt(help->pos());
    if (i < 0) {
      QToolTip::hideText();
      event->ignore();
      return true;
    }
    const auto& c = m_cells[static_cast<std::size_t>(i)];
    QToolTip::showText(help->globalPos(), c ? tr("arena %1: %2% in use").arg(i).arg(*c / 10.0, 0, 'f', 1)
                                            : tr("arena %1: inactive").arg(i));
    return true;
  }
  return QWidget::event(event);
}

}  // namespace ipcsync::admin
