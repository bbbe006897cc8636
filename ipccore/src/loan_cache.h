// The loan cache: small runs a client allocates ahead, a batch under one manager lock, so that a
// client streaming small messages takes most loans without the lock that the engine holds while
// it forwards them and frees their runs (docs/design/loan-cache.md).
//
// The ready runs live in the control segment (layout::LoanCacheShared), not in the client: the
// engine drains the cache of a client that has gone idle, so that a sender that stopped holds
// nothing it does not use. Ready runs are allocated runs to the manager (they count as in use).
//
// A LoanCache is a view of two references; build one where needed. take() may run on any number
// of threads at once; refill() and drain() take the manager lock.
#pragma once

#include <cstdint>
#include <expected>
#include <optional>

#include "ipcsync/ipccore/buddy_manager.h"
#include "ipcsync/ipccore/control_layout.h"

namespace ipcsync {

class LoanCache {
 public:
  LoanCache(layout::LoanCacheShared& shared, BuddyManager& manager) noexcept : m_shared(shared), m_manager(manager) {}

  // The order a loan of `bytes` is cached in, if the cache keeps runs of that size (up to 512 B).
  std::optional<std::uint32_t> orderFor(std::uint64_t bytes) const noexcept;
  // How many runs of `order` a refill allocates: 2 KiB of them, at most kLoanCacheRuns.
  std::uint32_t batchFor(std::uint32_t order) const noexcept;

  // A ready run of `order`, without taking the lock; nullopt when none is ready.
  std::optional<Allocation> take(std::uint32_t order) noexcept;
  // Under the lock: a ready run if another thread refilled meanwhile, else a batch of new runs of
  // `order` (each leaving `keepFree` bytes free, as BuddyManager::allocate) of which one is
  // returned and the rest kept ready. Errors as allocate() when not even one run fits.
  std::expected<Allocation, Errc> refill(std::uint32_t order, std::uint64_t keepFree) noexcept;
  // Under the lock: frees every ready run; returns how many. An entry that names no allocated run
  // (the owner scribbled on its segment) stops the drain with free()'s error.
  std::expected<std::uint32_t, Errc> drain() noexcept;
  // Ready runs of every order, as of now (another party may change it at once).
  std::uint32_t ready() const noexcept;

 private:
  // A run's head unit, block-wide (as kept in the stacks), and back; nullopt for a unit that
  // cannot head a run of `order` in this block.
  std::uint32_t unitOf(const Allocation& a) const noexcept;
  std::optional<Allocation> allocationOf(std::uint32_t unit, std::uint32_t order) const noexcept;

  layout::LoanCacheShared& m_shared;
  BuddyManager& m_manager;
};

}  // namespace ipcsync
