// Location: the descriptor of a populated sub-block, as it travels through the rings.
//
// A sender posts a Location naming a run of its own block (arena, offset, length) and the
// channel it is for; the engine copies the bytes into the receiver's block and posts a Location
// naming the copy there. Large messages travel as a sealed memory object instead ("hand-over"):
// then `arena` carries the object's hand-over id and offset is 0. Locations never hold pointers.
#pragma once

#include <cstdint>

namespace ipcsync {

enum class LocationKind : std::uint32_t {
  Copy = 1,      // bytes in the block of whoever's ring holds the Location
  Handover = 2,  // a sealed memory object passed beside the ring; `arena` is its hand-over id
};

struct Location {
  std::uint32_t arena = 0;
  LocationKind kind = LocationKind::Copy;
  std::uint64_t offset = 0;       // from the start of the arena
  std::uint64_t length = 0;       // payload bytes
  std::uint64_t sequence = 0;     // per channel and sender, from 1, assigned by the sender
  std::uint32_t channel = 0;      // session id, engine-assigned
  std::uint32_t correlation = 0;  // request/reply pairing; 0 when unused
};
static_assert(sizeof(Location) == 40);

}  // namespace ipcsync
