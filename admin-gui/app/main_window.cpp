#include "main_window.h"

#include <QApplication>
#include <QGroupBox>
#include <QHeaderView>
#include <QItemSelectionModel>
#include <QShortcut>
#include <QSplitter>
#include <QStatusBar>
#include <QVBoxLayout>

#include <time.h>

#include "ipcsync/admin/format.h"

namespace ipcsync::admin {
namespace {

std::uint64_t monotonicNs() {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000'000ULL + static_cast<std::uint64_t>(ts.tv_nsec);
}

QGroupBox* box(const QString& title, QWidget* content, QWidget* extra = nullptr) {
  auto* group = new QGroupBox(title);
  auto* layout = new QVBoxLayout(group);
  layout->setContentsMargins(6, 6, 6, 6);
  if (extra) layout->addWidget(extra);
  layout->addWidget(content, 1);
  return group;
}

}  // namespace

MainWindow::MainWindow(const ConsoleOptions& options, QWidget* parent)
    : QMainWindow(parent),
      m_options(options),
      m_poller(new AdminPoller({options.ns, options.runtimeDir.toStdString(), options.refresh}, this)),
      m_registrations(new RegistrationsModel(this)),
      m_proxy(new QSortFilterProxyModel(this)),
      m_caches(new CacheModel(this)),
      m_plugins(new PluginsModel(this)),
      m_banner(new QLabel(this)),
      m_filter(new QLineEdit(this)),
      m_registrationsView(nullptr),
      m_memory(new MemoryPanel(this)),
      m_cachesView(nullptr),
      m_pluginsView(nullptr),
      m_pluginsNote(new QLabel(this)),
      m_tabs(new QTabWidget(this)),
      m_topology(new TopologyPanel(this)),
      m_journal(new JournalPanel(this)),
      m_statusNs(new QLabel(this)),
      m_statusEngine(new QLabel(this)),
      m_statusRecords(new QLabel(this)),
      m_statusAge(new QLabel(this)) {
  setWindowTitle(tr("ipcsync-admin — %1").arg(options.ns));
  resize(kDefaultSize);

  m_proxy->setSourceModel(m_registrations);
  m_proxy->setSortRole(kSortRole);
  m_proxy->setFilterKeyColumn(-1);
  m_proxy->setFilterCaseSensitivity(Qt::CaseInsensitive);
  m_proxy->setDynamicSortFilter(true);

  m_banner->setWordWrap(true);
  m_banner->setStyleSheet(QStringLiteral(
      "QLabel { background: #b71c1c; color: white; font-weight: bold; padding: 8px; border-radius: 3px; }"));
  m_banner->setAccessibleName(tr("Engine offline"));
  m_banner->hide();

  m_filter->setPlaceholderText(tr("Filter registrations by any column (Ctrl+F)"));
  m_filter->setClearButtonEnabled(true);
  connect(m_filter, &QLineEdit::textChanged, m_proxy, &QSortFilterProxyModel::setFilterFixedString);

  m_registrationsView = makeTable(m_proxy, tr("Registrations"));
  m_registrationsView->setSortingEnabled(true);
  m_registrationsView->sortByColumn(RegistrationsModel::kName, Qt::AscendingOrder);
  m_registrationsView->setSelectionMode(QAbstractItemView::SingleSelection);
  m_cachesView = makeTable(m_caches, tr("Cached topics"));
  m_cachesView->setSortingEnabled(true);
  m_pluginsView = makeTable(m_plugins, tr("Plugins"));
  m_pluginsView->horizontalHeader()->setStretchLastSection(true);
  m_pluginsView->setIconSize(QSize(16, 16));
  m_pluginsNote->setWordWrap(true);
  m_pluginsNote->setTextInteractionFlags(Qt::TextSelectableByMouse);

  auto* top = new QWidget;
  auto* topLayout = new QVBoxLayout(top);
  topLayout->setContentsMargins(0, 0, 0, 0);
  topLayout->addWidget(m_filter);
  topLayout->addWidget(m_registrationsView, 1);

  auto* right = new QSplitter(Qt::Vertical);
  right->addWidget(box(tr("Cached topics"), m_cachesView));
  right->addWidget(box(tr("Plugins"), m_pluginsView, m_pluginsNote));
  right->setStretchFactor(0, 1);
  right->setStretchFactor(1, 2);

  auto* bottom = new QSplitter(Qt::Horizontal);
  bottom->addWidget(box(tr("Memory"), m_memory));
  bottom->addWidget(right);
  bottom->setStretchFactor(0, 4);
  bottom->setStretchFactor(1, 5);
  bottom->setSizes({720, 630});

  auto* main = new QSplitter(Qt::Vertical);
  main->addWidget(box(tr("Registrations"), top));
  main->addWidget(bottom);
  main->setStretchFactor(0, 2);
  main->setStretchFactor(1, 3);
  main->setSizes({280, 520});
  main->setChildrenCollapsible(false);

  auto* central = new QWidget;
  auto* layout = new QVBoxLayout(central);
  layout->setContentsMargins(6, 6, 6, 0);
  layout->addWidget(m_banner);
  m_tabs->addTab(main, tr("&Overview"));
  m_tabs->addTab(m_topology, tr("&Topology"));
  m_tabs->addTab(m_journal, tr("&Journal && conflicts"));
  m_tabs->setDocumentMode(true);
  m_tabs->setCurrentIndex(options.tab);
  layout->addWidget(m_tabs, 1);
  setCentralWidget(central);

  setTabOrder(m_filter, m_registrationsView);
  setTabOrder(m_registrationsView, m_memory->ordersView());
  setTabOrder(m_memory->ordersView(), m_cachesView);
  setTabOrder(m_cachesView, m_pluginsView);

  buildStatusBar();
  buildShortcuts();

  connect(m_registrationsView->selectionModel(), &QItemSelectionModel::currentRowChanged, this, [this](const QModelIndex& current) {
    const auto* row = m_registrations->rowAt(m_proxy->mapToSource(current).row());
    m_selected = row ? std::optional(row->key) : std::nullopt;
    followSelection();
  });
  connect(m_poller, &AdminPoller::snapshotTaken, this, &MainWindow::onSnapshot);
  m_poller->start();
}

QTableView* MainWindow::makeTable(QAbstractItemModel* model, const QString& name) {
  auto* view = new QTableView(this);
  view->setModel(model);
  view->setAccessibleName(name);
  view->setSelectionBehavior(QAbstractItemView::SelectRows);
  view->setAlternatingRowColors(true);
  view->setWordWrap(false);
  view->verticalHeader()->hide();
  view->verticalHeader()->setDefaultSectionSize(fontMetrics().height() + 6);
  view->horizontalHeader()->setHighlightSections(false);
  view->setTabKeyNavigation(false);  // Tab moves between panes; arrows move within
  return view;
}

void MainWindow::buildStatusBar() {
  for (QLabel* l : {m_statusNs, m_statusEngine, m_statusRecords, m_statusAge}) statusBar()->addWidget(l);
  statusBar()->addPermanentWidget(
      new QLabel(tr("Ctrl+F filter · F5 refresh · Ctrl+1..4 panes · Ctrl+5 topology · Ctrl+6/7 journal, conflicts · Ctrl+Q quit")));
}

void MainWindow::buildShortcuts() {
  auto* find = new QShortcut(QKeySequence::Find, this);
  connect(find, &QShortcut::activated, this, [this] {
    m_filter->setFocus(Qt::ShortcutFocusReason);
    m_filter->selectAll();
  });
  auto* quit = new QShortcut(QKeySequence(Qt::CTRL | Qt::Key_Q), this);
  connect(quit, &QShortcut::activated, this, &QWidget::close);
  auto* refresh = new QShortcut(QKeySequence(Qt::Key_F5), this);
  connect(refresh, &QShortcut::activated, m_poller, &AdminPoller::refreshNow);
  const std::pair<int, QWidget*> panes[] = {
      {Qt::Key_1, m_registrationsView}, {Qt::Key_2, m_memory->ordersView()}, {Qt::Key_3, m_cachesView}, {Qt::Key_4, m_pluginsView}};
  for (const auto& [key, widget] : panes) {
    auto* s = new QShortcut(QKeySequence(Qt::CTRL | key), this);
    connect(s, &QShortcut::activated, widget, [this, widget] {
      m_tabs->setCurrentIndex(0);
      widget->setFocus(Qt::ShortcutFocusReason);
    });
  }
  const std::pair<int, std::pair<int, QWidget*>> tabs[] = {{Qt::Key_5, {1, m_topology->routesView()}},
                                                           {Qt::Key_6, {2, m_journal->deadLettersView()}},
                                                           {Qt::Key_7, {2, m_journal->conflictsView()}}};
  for (const auto& [key, target] : tabs) {
    auto* s = new QShortcut(QKeySequence(Qt::CTRL | key), this);
    connect(s, &QShortcut::activated, this, [this, target] {
      m_tabs->setCurrentIndex(target.first);
      target.second->setFocus(Qt::ShortcutFocusReason);
    });
  }
}

QString MainWindow::statusText() const {
  return QStringList{m_statusNs->text(), m_statusEngine->text(), m_statusRecords->text(), m_statusAge->text()}.join(" | ");
}

void MainWindow::onSnapshot(const NamespaceSnapshot& s) {
  m_registrations->update(s);
  m_caches->update(s);
  m_plugins->update(s.plugins);
  m_topology->update(s);
  m_journal->update(s);

  if (s.online) {
    m_lastOnlineNs = s.monotonicNs;
    m_banner->hide();
  } else {
    m_banner->setText(tr("Engine offline: %1. Waiting for an engine to serve namespace '%2'; the console reattaches by itself.")
                          .arg(s.problem, s.ns));
    m_banner->show();
  }

  if (!s.online) m_pluginsNote->setText(tr("No engine: plugin states unknown."));
  else if (!s.plugins.error.isEmpty()) m_pluginsNote->setText(tr("<b>plugins.json unreadable:</b> %1").arg(s.plugins.error.toHtmlEscaped()));
  else if (!s.plugins.present)
    m_pluginsNote->setText(tr("No %1: the daemon runs no plugins.").arg(QString::fromStdString(s.plugins.path.string())));
  else m_pluginsNote->setText(tr("From %1").arg(QString::fromStdString(s.plugins.path.string())));
  m_pluginsNote->setStyleSheet(s.plugins.error.isEmpty() ? QString() : QStringLiteral("QLabel { color: #9a1010; }"));

  m_statusNs->setText(tr("namespace %1").arg(s.ns));
  m_statusEngine->setText(s.online ? tr("engine pid %1").arg(s.engine.pid) : tr("engine offline"));
  m_statusRecords->setText(s.online ? tr("%1 of %2 slots in use").arg(s.records.size()).arg(s.capacity) : tr("no records"));
  const std::uint64_t now = monotonicNs();
  m_statusAge->setText(m_lastOnlineNs ? tr("refreshed %1 ms ago (read in %2 µs)")
                                            .arg((now - m_lastOnlineNs) / 1'000'000)
                                            .arg(s.readCostNs / 1000)
                                      : tr("never refreshed"));

  if (!m_registrationsView->currentIndex().isValid() && m_proxy->rowCount() > 0)
    m_registrationsView->setCurrentIndex(m_proxy->index(0, 0));
  followSelection();

  bool rated = s.online && !s.records.empty();
  for (const auto& row : m_registrations->rows()) rated = rated && row.rated;
  if (rated && !m_sized) {  // size columns to real content once, then leave them to the user
    m_registrationsView->resizeColumnsToContents();
    m_cachesView->resizeColumnsToContents();
    m_pluginsView->resizeColumnsToContents();
    m_pluginsView->horizontalHeader()->setSectionResizeMode(PluginsModel::kMessage, QHeaderView::Stretch);
    m_sized = true;
  }
  m_hasData = m_hasData || rated;
  Q_EMIT refreshed();
}

void MainWindow::followSelection() {
  const int row = m_selected ? m_registrations->rowOf(*m_selected) : -1;
  const auto* r = m_registrations->rowAt(row);
  m_memory->showRecord(r ? std::optional(r->record) : std::nullopt);
}

}  // namespace ipcsync::admin
