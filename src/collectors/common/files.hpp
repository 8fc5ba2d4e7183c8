#pragma once
// Small file helpers shared by the collector sources: bounded reads of
// (pseudo-)files such as those under /proc, and SHA-256 of a file.
#include <cstddef>
#include <functional>
#include <optional>
#include <string>

namespace daemoneye::collectors {

// The whole content of `path`, at most `max_bytes` of it; nullopt when it
// cannot be opened or read (vanished process, permission). Works for procfs
// files, whose stat size is 0.
std::optional<std::string> read_file(const std::string& path, std::size_t max_bytes = 1u << 20);

// The target of a symbolic link; nullopt when it cannot be read.
std::optional<std::string> read_link(const std::string& path);

// Lower-case hex SHA-256 of the file's content; nullopt when it cannot be
// read, or when `cancelled` (polled between chunks) returns true.
std::optional<std::string> sha256_file(const std::string& path, const std::function<bool()>& cancelled = {});

}  // namespace daemoneye::collectors
