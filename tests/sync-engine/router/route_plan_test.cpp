// RoutePlan: deliveries, reverse routes, upstream origins and the loop guard.
#include <gtest/gtest.h>

#include "ipcsync/sync/route_plan.h"

namespace ipcsync::sync {
namespace {

JournalEntry entry(const std::string& origin, std::vector<std::string> provenance) {
  JournalEntry e;
  e.origin = origin;
  e.provenance = std::move(provenance);
  return e;
}

TEST(RoutePlanTest, BidirectionalRouteAddsAReverseDeliveryWithRenamesInverted) {
  Topology t;
  t.routes.push_back({.name = "r", .from = "crm", .to = {"crm2"},
                      .tables = {{.table = "accounts", .renameTo = "clients"}}, .bidirectional = true});
  auto plan = planDeliveries(t);
  ASSERT_TRUE(plan) << plan.error();
  ASSERT_EQ(plan->size(), 2u);
  EXPECT_EQ((*plan)[1].route, "r.reverse.crm2");
  EXPECT_EQ((*plan)[1].source, "crm2");
  EXPECT_EQ((*plan)[1].subscriber, "crm");
  EXPECT_EQ((*plan)[1].rules[0].table, "clients");
  EXPECT_EQ((*plan)[1].rules[0].renameTo, "accounts");
}

TEST(RoutePlanTest, TheReverseDeliveryMirrorsSourceAndTargetWinsSoTheRoutesFromWinsAtBothEnds) {
  for (const auto& [policy, reverse] : {std::pair{ConflictPolicy::SourceWins, ConflictPolicy::TargetWins},
                                        std::pair{ConflictPolicy::TargetWins, ConflictPolicy::SourceWins},
                                        std::pair{ConflictPolicy::Park, ConflictPolicy::Park}}) {
    Topology t;
    t.routes.push_back({.name = "r", .from = "crm", .to = {"crm2"}, .tables = {{.table = "accounts"}},
                        .bidirectional = true, .conflict = policy});
    auto plan = planDeliveries(t);
    ASSERT_TRUE(plan) << plan.error();
    ASSERT_EQ(plan->size(), 2u);
    EXPECT_EQ((*plan)[0].conflict, policy);
    EXPECT_EQ((*plan)[1].conflict, reverse);
  }
}

TEST(RoutePlanTest, EntriesNeverReturnToAnInstanceTheyPassedAroundACycle) {
  Topology t;
  t.routes.push_back({.name = "ab", .from = "a", .to = {"b"}});
  t.routes.push_back({.name = "bc", .from = "b", .to = {"c"}});
  t.routes.push_back({.name = "ca", .from = "c", .to = {"a"}});
  auto plan = planDeliveries(t);
  ASSERT_TRUE(plan);
  const Delivery& ab = (*plan)[0];
  const Delivery& bc = (*plan)[1];
  const Delivery& ca = (*plan)[2];
  const auto fromA = entry("a", {"a"});
  EXPECT_TRUE(travels(ab, fromA));
  EXPECT_TRUE(travels(bc, fromA));   // forwarded: b does not re-emit what it applied
  EXPECT_FALSE(travels(ca, fromA));  // back at its origin: stops
  EXPECT_EQ(appliedProvenance(bc, fromA), (std::vector<std::string>{"a", "b"}));
  EXPECT_FALSE(travels(ab, entry("c", {"c", "b"})));  // b is already in its provenance
}

TEST(RoutePlanTest, AForwardedEntrysHopsAreTheShortestPathToTheSourceNotThroughTheSubscriber) {
  Topology t;
  t.routes.push_back({.name = "ab", .from = "a", .to = {"b"}, .tables = {{.table = "x", .renameTo = "y"}}});
  t.routes.push_back({.name = "bc", .from = "b", .to = {"c"}});
  t.routes.push_back({.name = "cd", .from = "c", .to = {"d"}});
  t.routes.push_back({.name = "bd", .from = "b", .to = {"d"}});
  t.routes.push_back({.name = "de", .from = "d", .to = {"e"}});
  auto plan = planDeliveries(t);
  ASSERT_TRUE(plan) << plan.error();
  const Delivery& de = (*plan)[4];
  ASSERT_EQ(de.route, "de");
  std::set<std::string> upstream;
  for (const auto& [origin, hops] : de.upstream) upstream.insert(origin);
  EXPECT_EQ(upstream, (std::set<std::string>{"a", "b", "c"}));
  EXPECT_TRUE(de.carriesFrom("d") && de.carriesFrom("a") && !de.carriesFrom("e"));
  const auto names = [](const std::vector<Hop>& hops) {
    std::vector<std::string> out;
    for (const auto& h : hops) out.push_back(h.route);
    return out;
  };
  EXPECT_EQ(names(de.upstream.at("a")), (std::vector<std::string>{"ab", "bd"}));  // not ab, bc, cd
  EXPECT_EQ(de.upstream.at("a").front().rules.front().renameTo, "y");
  EXPECT_EQ(names(de.upstream.at("c")), std::vector<std::string>{"cd"});
  EXPECT_FALSE(de.upstream.contains("d"));  // the source's own entries take no hop
}

// s gets a's entries only through t: forwarding them from s to t would bring them back to t.
TEST(RoutePlanTest, EntriesThatReachTheSourceOnlyThroughTheSubscriberDoNotTravel) {
  Topology t;
  t.routes.push_back({.name = "at", .from = "a", .to = {"t"}});
  t.routes.push_back({.name = "ts", .from = "t", .to = {"s"}, .bidirectional = true});
  auto plan = planDeliveries(t);
  ASSERT_TRUE(plan) << plan.error();
  const Delivery& st = (*plan)[2];
  ASSERT_EQ(st.route, "ts.reverse.s");
  EXPECT_FALSE(travels(st, entry("a", {"a"})));
  EXPECT_TRUE(travels((*plan)[1], entry("a", {"a"})));  // t -> s forwards a's entries
}

TEST(RoutePlanTest, EntriesFromInstancesNotUpstreamDoNotTravel) {
  Topology t;
  t.routes.push_back({.name = "crm-mining", .from = "crm", .to = {"mining"}});
  t.routes.push_back({.name = "erp-wh", .from = "erp", .to = {"warehouse"}});
  auto plan = planDeliveries(t);
  ASSERT_TRUE(plan);
  EXPECT_TRUE(travels((*plan)[0], entry("crm", {"crm"})));
  EXPECT_FALSE(travels((*plan)[0], entry("erp", {"erp"})));
}

TEST(RoutePlanTest, RefusesRoutesThatCannotWork) {
  const auto error = [](RouteConfig r) {
    Topology t;
    t.routes.push_back(r);
    auto p = planDeliveries(t);
    return p ? std::string("(planned)") : p.error();
  };
  EXPECT_NE(error({.from = "crm", .to = {"crm"}}).find("to itself"), std::string::npos);
  EXPECT_NE(error({.from = "crm"}).find("'to' is empty"), std::string::npos);
  EXPECT_NE(error({.from = "crm", .to = {"m"}, .conflict = ConflictPolicy::LastWriterWins}).find("timestamp_column"),
            std::string::npos);
  Topology twice;
  twice.routes.push_back({.name = "x", .from = "a", .to = {"b"}});
  twice.routes.push_back({.name = "x", .from = "b", .to = {"c"}});
  auto p = planDeliveries(twice);
  ASSERT_FALSE(p);
  EXPECT_NE(p.error().find("'x' is used by another route"), std::string::npos);
}

TEST(RoutePlanTest, DefaultRouteNameIsSourceToFirstTarget) {
  Topology t;
  t.routes.push_back({.from = "crm", .to = {"mining", "crm2"}});
  auto plan = planDeliveries(t);
  ASSERT_TRUE(plan);
  EXPECT_EQ((*plan)[0].route, "crm-to-mining");
  EXPECT_EQ((*plan)[1].route, "crm-to-mining");
  EXPECT_EQ((*plan)[1].subscriber, "crm2");
}

// duplicateWays follows each hop's tables and renames as the router does (ValidateTest has the
// same shapes against the real plugins).
TablesOf everyoneHasAccountsAndOrders(std::initializer_list<const char*> instances) {
  TablesOf out;
  for (const char* i : instances)
    for (const char* t : {"accounts", "orders", "clients"}) out[i][t] = TableRoles{true, true};
  return out;
}

TEST(RoutePlanTest, ADiamondIsTwoWaysForEveryTableBothCarry) {
  Topology t;
  t.routes.push_back({.name = "ab", .from = "a", .to = {"b"}});
  t.routes.push_back({.name = "bd", .from = "b", .to = {"d"}, .tables = {{.table = "orders"}}});
  t.routes.push_back({.name = "ad", .from = "a", .to = {"d"}, .tables = {{.table = "accounts"}, {.table = "orders"}}});
  auto plan = planDeliveries(t);
  ASSERT_TRUE(plan) << plan.error();
  const auto dups = duplicateWays(*plan, everyoneHasAccountsAndOrders({"a", "b", "d"}));
  ASSERT_EQ(dups.size(), 1u);
  EXPECT_EQ(dups[0].subscriber, "d");
  EXPECT_EQ(dups[0].origin, "a");
  EXPECT_EQ(dups[0].tables, std::vector<std::string>{"orders"});  // bd does not carry accounts
  ASSERT_EQ(dups[0].paths.size(), 2u);
  EXPECT_EQ(dups[0].paths[0], (std::vector<std::string>{"a", "b", "d"}));
  EXPECT_EQ(dups[0].paths[1], (std::vector<std::string>{"a", "d"}));
}

TEST(RoutePlanTest, AHopThatLeavesATableOutOrRenamesItEndsTheSecondWay) {
  for (const TableRule& hop : {TableRule{.table = "accounts"}, TableRule{.table = "orders", .renameTo = "clients"}}) {
    Topology t;
    t.routes.push_back({.name = "ab", .from = "a", .to = {"b"}, .tables = {hop}});
    t.routes.push_back({.name = "bd", .from = "b", .to = {"d"}});
    t.routes.push_back({.name = "ad", .from = "a", .to = {"d"}, .tables = {{.table = "orders"}}});
    auto plan = planDeliveries(t);
    ASSERT_TRUE(plan) << plan.error();
    EXPECT_TRUE(duplicateWays(*plan, everyoneHasAccountsAndOrders({"a", "b", "d"})).empty()) << hop.table;
  }
}

TEST(RoutePlanTest, AnUndescribedInstanceIsLeftOut) {
  Topology t;
  t.routes.push_back({.name = "ab", .from = "a", .to = {"b"}});
  t.routes.push_back({.name = "bd", .from = "b", .to = {"d"}});
  t.routes.push_back({.name = "ad", .from = "a", .to = {"d"}});
  auto plan = planDeliveries(t);
  ASSERT_TRUE(plan) << plan.error();
  EXPECT_EQ(duplicateWays(*plan, everyoneHasAccountsAndOrders({"a", "b", "d"})).size(), 1u);
  EXPECT_TRUE(duplicateWays(*plan, everyoneHasAccountsAndOrders({"b", "d"})).empty()) << "a described nothing";
}

}  // namespace
}  // namespace ipcsync::sync
