#include "ipcsync/ipccore/mapping.h"

#include <sys/mman.h>

#include <cerrno>
#include <utility>

namespace ipcsync {

Mapping::Mapping(Mapping&& other) noexcept
    : m_data(std::exchange(other.m_data, nullptr)), m_size(std::exchange(other.m_size, 0)) {}

Mapping& Mapping::operator=(Mapping&& other) noexcept {
  if (this != &other) {
    reset();
    m_data = std::exchange(other.m_data, nullptr);
    m_size = std::exchange(other.m_size, 0);
  }
  return *this;
}

Mapping::~Mapping() { reset(); }

void Mapping::reset() noexcept {
  if (m_data) ::munmap(m_data, m_size);
  m_data = nullptr;
  m_size = 0;
}

std::expected<Mapping, Error> Mapping::map(int fd, std::size_t length, Access access, const char* what) {
  const int prot = access == Access::ReadOnly ? PROT_READ : PROT_READ | PROT_WRITE;
  void* p = ::mmap(nullptr, length, prot, MAP_SHARED, fd, 0);
  if (p == MAP_FAILED) return std::unexpected(systemError(std::string("mmap ") + what, errno));
  return Mapping(static_cast<std::byte*>(p), length);
}

}  // namespace ipcsync
