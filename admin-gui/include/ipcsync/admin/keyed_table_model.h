// KeyedTableModel: a QAbstractTableModel fed whole snapshots and diffed into precise signals.
//
// A subclass turns each snapshot into a list of rows, each with a key that names the same thing
// across snapshots, and calls apply(). Rows whose key vanished are removed (beginRemoveRows per
// contiguous run), rows whose key stays are updated in place with dataChanged for exactly the
// cells whose display, sort, tool-tip or colour values changed, and new keys are appended
// (beginInsertRows). The model never resets, so views keep their selection and scroll position,
// and a QSortFilterProxyModel on top re-sorts only what moved.
//
// Row order in this model is arrival order; sort through a proxy. Not thread-safe: use it from
// the thread that owns it (the GUI thread).
#pragma once

#include <QAbstractTableModel>
#include <QVariant>

#include <map>
#include <set>
#include <utility>
#include <vector>

namespace ipcsync::admin {

// The role that carries a cell's raw value for sorting (numbers sort as numbers).
inline constexpr int kSortRole = Qt::UserRole + 1;

template <typename Row, typename Key>
class KeyedTableModel : public QAbstractTableModel {
 public:
  using QAbstractTableModel::QAbstractTableModel;

  int rowCount(const QModelIndex& parent = {}) const override {
    return parent.isValid() ? 0 : static_cast<int>(m_rows.size());
  }
  int columnCount(const QModelIndex& parent = {}) const override { return parent.isValid() ? 0 : columns(); }
  QVariant data(const QModelIndex& index, int role) const override {
    if (!checkIndex(index, CheckIndexOption::IndexIsValid | CheckIndexOption::ParentIsInvalid)) return {};
    return cell(m_rows[static_cast<std::size_t>(index.row())], index.column(), role);
  }

  const std::vector<Row>& rows() const noexcept { return m_rows; }
  // The row with `key`, or -1.
  int rowOf(const Key& key) const {
    for (std::size_t i = 0; i < m_rows.size(); ++i)
      if (keyOf(m_rows[i]) == key) return static_cast<int>(i);
    return -1;
  }

 protected:
  virtual int columns() const = 0;
  virtual Key keyOf(const Row& row) const = 0;
  virtual QVariant cell(const Row& row, int column, int role) const = 0;
  // Called for a row present before and now, before cells are compared (e.g. to derive rates).
  virtual void carryOver(const Row& /*before*/, Row& /*now*/) const {}

  // Replaces the rows with `fresh` (keys unique), emitting the least signals that describe it.
  void apply(std::vector<Row> fresh) {
    std::map<Key, std::size_t> wanted;
    for (std::size_t i = 0; i < fresh.size(); ++i) wanted.emplace(keyOf(fresh[i]), i);

    // 1. Removals, from the end so earlier row numbers stay valid, one signal per run.
    for (int end = static_cast<int>(m_rows.size()) - 1; end >= 0;) {
      if (wanted.contains(keyOf(m_rows[static_cast<std::size_t>(end)]))) {
        --end;
        continue;
      }
      int first = end;
      while (first > 0 && !wanted.contains(keyOf(m_rows[static_cast<std::size_t>(first - 1)]))) --first;
      beginRemoveRows({}, first, end);
      m_rows.erase(m_rows.begin() + first, m_rows.begin() + end + 1);
      endRemoveRows();
      end = first - 1;
    }

    // 2. Updates in place, dataChanged per run of changed columns.
    std::set<Key> kept;
    for (std::size_t r = 0; r < m_rows.size(); ++r) {
      const Key key = keyOf(m_rows[r]);
      Row next = fresh[wanted.at(key)];
      carryOver(m_rows[r], next);
      kept.insert(key);
      std::vector<bool> changed(static_cast<std::size_t>(columns()));
      for (int c = 0; c < columns(); ++c)
        for (int role : kComparedRoles)
          if (cell(m_rows[r], c, role) != cell(next, c, role)) changed[static_cast<std::size_t>(c)] = true;
      m_rows[r] = std::move(next);
      for (int c = 0; c < columns();) {
        if (!changed[static_cast<std::size_t>(c)]) {
          ++c;
          continue;
        }
        int last = c;
        while (last + 1 < columns() && changed[static_cast<std::size_t>(last + 1)]) ++last;
        const int row = static_cast<int>(r);
        Q_EMIT dataChanged(index(row, c), index(row, last));
        c = last + 1;
      }
    }

    // 3. Insertions at the end, in the order of `fresh`.
    std::vector<Row> added;
    for (auto& row : fresh)
      if (!kept.contains(keyOf(row))) added.push_back(std::move(row));
    if (!added.empty()) {
      const int first = static_cast<int>(m_rows.size());
      beginInsertRows({}, first, first + static_cast<int>(added.size()) - 1);
      for (auto& row : added) m_rows.push_back(std::move(row));
      endInsertRows();
    }
  }

 private:
  static constexpr int kComparedRoles[] = {Qt::DisplayRole, kSortRole, Qt::ToolTipRole, Qt::ForegroundRole,
                                           Qt::BackgroundRole};
  std::vector<Row> m_rows;
};

}  // namespace ipcsync::admin
