#pragma once
// The token of the TCP loopback fallback. TCP carries no peer credentials,
// so a broker listening on TCP writes a fresh random token, at every start,
// to a file only its own user can read (token_file_for() in
// <daemoneye/eventbus/endpoint.hpp> says where); a TCP client proves it may
// act as that user by sending the file's contents in its Hello.

#include <string>
#include <string_view>

#include <daemoneye/eventbus/error.hpp>

namespace daemoneye::eventbus::detail {

// Random bytes in a token (256 bits), written as twice as many hex digits.
inline constexpr std::size_t kTokenBytes = 32;
// The most a token file may hold; anything longer is not one of ours.
inline constexpr std::size_t kMaxTokenFileBytes = 4096;

// A new token from the OS's secure generator: kTokenBytes bytes as lowercase
// hex. Throws std::system_error if the OS cannot supply random bytes.
std::string new_token();

// The token in the file at `path`: its contents without surrounding
// whitespace. Fails with the file's error (std::errc::no_such_file_or_directory
// when it does not exist) or errc::unauthenticated for an empty or oversized
// file; the detail names the path.
Result<std::string> read_token_file(const std::string& path);

// Whether `presented` is `expected`, in time that depends only on their
// lengths, never on where they first differ.
bool same_token(std::string_view presented, std::string_view expected) noexcept;

}  // namespace daemoneye::eventbus::detail
