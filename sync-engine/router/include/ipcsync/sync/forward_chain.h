// ForwardChain: the hops a forwarded entry takes on its way to a delivery's source (RoutePlan's
// Delivery::upstream), compiled, so that the subscriber gets the change as the source holds it:
// renamed, with the columns and rows each hop carries (docs/design/sync-engine.md, "Forwarding").
//
// A hop that carries every table as it is does nothing and is left out. A hop whose rules only
// name tables drops the others without needing a schema. Any other hop (a rename, columns, a row
// filter) is a ChangesetTransform over its two ends' schemas, so the chain can be compiled only
// once both ends have described themselves. Updates keep the whole old row the origin sent from
// hop to hop, so every row filter on the way judges the old row as well as the new one.
#pragma once

#include <expected>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "ipcsync/sync/changeset_transform.h"
#include "ipcsync/sync/route_plan.h"
#include "ipcsync/sync/table_schema.h"

namespace ipcsync::sync {

class ForwardChain {
 public:
  struct Error {
    enum class Kind { NotDescribed, Invalid } kind;
    std::string message;  // names the hop's route and what is missing or wrong
  };
  // The schemas an instance described, or nullptr while it has not.
  using SchemasOf = std::function<const SchemaMap*(const std::string& instance)>;

  static std::expected<ForwardChain, Error> create(std::span<const Hop> hops, const SchemasOf& schemasOf);

  // The entry (its pieces, and the tables it touches as the origin names them) as it reaches the
  // last hop's subscriber: `tables` then names its tables there. An empty change-set: nothing of
  // it gets there.
  std::expected<TransformOutput, std::string> apply(std::span<const std::vector<unsigned char>> pieces,
                                                    std::span<const std::string> tables);

  // False when every hop carries everything as it is: the entry reaches the source unchanged.
  bool transforms() const noexcept { return !m_hops.empty(); }

  // The origin's names of the tables the chain can carry; empty: it carries every table as it is.
  std::vector<std::string> originTables() const;

 private:
  std::vector<ChangesetTransform> m_hops;
};

}  // namespace ipcsync::sync
