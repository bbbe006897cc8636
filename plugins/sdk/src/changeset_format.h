// Internal: a bounds-checked walk over the changeset grammar (see changeset_writer.cpp), done
// before SQLite's iterator sees the bytes: SQLite 3.40's iterator loops forever on some truncated
// table headers, so only well-formed changesets are handed to it.
#pragma once

#include <expected>
#include <span>
#include <string>

namespace ipcsync::plugin_sdk::detail {

// Ok if `bytes` is a well-formed changeset; otherwise what is wrong and at which byte offset.
std::expected<void, std::string> validateChangeset(std::span<const unsigned char> bytes);

}  // namespace ipcsync::plugin_sdk::detail
