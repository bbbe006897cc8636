#include "error.h"

namespace ipcsync::mining {

int statusOf(ErrorKind kind) {
  switch (kind) {
    case ErrorKind::InvalidArgument: return IPCSYNC_EINVAL;
    case ErrorKind::Storage: return IPCSYNC_EIO;
    case ErrorKind::Busy: return IPCSYNC_EBUSY;
    case ErrorKind::Schema: return IPCSYNC_ESCHEMA;
    case ErrorKind::Unsupported: return IPCSYNC_EUNSUPPORTED;
    case ErrorKind::Internal: return IPCSYNC_EINTERNAL;
  }
  return IPCSYNC_EINTERNAL;
}

}  // namespace ipcsync::mining
