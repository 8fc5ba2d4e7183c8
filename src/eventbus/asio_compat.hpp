#pragma once
// Asio 1.22 (Debian 12) keeps as_tuple under asio::experimental; newer Asio
// has asio::as_tuple. Code uses `use_tuple` so only this file knows.

#include <asio/experimental/as_tuple.hpp>
#include <asio/use_awaitable.hpp>

namespace daemoneye::aio {

// Completion token: co_await yields a tuple (error_code first) instead of throwing.
inline constexpr asio::experimental::as_tuple_t<asio::use_awaitable_t<>> use_tuple{asio::use_awaitable};

}  // namespace daemoneye::aio
