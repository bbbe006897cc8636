// MainWindow: ipcsync-admin's window. Registrations (filterable, sortable) on top; below, the
// memory of the selected registration beside the cached topics and the plugins ("Overview" tab).
// The "Topology" tab draws plugins and routes with their lag; "Journal & conflicts" shows the sync
// journal, cursors, dead letters and parked conflicts. An offline banner shows while no engine
// serves the namespace. Owns the poller and every model.
#pragma once

#include <QLabel>
#include <QLineEdit>
#include <QMainWindow>
#include <QSortFilterProxyModel>
#include <QTabWidget>
#include <QTableView>

#include "console_options.h"
#include "ipcsync/admin/admin_poller.h"
#include "ipcsync/admin/cache_model.h"
#include "ipcsync/admin/plugins_model.h"
#include "ipcsync/admin/registrations_model.h"
#include "memory_panel.h"
#include "sync_panels.h"

namespace ipcsync::admin {

class MainWindow : public QMainWindow {
  Q_OBJECT

 public:
  static constexpr QSize kDefaultSize{1360, 860};

  explicit MainWindow(const ConsoleOptions& options, QWidget* parent = nullptr);

  AdminPoller* poller() const noexcept { return m_poller; }
  RegistrationsModel* registrations() const noexcept { return m_registrations; }
  QSortFilterProxyModel* registrationsProxy() const noexcept { return m_proxy; }
  QTableView* registrationsView() const noexcept { return m_registrationsView; }
  QLineEdit* filterEdit() const noexcept { return m_filter; }
  MemoryPanel* memoryPanel() const noexcept { return m_memory; }
  CacheModel* caches() const noexcept { return m_caches; }
  PluginsModel* plugins() const noexcept { return m_plugins; }
  QTabWidget* tabs() const noexcept { return m_tabs; }
  TopologyPanel* topologyPanel() const noexcept { return m_topology; }
  JournalPanel* journalPanel() const noexcept { return m_journal; }
  bool bannerShown() const noexcept { return !m_banner->isHidden(); }
  QString bannerText() const { return m_banner->text(); }
  QString statusText() const;
  // True once the window shows a live namespace with registrations whose rates are measured.
  bool hasData() const noexcept { return m_hasData; }

 Q_SIGNALS:
  void refreshed();

 private:
  void onSnapshot(const NamespaceSnapshot& snapshot);
  void followSelection();
  void buildStatusBar();
  void buildShortcuts();
  QTableView* makeTable(QAbstractItemModel* model, const QString& name);

  ConsoleOptions m_options;
  AdminPoller* m_poller;
  RegistrationsModel* m_registrations;
  QSortFilterProxyModel* m_proxy;
  CacheModel* m_caches;
  PluginsModel* m_plugins;
  QLabel* m_banner;
  QLineEdit* m_filter;
  QTableView* m_registrationsView;
  MemoryPanel* m_memory;
  QTableView* m_cachesView;
  QTableView* m_pluginsView;
  QLabel* m_pluginsNote;
  QTabWidget* m_tabs;
  TopologyPanel* m_topology;
  JournalPanel* m_journal;
  QLabel* m_statusNs;
  QLabel* m_statusEngine;
  QLabel* m_statusRecords;
  QLabel* m_statusAge;
  std::optional<RegistrationKey> m_selected;
  std::uint64_t m_lastOnlineNs = 0;  // CLOCK_MONOTONIC of the last snapshot with an engine
  bool m_hasData = false;
  bool m_sized = false;
};

}  // namespace ipcsync::admin
