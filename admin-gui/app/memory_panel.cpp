#include "memory_panel.h"

#include <QFormLayout>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QLocale>
#include <QVBoxLayout>

#include "ipcsync/admin/format.h"

namespace ipcsync::admin {
namespace {
const char* const kFigureNames[] = {"Block",       "In use",       "Free",  "Largest free run",
                                    "Fragmentation", "Allocations", "Frees", "Failures"};
}

MemoryPanel::MemoryPanel(QWidget* parent)
    : QWidget(parent),
      m_title(new QLabel(this)),
      m_map(new ArenaMapWidget(this)),
      m_orders(new QTableView(this)),
      m_model(new FreeBlocksModel(this)) {
  auto* outer = new QVBoxLayout(this);
  outer->setContentsMargins(0, 0, 0, 0);
  QFont bold = m_title->font();
  bold.setBold(true);
  m_title->setFont(bold);
  outer->addWidget(m_title);

  auto* row = new QHBoxLayout;
  auto* left = new QVBoxLayout;
  left->addWidget(m_map, 1);
  auto* form = new QFormLayout;
  form->setHorizontalSpacing(12);
  form->setVerticalSpacing(2);
  for (const char* name : kFigureNames) {
    auto* value = new QLabel(QStringLiteral("—"), this);
    value->setTextInteractionFlags(Qt::TextSelectableByMouse);
    form->addRow(QString::fromLatin1(name) + ":", value);
    m_figures.emplace_back(QString::fromLatin1(name), value);
  }
  left->addLayout(form);
  row->addLayout(left, 3);

  m_orders->setModel(m_model);
  m_orders->verticalHeader()->hide();
  m_orders->verticalHeader()->setDefaultSectionSize(fontMetrics().height() + 4);
  m_orders->horizontalHeader()->setSectionResizeMode(QHeaderView::ResizeToContents);
  m_orders->horizontalHeader()->setStretchLastSection(true);
  m_orders->setMinimumWidth(300);
  m_orders->setSelectionBehavior(QAbstractItemView::SelectRows);
  m_orders->setAlternatingRowColors(true);
  m_orders->setAccessibleName(QStringLiteral("Free blocks per order"));
  row->addWidget(m_orders, 2);
  outer->addLayout(row, 1);
  showRecord(std::nullopt);
}

QString MemoryPanel::figure(const QString& name) const {
  for (const auto& [n, label] : m_figures)
    if (n == name) return label->text();
  return {};
}

void MemoryPanel::showRecord(const std::optional<ProcessRecord>& record) {
  m_map->setRecord(record);
  m_model->show(record);
  if (!record) {
    m_title->setText(tr("Memory: select a registration"));
    for (auto& [name, label] : m_figures) label->setText(QStringLiteral("—"));
    return;
  }
  const auto name = record->nameView();
  m_title->setText(tr("Memory of %1 (pid %2)")
                       .arg(QString::fromUtf8(name.data(), static_cast<qsizetype>(name.size())))
                       .arg(record->pid));
  const MemoryFigures f = memoryFigures(*record);
  const auto number = [](std::uint64_t n) { return QLocale::c().toString(static_cast<qulonglong>(n)); };
  const QString values[] = {
      tr("%1 (%2 of %3 arenas; grows to %4)").arg(humanBytes(f.blockBytes)).arg(f.activeArenas).arg(f.maxArenas).arg(humanBytes(f.maxBytes)),
      tr("%1 (%2 bytes)").arg(humanBytes(f.bytesInUse), number(f.bytesInUse)),
      tr("%1 (%2 bytes)").arg(humanBytes(f.bytesFree), number(f.bytesFree)),
      humanBytes(f.largestFreeRun),
      QStringLiteral("%1%").arg(f.fragmentation * 100.0, 0, 'f', 1),
      number(f.allocations),
      number(f.frees),
      number(f.failures)};
  for (std::size_t i = 0; i < m_figures.size(); ++i) m_figures[i].second->setText(values[i]);
}

}  // namespace ipcsync::admin
