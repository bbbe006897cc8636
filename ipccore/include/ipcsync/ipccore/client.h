// Client: a process's registration with the engine of a namespace, and its own block.
//
// connect() performs the rendezvous: it finds the engine's socket through the namespace's admin
// segment (or an explicit runtime directory), introduces itself by name, and receives its control
// segment, block and notification handles as descriptors. From then on the client allocates and
// frees sub-blocks of its own block through its buddy manager without any system call; the
// engine is the only other party that maps that block.
//
// The connection to the engine doubles as a liveness channel both ways: when the client ends,
// however it ends, the engine reclaims everything it held; when the engine ends, engineFd()
// becomes readable and every call that needs the engine fails with EngineGone.
//
// Thread safety: allocate, free, bytes and stats may be called from any thread at once; connect,
// ping and the destructor need external serialisation. Pinned: copy and move are deleted.
#pragma once

#include <chrono>
#include <cstdint>
#include <expected>
#include <filesystem>
#include <memory>
#include <span>
#include <string>

#include "ipcsync/ipccore/buddy_manager.h"
#include "ipcsync/ipccore/error.h"
#include "ipcsync/ipccore/geometry.h"
#include "ipcsync/ipccore/process_record.h"
#include "ipcsync/ipccore/unique_fd.h"

namespace ipcsync {

struct ConnectOptions {
  std::string ns = "default";
  std::string name;  // 1..47 printable characters, unique in the namespace
  // How long connect() may wait in all, including for a free registry slot and for a busy
  // engine to answer. Errors after it: RegistryFull, EngineBusy.
  std::chrono::milliseconds timeout{2000};
  // Empty: find the socket through the admin segment. Otherwise <runtimeDir>/<ns>/engine.sock.
  std::filesystem::path runtimeDir;
  // How long allocate/free wait for the manager lock before reporting LockTimeout.
  std::chrono::milliseconds lockTimeout{1000};
};

class ProcessMemory;

class Client {
 public:
  // Registers with the engine. Errors, each with a message naming namespace, pid or path:
  // EngineNotRunning, EngineBusy, AccessDenied, VersionMismatch, NameTaken, RegistryFull,
  // InvalidArgument (bad name), EngineGone (the engine died during the rendezvous), BadSegment.
  static std::expected<std::unique_ptr<Client>, Error> connect(const ConnectOptions& options);

  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;
  // Deregisters (tells the engine, which then releases the block) and closes every descriptor.
  ~Client();

  // A sub-block of the own block of at least `bytes`. OutOfMemory and TooLarge name the sizes;
  // EngineGone if the engine died holding the manager lock.
  std::expected<Allocation, Error> allocate(std::uint64_t bytes);
  // Returns a sub-block. OutOfBounds, NotAllocated, DoubleFree name the location.
  std::expected<void, Error> free(const Allocation& allocation);
  // The bytes of an allocation in the own block; empty if it lies outside the block.
  std::span<std::byte> bytes(const Allocation& allocation) const noexcept;
  // Returns empty arenas beyond the minimum to the system; how many.
  std::expected<std::uint32_t, Error> trim();
  std::expected<ManagerStats, Error> stats() const;

  // A round trip to the engine. EngineGone if it has gone, EngineBusy if it did not answer in time.
  std::expected<void, Error> ping(std::chrono::milliseconds timeout = std::chrono::milliseconds(1000));
  // False once the engine has closed its end. Never blocks.
  bool engineAlive() const noexcept;
  // Readable (POLLIN/POLLHUP) when the engine sends something or goes away: add it to an event loop.
  int engineFd() const noexcept;

  const std::string& name() const noexcept { return m_name; }
  const std::string& ns() const noexcept { return m_ns; }
  std::uint32_t slot() const noexcept { return m_slot; }
  std::uint64_t generation() const noexcept { return m_generation; }
  std::int32_t enginePid() const noexcept { return m_enginePid; }
  const BlockGeometry& geometry() const noexcept { return m_geometry; }

 private:
  Client() = default;
  Error managerError(Errc code, std::string detail) const;

  std::string m_name;
  std::string m_ns;
  std::uint32_t m_slot = 0;
  std::uint64_t m_generation = 0;
  std::int32_t m_enginePid = 0;
  BlockGeometry m_geometry{};
  UniqueFd m_socket;
  UniqueFd m_toClient;  // engine -> client notifications (used by the communications phase)
  UniqueFd m_toEngine;  // client -> engine notifications
  std::unique_ptr<ProcessMemory> m_memory;
};

}  // namespace ipcsync
