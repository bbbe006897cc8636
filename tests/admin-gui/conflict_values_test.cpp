// A parked conflict's values side by side: real changesets (SQLite's session extension) decoded
// into base, source and target per column, named from the parked JSON; what cannot be named or
// decoded says so; and the detail model that shows them under QAbstractItemModelTester.
#include <gtest/gtest.h>

#include <QAbstractItemModelTester>
#include <QColor>

#include "conflict_change.h"
#include "console_fixture.h"
#include "ipcsync/admin/conflict_values.h"
#include "ipcsync/admin/journal_models.h"

namespace ipcsync::admin {
namespace {

const ConflictColumn* column(const ConflictSides& s, const QString& name) {
  for (const auto& c : s.columns)
    if (c.name == name) return &c;
  return nullptr;
}

ConflictSides sides(const ParkedConflict& pc) {
  return sideBySide(QString::fromStdString(pc.keyJson), QString::fromStdString(pc.sourceJson),
                    QString::fromStdString(pc.targetJson), pc.change.data(), pc.change.size());
}

class ConflictValuesTest : public ::testing::Test {
 protected:
  void TearDown() override { EXPECT_EQ(test::modelTesterComplaints(), m_complaintsBefore); }
  int m_complaintsBefore = test::modelTesterComplaints();
};

TEST_F(ConflictValuesTest, AnUpdateShowsBaseSourceAndTargetPerColumnAndFlagsWhereTheyDiffer) {
  const ParkedConflict pc = test::accountConflict(1);
  ASSERT_FALSE(pc.change.empty());
  const ConflictSides s = sides(pc);
  EXPECT_EQ(s.op, "UPDATE");
  EXPECT_EQ(s.note, "");
  ASSERT_EQ(s.columns.size(), 4u);
  EXPECT_EQ(s.columns[0].name, "id");  // the key first, then the change's columns in table order
  EXPECT_TRUE(s.columns[0].key);
  EXPECT_EQ(s.columns[1].name, "region");
  EXPECT_EQ(s.columns[2].name, "credit");
  EXPECT_EQ(s.columns[3].name, "name");  // not in the change: unchanged by the source

  const ConflictColumn* region = column(s, "region");
  EXPECT_EQ(region->base.toString(), "north");
  EXPECT_EQ(region->source.toString(), "south");
  EXPECT_EQ(region->target.toString(), "west");
  EXPECT_TRUE(region->sourceChanged);
  EXPECT_TRUE(region->targetChanged);
  EXPECT_TRUE(region->differs);

  const ConflictColumn* credit = column(s, "credit");
  EXPECT_EQ(credit->base.toInteger(), 100);
  EXPECT_EQ(credit->source.toInteger(), 150);
  EXPECT_EQ(credit->target.toInteger(), 100);
  EXPECT_TRUE(credit->sourceChanged);
  EXPECT_FALSE(credit->targetChanged);
  EXPECT_TRUE(credit->differs);

  const ConflictColumn* name = column(s, "name");
  EXPECT_TRUE(name->base.isUndefined());
  EXPECT_TRUE(name->source.isUndefined());
  EXPECT_EQ(name->target.toString(), "Ada");
  EXPECT_FALSE(name->differs || name->sourceChanged || name->targetChanged);

  EXPECT_EQ(column(s, "id")->base.toInteger(), 7);
  EXPECT_FALSE(column(s, "id")->differs);
}

TEST_F(ConflictValuesTest, ADeleteNamesTheColumnTheTargetChangedByEliminationAndAnInsertHasNoBase) {
  ParkedConflict del = test::accountConflict(1);
  del.kind = "data";
  del.sourceJson = "null";
  del.change = test::captureChange(test::kAccounts, "DELETE FROM accounts WHERE id = 7");
  ConflictSides s = sides(del);
  EXPECT_EQ(s.op, "DELETE");
  EXPECT_EQ(s.note, "") << s.note.toStdString();
  ASSERT_EQ(s.columns.size(), 4u);
  const ConflictColumn* region = column(s, "region");
  ASSERT_NE(region, nullptr) << "'north' matches nothing at the target; it is the one name left";
  EXPECT_EQ(region->base.toString(), "north");
  EXPECT_TRUE(region->source.isUndefined());
  EXPECT_TRUE(region->targetChanged);
  EXPECT_TRUE(region->differs);
  EXPECT_FALSE(column(s, "credit")->differs);

  ParkedConflict ins = test::accountConflict(1);
  ins.kind = "conflict";
  ins.keyJson = R"({"id":8})";
  ins.sourceJson = R"({"credit":5,"id":8,"name":"Bo","region":"east"})";
  ins.targetJson = R"({"credit":5,"id":8,"name":"Bob","region":"east"})";
  ins.change = test::captureChange(test::kAccounts, "INSERT INTO accounts VALUES (8, 'Bo', 'east', 5)");
  s = sides(ins);
  EXPECT_EQ(s.op, "INSERT");
  ASSERT_EQ(s.columns.size(), 4u);
  for (const auto& c : s.columns) EXPECT_TRUE(c.base.isUndefined()) << c.name.toStdString();
  EXPECT_TRUE(column(s, "name")->differs);
  EXPECT_FALSE(column(s, "region")->differs);
  EXPECT_EQ(column(s, "name")->target.toString(), "Bob");
}

TEST_F(ConflictValuesTest, ValuesThatCannotBeNamedKeepTheirPositionAndABrokenChangeSaysSo) {
  ParkedConflict pc = test::accountConflict(1);
  // Two columns set to the same value from different bases: which is which cannot be known.
  pc.change = test::captureChange(test::kAccounts, "UPDATE accounts SET name = 'x', region = 'x' WHERE id = 7");
  pc.sourceJson = R"({"id":7,"name":"x","region":"x"})";
  ConflictSides s = sides(pc);
  EXPECT_TRUE(s.note.contains("2 value(s)")) << s.note.toStdString();
  ASSERT_NE(column(s, "column 2"), nullptr);
  EXPECT_EQ(column(s, "column 2")->base.toString(), "Ada");
  EXPECT_EQ(column(s, "column 3")->base.toString(), "north");

  // Every cut of a real change, and a few bytes that only start like one, are refused or decoded,
  // never hang (SQLite's own iterator never returns on a table header cut short).
  const auto whole = test::accountConflict(1).change;
  for (std::size_t n = 0; n < whole.size(); ++n) {
    pc.change.assign(whole.begin(), whole.begin() + static_cast<std::ptrdiff_t>(n));
    s = sides(pc);
    EXPECT_FALSE(s.note.isEmpty()) << "cut at " << n;
  }
  pc = test::accountConflict(1);
  pc.change = {0x54, 0x01, 0x02};
  s = sides(pc);
  EXPECT_EQ(s.op, "");
  EXPECT_TRUE(s.note.contains("not a changeset")) << s.note.toStdString();
  ASSERT_NE(column(s, "region"), nullptr);  // still side by side from the JSON
  EXPECT_EQ(column(s, "region")->source.toString(), "south");
  EXPECT_EQ(column(s, "region")->target.toString(), "west");
  EXPECT_TRUE(column(s, "region")->differs);
}

TEST_F(ConflictValuesTest, TheDetailModelShowsOneConflictAndFollowsAnotherWithRowSignalsNotResets) {
  ConflictDetailModel model;
  QAbstractItemModelTester tester(&model, QAbstractItemModelTester::FailureReportingMode::Warning);
  test::ModelSignals sig(&model);
  const ParkedConflict pc = test::accountConflict(1);
  ConflictRow a;
  a.id = 1;
  a.keyJson = QString::fromStdString(pc.keyJson);
  a.sourceJson = QString::fromStdString(pc.sourceJson);
  a.targetJson = QString::fromStdString(pc.targetJson);
  a.sides = sides(pc);
  model.show(&a);
  ASSERT_EQ(model.rowCount(), 4);
  const int region = model.rowOf("region");
  EXPECT_EQ(model.index(region, ConflictDetailModel::kBase).data().toString(), "north");
  EXPECT_EQ(model.index(region, ConflictDetailModel::kSource).data().toString(), "south");
  EXPECT_EQ(model.index(region, ConflictDetailModel::kTarget).data().toString(), "west");
  EXPECT_EQ(model.index(region, ConflictDetailModel::kTarget).data(Qt::BackgroundRole).value<QColor>(), QColor(0xf8, 0xc8, 0xc8));
  const int name = model.rowOf("name");
  EXPECT_EQ(model.index(name, ConflictDetailModel::kBase).data().toString(), "—");
  EXPECT_EQ(model.index(name, ConflictDetailModel::kSource).data().toString(), "(unchanged)");
  EXPECT_FALSE(model.index(name, ConflictDetailModel::kTarget).data(Qt::BackgroundRole).isValid());
  EXPECT_EQ(model.index(model.rowOf("id"), ConflictDetailModel::kName).data().toString(), "id (key)");

  ConflictRow b = a;  // another conflict on another table: different columns
  b.id = 2;
  b.keyJson = R"({"order_id":3})";
  b.sourceJson = R"({"order_id":3,"qty":2})";
  b.targetJson = "null";
  b.sides = sideBySide(b.keyJson, b.sourceJson, b.targetJson, nullptr, 0);
  model.show(&b);
  EXPECT_EQ(model.rowCount(), 2);
  EXPECT_EQ(model.index(model.rowOf("qty"), ConflictDetailModel::kTarget).data().toString(), "(no row)");
  model.show(nullptr);
  EXPECT_EQ(model.rowCount(), 0);
  EXPECT_EQ(sig.resets, 0);
  EXPECT_GE(sig.inserted, 2);
  EXPECT_GE(sig.removed, 2);
}

}  // namespace
}  // namespace ipcsync::admin
