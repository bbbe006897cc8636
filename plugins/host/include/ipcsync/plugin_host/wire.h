// Wire codec between the sync engine and a plugin host (docs/design/plugin-host.md).
//
// Header-only, so the sync engine and the host share one definition. A frame is one IPC message:
//
//   frame  := version:u8 kind:u8 reserved:u16(=0) body
//   u16/u32/u64/i64 little-endian; str := len:u32 bytes; optstr := 0xFFFFFFFF | str;
//   blob := len:u64 bytes; strs := count:u32 str*
//
// Each message type below lists its body fields in order (its `fields` function is the grammar).
// encode() sizes a frame and writes it into caller memory (an IPC loan) without an intermediate
// copy; decode() checks every length against the frame and returns an error naming the field and
// offset instead of reading past the end. Decoded blobs and strings that point into the frame
// (Envelope::data, Conflict::change) are views: valid while the frame is.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <expected>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace ipcsync::wire {

inline constexpr std::uint8_t kVersion = 1;
inline constexpr std::size_t kHeaderSize = 4;

enum class Kind : std::uint8_t {
  // Requests, sync engine -> host, sent with request() (a correlation id); each gets one reply.
  Describe = 1,     // -> Description
  Start = 2,        // -> Ok | Failure
  Apply = 3,        // -> ApplyResult | Failure
  Snapshot = 4,     // -> SnapshotPiece* (plain messages) then SnapshotDone | Failure
  LastApplied = 5,  // -> Sequence | Failure
  Acknowledge = 6,  // -> Ok | Failure
  Stop = 7,         // -> Ok | Failure; the host then ends
  // Replies, host -> sync engine, sent with reply().
  Ok = 64,
  Failure = 65,
  Description = 66,
  ApplyResult = 67,
  SnapshotDone = 68,
  Sequence = 69,
  // Host -> sync engine, plain messages (no correlation).
  Emit = 96,
  SnapshotPiece = 97,
  Conflict = 98,
};

// "Apply", "Emit", ...; "unknown" for a value outside the enum.
constexpr std::string_view name(Kind kind) noexcept {
  switch (kind) {
    case Kind::Describe: return "Describe";
    case Kind::Start: return "Start";
    case Kind::Apply: return "Apply";
    case Kind::Snapshot: return "Snapshot";
    case Kind::LastApplied: return "LastApplied";
    case Kind::Acknowledge: return "Acknowledge";
    case Kind::Stop: return "Stop";
    case Kind::Ok: return "Ok";
    case Kind::Failure: return "Failure";
    case Kind::Description: return "Description";
    case Kind::ApplyResult: return "ApplyResult";
    case Kind::SnapshotDone: return "SnapshotDone";
    case Kind::Sequence: return "Sequence";
    case Kind::Emit: return "Emit";
    case Kind::SnapshotPiece: return "SnapshotPiece";
    case Kind::Conflict: return "Conflict";
  }
  return "unknown";
}

// ---- message bodies ----------------------------------------------------------------------------

struct Empty {  // Describe, Stop, Ok
  template <class S, class IO> static void fields(S&, IO&) {}
};

struct Start {
  static constexpr Kind kKind = Kind::Start;
  std::uint64_t journaledThrough = 0;
  template <class S, class IO> static void fields(S& s, IO& io) { io("journaled_through", s.journaledThrough); }
};

// One change-set or piece: Apply (with route and policy), Emit and SnapshotPiece.
struct Envelope {
  std::string origin;
  std::uint64_t sequence = 0;
  std::optional<std::string> route;
  std::int64_t commitTimeUs = 0;
  std::vector<std::string> provenance;
  std::uint32_t pieceIndex = 0;
  std::uint32_t pieceCount = 1;
  std::uint32_t conflictPolicy = 0;  // ipcsync_conflict_policy
  std::optional<std::string> timestampColumn;
  std::span<const std::byte> data;
  template <class S, class IO> static void fields(S& s, IO& io) {
    io("origin", s.origin);
    io("sequence", s.sequence);
    io("route", s.route);
    io("commit_time_us", s.commitTimeUs);
    io("provenance", s.provenance);
    io("piece_index", s.pieceIndex);
    io("piece_count", s.pieceCount);
    io("conflict_policy", s.conflictPolicy);
    io("timestamp_column", s.timestampColumn);
    io("data", s.data);
  }
};

struct SnapshotRequest {
  static constexpr Kind kKind = Kind::Snapshot;
  std::string table;
  std::string route;
  std::uint64_t maxPieceBytes = 0;
  template <class S, class IO> static void fields(S& s, IO& io) {
    io("table", s.table);
    io("route", s.route);
    io("max_piece_bytes", s.maxPieceBytes);
  }
};

struct LastAppliedRequest {
  static constexpr Kind kKind = Kind::LastApplied;
  std::string route;
  template <class S, class IO> static void fields(S& s, IO& io) { io("route", s.route); }
};

struct Acknowledge {
  static constexpr Kind kKind = Kind::Acknowledge;
  std::uint64_t sequence = 0;
  template <class S, class IO> static void fields(S& s, IO& io) { io("sequence", s.sequence); }
};

struct Failure {
  static constexpr Kind kKind = Kind::Failure;
  std::uint32_t status = 0;  // IPCSYNC_E*
  std::string message;
  template <class S, class IO> static void fields(S& s, IO& io) {
    io("status", s.status);
    io("message", s.message);
  }
};

struct Description {
  static constexpr Kind kKind = Kind::Description;
  std::string json;  // as `ipcsync-plugin-host --describe` prints it
  template <class S, class IO> static void fields(S& s, IO& io) { io("json", s.json); }
};

struct ApplyResult {
  static constexpr Kind kKind = Kind::ApplyResult;
  std::uint32_t status = 0;  // ipcsync_apply_status
  std::uint64_t changesApplied = 0;
  std::uint64_t conflicts = 0;
  template <class S, class IO> static void fields(S& s, IO& io) {
    io("status", s.status);
    io("changes_applied", s.changesApplied);
    io("conflicts", s.conflicts);
  }
};

struct SnapshotDone {
  static constexpr Kind kKind = Kind::SnapshotDone;
  std::uint64_t asOf = 0;
  template <class S, class IO> static void fields(S& s, IO& io) { io("as_of", s.asOf); }
};

struct Sequence {
  static constexpr Kind kKind = Kind::Sequence;
  std::uint64_t sequence = 0;
  template <class S, class IO> static void fields(S& s, IO& io) { io("sequence", s.sequence); }
};

struct Conflict {
  static constexpr Kind kKind = Kind::Conflict;
  std::string route, origin;
  std::uint64_t sequence = 0;
  std::string table, kind, keyJson;
  std::optional<std::string> sourceJson, targetJson;
  std::span<const std::byte> change;
  template <class S, class IO> static void fields(S& s, IO& io) {
    io("route", s.route);
    io("origin", s.origin);
    io("sequence", s.sequence);
    io("table", s.table);
    io("kind", s.kind);
    io("key_json", s.keyJson);
    io("source_json", s.sourceJson);
    io("target_json", s.targetJson);
    io("change", s.change);
  }
};

// ---- codec -------------------------------------------------------------------------------------

namespace detail {

// Writes (or, with a null output, only counts) a frame's fields.
class Writer {
 public:
  explicit Writer(std::byte* out) : m_out(out) {}
  std::size_t size() const noexcept { return m_pos; }

  void operator()(const char*, std::uint8_t v) { put(&v, 1); }
  void operator()(const char*, std::uint16_t v) { le(v); }
  void operator()(const char*, std::uint32_t v) { le(v); }
  void operator()(const char*, std::uint64_t v) { le(v); }
  void operator()(const char*, std::int64_t v) { le(static_cast<std::uint64_t>(v)); }
  void operator()(const char* f, const std::string& v) { str(f, v); }
  void operator()(const char* f, const std::optional<std::string>& v) {
    if (v) str(f, *v);
    else le(std::uint32_t{0xFFFFFFFFu});
  }
  void operator()(const char* f, const std::vector<std::string>& v) {
    le(static_cast<std::uint32_t>(v.size()));
    for (const auto& s : v) str(f, s);
  }
  void operator()(const char*, std::span<const std::byte> v) {
    le(static_cast<std::uint64_t>(v.size()));
    put(v.data(), v.size());
  }

 private:
  template <class T> void le(T v) {
    unsigned char b[sizeof(T)];
    for (std::size_t i = 0; i < sizeof(T); ++i) b[i] = static_cast<unsigned char>(v >> (8 * i));
    put(b, sizeof b);
  }
  void str(const char*, std::string_view s) {
    le(static_cast<std::uint32_t>(s.size()));
    put(s.data(), s.size());
  }
  void put(const void* p, std::size_t n) {
    if (m_out && n) std::memcpy(m_out + m_pos, p, n);
    m_pos += n;
  }
  std::byte* m_out;
  std::size_t m_pos = 0;
};

// Reads fields, bounds-checked; the first failure is kept and every later read is a no-op.
class Reader {
 public:
  explicit Reader(std::span<const std::byte> in, std::size_t pos) : m_in(in), m_pos(pos) {}
  const std::optional<std::string>& error() const noexcept { return m_error; }
  std::size_t pos() const noexcept { return m_pos; }

  void operator()(const char* f, std::uint8_t& v) { le(f, v); }
  void operator()(const char* f, std::uint16_t& v) { le(f, v); }
  void operator()(const char* f, std::uint32_t& v) { le(f, v); }
  void operator()(const char* f, std::uint64_t& v) { le(f, v); }
  void operator()(const char* f, std::int64_t& v) {
    std::uint64_t u = 0;
    le(f, u);
    v = static_cast<std::int64_t>(u);
  }
  void operator()(const char* f, std::string& v) {
    std::uint32_t n = 0;
    le(f, n);
    str(f, n, v);
  }
  void operator()(const char* f, std::optional<std::string>& v) {
    std::uint32_t n = 0;
    le(f, n);
    if (n == 0xFFFFFFFFu) {
      v.reset();
      return;
    }
    std::string s;
    str(f, n, s);
    v = std::move(s);
  }
  void operator()(const char* f, std::vector<std::string>& v) {
    std::uint32_t count = 0;
    le(f, count);
    v.clear();
    for (std::uint32_t i = 0; i < count && !m_error; ++i) {
      if (remaining() < 4) {
        fail(f, "announces " + std::to_string(count) + " strings but the frame ends after " + std::to_string(i));
        return;
      }
      std::string s;
      (*this)(f, s);
      v.push_back(std::move(s));
    }
  }
  void operator()(const char* f, std::span<const std::byte>& v) {
    std::uint64_t n = 0;
    le(f, n);
    if (m_error) return;
    if (n > remaining()) {
      fail(f, "is " + std::to_string(n) + " bytes long but only " + std::to_string(remaining()) + " remain");
      return;
    }
    v = m_in.subspan(m_pos, static_cast<std::size_t>(n));
    m_pos += static_cast<std::size_t>(n);
  }
  void fail(const char* field, const std::string& what) {
    if (!m_error) m_error = "field '" + std::string(field) + "' at offset " + std::to_string(m_pos) + " " + what;
  }
  std::size_t remaining() const noexcept { return m_in.size() - m_pos; }

 private:
  template <class T> void le(const char* f, T& v) {
    if (m_error) return;
    if (remaining() < sizeof(T)) {
      fail(f, "needs " + std::to_string(sizeof(T)) + " bytes but only " + std::to_string(remaining()) + " remain");
      return;
    }
    T out = 0;
    for (std::size_t i = 0; i < sizeof(T); ++i)
      out = static_cast<T>(out | static_cast<T>(static_cast<T>(std::to_integer<unsigned>(m_in[m_pos + i])) << (8 * i)));
    m_pos += sizeof(T);
    v = out;
  }
  void str(const char* f, std::uint32_t n, std::string& v) {
    if (m_error) return;
    if (n > remaining()) {
      fail(f, "is " + std::to_string(n) + " bytes long but only " + std::to_string(remaining()) + " remain");
      return;
    }
    v.assign(reinterpret_cast<const char*>(m_in.data() + m_pos), n);
    m_pos += n;
  }
  std::span<const std::byte> m_in;
  std::size_t m_pos;
  std::optional<std::string> m_error;
};

}  // namespace detail

// The size of a frame of `kind` carrying `body`.
template <class T> std::size_t encodedSize(Kind, const T& body) {
  detail::Writer w(nullptr);
  T::fields(body, w);
  return kHeaderSize + w.size();
}

// Writes the frame into `out`, which must hold encodedSize() bytes; returns the bytes written.
template <class T> std::size_t encodeInto(std::span<std::byte> out, Kind kind, const T& body) {
  out[0] = std::byte{kVersion};
  out[1] = static_cast<std::byte>(kind);
  out[2] = std::byte{0};
  out[3] = std::byte{0};
  detail::Writer w(out.data() + kHeaderSize);
  T::fields(body, w);
  return kHeaderSize + w.size();
}

// The frame as a vector (tests, and callers that do not write into a loan).
template <class T> std::vector<std::byte> encode(Kind kind, const T& body) {
  std::vector<std::byte> out(encodedSize(kind, body));
  encodeInto(out, kind, body);
  return out;
}

// The kind of a frame, after checking its header. The error names what is wrong.
inline std::expected<Kind, std::string> peekKind(std::span<const std::byte> frame) {
  if (frame.size() < kHeaderSize)
    return std::unexpected("frame of " + std::to_string(frame.size()) + " bytes is shorter than its " +
                           std::to_string(kHeaderSize) + "-byte header");
  const auto version = std::to_integer<unsigned>(frame[0]);
  if (version != kVersion)
    return std::unexpected("frame has wire version " + std::to_string(version) + ", expected " + std::to_string(kVersion) +
                           "; run a host and sync engine of the same build");
  if (frame[2] != std::byte{0} || frame[3] != std::byte{0})
    return std::unexpected(std::string("frame has a non-zero reserved field; run a host and sync engine of the same build"));
  const auto kind = static_cast<Kind>(frame[1]);
  if (name(kind) == "unknown")
    return std::unexpected("frame has unknown kind " + std::to_string(std::to_integer<unsigned>(frame[1])));
  return kind;
}

// Decodes the body of a frame whose kind the caller has checked. Trailing bytes are an error.
template <class T> std::expected<T, std::string> decode(std::span<const std::byte> frame) {
  auto kind = peekKind(frame);
  if (!kind) return std::unexpected(kind.error());
  T out{};
  detail::Reader r(frame, kHeaderSize);
  T::fields(out, r);
  if (r.error()) return std::unexpected(std::string(name(*kind)) + " frame: " + *r.error());
  if (r.remaining() != 0)
    return std::unexpected(std::string(name(*kind)) + " frame: " + std::to_string(r.remaining()) +
                           " unexpected bytes after the last field at offset " + std::to_string(r.pos()));
  return out;
}

}  // namespace ipcsync::wire
