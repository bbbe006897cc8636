#include "ipcsync/ipccore/process_record.h"

#include <cstring>

namespace ipcsync {

std::string_view describe(RecordState state) noexcept {
  switch (state) {
    case RecordState::Free: return "free";
    case RecordState::Registering: return "registering";
    case RecordState::Registered: return "registered";
    case RecordState::Reclaiming: return "reclaiming";
  }
  return "unknown";
}

std::string_view ProcessRecord::nameView() const noexcept {
  return std::string_view(name, ::strnlen(name, kNameCapacity));
}

}  // namespace ipcsync
