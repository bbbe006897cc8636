// Mapping: sole owner of one mmap'd range; unmaps on destruction. Move-only.
#pragma once

#include <cstddef>
#include <expected>

#include "ipcsync/ipccore/error.h"

namespace ipcsync {

class Mapping {
 public:
  enum class Access { ReadOnly, ReadWrite };

  Mapping() noexcept = default;
  Mapping(Mapping&& other) noexcept;
  Mapping& operator=(Mapping&& other) noexcept;
  Mapping(const Mapping&) = delete;
  Mapping& operator=(const Mapping&) = delete;
  ~Mapping();

  // Maps `length` bytes of `fd` from offset 0, shared. The descriptor may be closed afterwards.
  // Fails with SystemError naming `what`.
  static std::expected<Mapping, Error> map(int fd, std::size_t length, Access access,
                                           const char* what);

  std::byte* data() const noexcept { return m_data; }
  std::size_t size() const noexcept { return m_size; }
  bool valid() const noexcept { return m_data != nullptr; }

 private:
  Mapping(std::byte* data, std::size_t size) noexcept : m_data(data), m_size(size) {}
  void reset() noexcept;

  std::byte* m_data = nullptr;
  std::size_t m_size = 0;
};

}  // namespace ipcsync
