#include "sync_panels.h"

#include <QGroupBox>
#include <QHeaderView>
#include <QItemSelectionModel>
#include <QSplitter>
#include <QVBoxLayout>

#include "ipcsync/admin/format.h"

namespace ipcsync::admin {
namespace {

QGroupBox* box(const QString& title, QWidget* content) {
  auto* group = new QGroupBox(title);
  auto* layout = new QVBoxLayout(group);
  layout->setContentsMargins(6, 6, 6, 6);
  layout->addWidget(content);
  return group;
}

}  // namespace

QTableView* makeConsoleTable(QAbstractItemModel* model, const QString& name, QWidget* parent) {
  auto* view = new QTableView(parent);
  view->setModel(model);
  view->setAccessibleName(name);
  view->setSelectionBehavior(QAbstractItemView::SelectRows);
  view->setAlternatingRowColors(true);
  view->setWordWrap(false);
  view->verticalHeader()->hide();
  view->verticalHeader()->setDefaultSectionSize(view->fontMetrics().height() + 6);
  view->horizontalHeader()->setHighlightSections(false);
  view->horizontalHeader()->setStretchLastSection(true);
  view->setTabKeyNavigation(false);
  return view;
}

TopologyPanel::TopologyPanel(QWidget* parent)
    : QWidget(parent),
      m_picture(new TopologyWidget(this)),
      m_routes(new RoutesModel(this)),
      m_proxy(new QSortFilterProxyModel(this)),
      m_routesView(nullptr),
      m_note(new QLabel(this)) {
  m_proxy->setSourceModel(m_routes);
  m_proxy->setSortRole(kSortRole);
  m_routesView = makeConsoleTable(m_proxy, tr("Routes"), this);
  m_routesView->setSortingEnabled(true);
  m_routesView->sortByColumn(RoutesModel::kRoute, Qt::AscendingOrder);
  m_note->setWordWrap(true);
  m_note->setTextInteractionFlags(Qt::TextSelectableByMouse);

  auto* routes = new QWidget;
  auto* routesLayout = new QVBoxLayout(routes);
  routesLayout->setContentsMargins(0, 0, 0, 0);
  routesLayout->addWidget(m_note);
  routesLayout->addWidget(m_routesView, 1);

  auto* split = new QSplitter(Qt::Vertical, this);
  split->addWidget(box(tr("Topology"), m_picture));
  split->addWidget(box(tr("Routes"), routes));
  split->setStretchFactor(0, 3);
  split->setStretchFactor(1, 2);
  split->setChildrenCollapsible(false);
  auto* layout = new QVBoxLayout(this);
  layout->setContentsMargins(0, 0, 0, 0);
  layout->addWidget(split);
  setTabOrder(m_picture, m_routesView);
}

void TopologyPanel::update(const NamespaceSnapshot& s) {
  m_picture->setStatus(s.plugins, s.sync);
  m_routes->update(s.sync);
  if (!s.sync.error.isEmpty()) m_note->setText(tr("<b>sync.json:</b> %1").arg(s.sync.error.toHtmlEscaped()));
  else if (!s.sync.present) m_note->setText(tr("No %1: no sync engine runs.").arg(QString::fromStdString(s.sync.path.string())));
  else m_note->setText(tr("From %1 (pid %2)").arg(QString::fromStdString(s.sync.path.string())).arg(s.sync.pid));
  m_note->setStyleSheet(s.sync.error.isEmpty() ? QString() : QStringLiteral("QLabel { color: #9a1010; }"));
  if (!m_sized && m_routes->rowCount() > 0) {
    m_routesView->resizeColumnsToContents();
    m_sized = true;
  }
}

JournalPanel::JournalPanel(QWidget* parent)
    : QWidget(parent),
      m_usage(new QLabel(this)),
      m_error(new QLabel(this)),
      m_cursors(new RoutesModel(this)),
      m_deadLetters(new DeadLettersModel(this)),
      m_conflicts(new ConflictsModel(this)),
      m_cursorsView(makeConsoleTable(m_cursors, tr("Route cursors"), this)),
      m_deadLettersView(makeConsoleTable(m_deadLetters, tr("Dead letters"), this)),
      m_conflictsView(makeConsoleTable(m_conflicts, tr("Parked conflicts"), this)),
      m_detail(new ConflictDetailModel(this)),
      m_detailView(makeConsoleTable(m_detail, tr("Conflict values"), this)),
      m_heading(new QLabel(this)) {
  m_usage->setTextInteractionFlags(Qt::TextSelectableByMouse);
  m_usage->setWordWrap(true);
  m_error->setWordWrap(true);
  m_error->setTextInteractionFlags(Qt::TextSelectableByMouse);
  m_error->setStyleSheet(QStringLiteral("QLabel { color: #9a1010; }"));
  m_error->hide();
  // The cursors table shows only where each delivery stands.
  for (int c = 0; c < RoutesModel::kColumnCount; ++c)
    if (c != RoutesModel::kRoute && c != RoutesModel::kFrom && c != RoutesModel::kTo && c != RoutesModel::kCursor &&
        c != RoutesModel::kLag)
      m_cursorsView->hideColumn(c);
  // The list names each conflict; its values are side by side in the detail pane beside it (the
  // JSON as parked stays in the model, and shows in the key's tool-tip).
  m_conflictsView->hideColumn(ConflictsModel::kSource);
  m_conflictsView->hideColumn(ConflictsModel::kTarget);
  m_conflictsView->setSelectionMode(QAbstractItemView::SingleSelection);
  m_detailView->setSelectionMode(QAbstractItemView::SingleSelection);
  m_detailView->horizontalHeader()->setStretchLastSection(false);
  for (int c = ConflictDetailModel::kBase; c <= ConflictDetailModel::kTarget; ++c)
    m_detailView->horizontalHeader()->setSectionResizeMode(c, QHeaderView::Stretch);
  m_detailView->horizontalHeader()->setMinimumSectionSize(60);
  m_heading->setWordWrap(true);
  m_heading->setTextFormat(Qt::RichText);
  m_heading->setTextInteractionFlags(Qt::TextSelectableByMouse);
  m_heading->setText(tr("No parked conflict."));
  auto* legend = new QLabel(
      tr("<span style='background:#f8c8c8'>&nbsp;red&nbsp;</span> changed at both ends: what conflicts · "
         "<span style='background:#d0e4ff'>&nbsp;blue&nbsp;</span> only the source changes it · "
         "<span style='background:#ffe0a0'>&nbsp;amber&nbsp;</span> only the target changed it · "
         "— not in the change (an UPDATE carries the key and the columns it changes)"),
      this);
  legend->setWordWrap(true);
  auto* detail = new QWidget;
  auto* detailLayout = new QVBoxLayout(detail);
  detailLayout->setContentsMargins(0, 0, 0, 0);
  detailLayout->addWidget(m_heading);
  detailLayout->addWidget(m_detailView, 1);
  detailLayout->addWidget(legend);

  auto* top = new QSplitter(Qt::Horizontal);
  top->addWidget(box(tr("Route cursors"), m_cursorsView));
  top->addWidget(box(tr("Dead letters"), m_deadLettersView));
  top->setStretchFactor(0, 2);
  top->setStretchFactor(1, 3);
  auto* split = new QSplitter(Qt::Vertical);
  split->addWidget(top);
  auto* conflicts = new QSplitter(Qt::Horizontal);
  conflicts->addWidget(box(tr("Parked conflicts"), m_conflictsView));
  conflicts->addWidget(box(tr("Selected conflict: base, source and target side by side"), detail));
  conflicts->setStretchFactor(0, 2);
  conflicts->setStretchFactor(1, 3);
  conflicts->setSizes({520, 820});
  split->addWidget(conflicts);
  split->setStretchFactor(0, 2);
  split->setStretchFactor(1, 3);
  split->setChildrenCollapsible(false);
  auto* layout = new QVBoxLayout(this);
  layout->setContentsMargins(0, 0, 0, 0);
  layout->addWidget(m_usage);
  layout->addWidget(m_error);
  layout->addWidget(split, 1);
  setTabOrder(m_cursorsView, m_deadLettersView);
  setTabOrder(m_deadLettersView, m_conflictsView);
  setTabOrder(m_conflictsView, m_detailView);
  connect(m_conflictsView->selectionModel(), &QItemSelectionModel::currentRowChanged, this, [this](const QModelIndex& current) {
    const int row = current.row();
    m_selectedConflict = row >= 0 && row < m_conflicts->rowCount()
                             ? std::optional(m_conflicts->rows()[static_cast<std::size_t>(row)].id)
                             : std::nullopt;
    showSelectedConflict();
  });
}

void JournalPanel::showSelectedConflict() {
  const int row = m_selectedConflict ? m_conflicts->rowOf(*m_selectedConflict) : -1;
  const ConflictRow* c = row >= 0 ? &m_conflicts->rows()[static_cast<std::size_t>(row)] : nullptr;
  m_detail->show(c);
  m_detailView->resizeColumnToContents(ConflictDetailModel::kName);
  if (c) m_heading->setText(conflictHeading(*c));
  else m_heading->setText(m_conflicts->rowCount() ? tr("Select a conflict to see its values.") : tr("No parked conflict."));
}

void JournalPanel::update(const NamespaceSnapshot& s) {
  const SyncJournal& j = s.sync.journal;
  if (!s.sync.present) m_usage->setText(tr("No sync engine: no journal to show."));
  else
    m_usage->setText(tr("<b>Journal</b> %1 — head %2 · %3 entries · %4 of %5%6")
                         .arg(j.path.toHtmlEscaped())
                         .arg(j.head)
                         .arg(j.entries)
                         .arg(humanBytes(j.bytes), humanBytes(j.maxBytes))
                         .arg(j.nearlyFull ? tr(" · <span style='color:#c62828'><b>NEARLY FULL</b></span>") : QString()));
  m_error->setText(s.journal.error);
  m_error->setStyleSheet(s.journal.busy ? QStringLiteral("QLabel { color: #8a5a00; }") : QStringLiteral("QLabel { color: #9a1010; }"));
  m_error->setVisible(!s.journal.error.isEmpty());
  m_cursors->update(s.sync);
  m_deadLetters->update(s.journal);
  m_conflicts->update(s.journal);
  // The detail follows the selected conflict; with none selected (or it was resolved), the first.
  if ((!m_selectedConflict || m_conflicts->rowOf(*m_selectedConflict) < 0) && m_conflicts->rowCount() > 0)
    m_conflictsView->setCurrentIndex(m_conflicts->index(0, 0));  // currentRowChanged shows it
  else if (m_conflicts->rowCount() == 0)
    m_selectedConflict.reset();
  showSelectedConflict();
  if (!m_sized && m_cursors->rowCount() > 0) {  // once, to real content; then the user's widths
    m_cursorsView->resizeColumnsToContents();
    m_sized = true;
  }
  if (!m_conflictsSized && m_conflicts->rowCount() > 0) {
    m_conflictsView->resizeColumnsToContents();
    m_conflictsSized = true;
  }
}

}  // namespace ipcsync::admin
