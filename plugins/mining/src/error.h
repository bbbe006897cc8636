// Errors inside the mining plugin: a kind that maps one-to-one onto an ABI status code, and a
// message that says what was wrong, where, and what to do. Every fallible function returns
// std::expected<T, Error>; only the C boundary (plugin_entry.cpp) turns an Error into a status.
#pragma once

#include <ipcsync/plugin.h>

#include <expected>
#include <string>
#include <utility>

namespace ipcsync::mining {

enum class ErrorKind {
  InvalidArgument,  // IPCSYNC_EINVAL: a bad setting, envelope or value
  Storage,          // IPCSYNC_EIO: the database failed
  Busy,             // IPCSYNC_EBUSY: the database is locked by someone else; try again
  Schema,           // IPCSYNC_ESCHEMA: a change-set does not match the CRM schema
  Unsupported,      // IPCSYNC_EUNSUPPORTED: a table or operation mining does not accept
  Internal          // IPCSYNC_EINTERNAL: a broken invariant or an unexpected exception
};

struct Error {
  ErrorKind kind = ErrorKind::Internal;
  std::string message;
};

template <typename T = void>
using Expected = std::expected<T, Error>;

inline std::unexpected<Error> fail(ErrorKind kind, std::string message) {
  return std::unexpected(Error{kind, std::move(message)});
}

// The ABI status code for `kind` (never IPCSYNC_OK).
int statusOf(ErrorKind kind);

// Prepends `context` to the message: "context: message".
inline Error withContext(Error error, const std::string& context) {
  error.message = context + ": " + error.message;
  return error;
}

}  // namespace ipcsync::mining
