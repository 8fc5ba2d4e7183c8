#pragma once
// Windows named pipe transport: the local transport on Windows.
//
// Listening: the first instance is created with FILE_FLAG_FIRST_PIPE_INSTANCE,
// so a second broker on a live name refuses to start (errc::broker_running);
// several instances wait for clients at once, so concurrent clients never
// wait for each other; remote clients are rejected (PIPE_REJECT_REMOTE_CLIENTS).
// The pipe's security descriptor admits the broker's own user, SYSTEM and
// Administrators; ListenOptions::socket_mode widens it the way it widens a
// socket file's mode: group bits (0060) admit the broker's primary group,
// other bits (0006) admit Everyone. Clients are granted read and write but
// never FILE_CREATE_PIPE_INSTANCE, so no client can serve the name.
//
// Peer identity: the client's process id (GetNamedPipeClientProcessId), the
// user SID of that process's token, and its creation time (for vouching,
// like a Unix peer's start time). A client whose process the broker may not
// open has unknown credentials and so no rights.
//
// Connecting: a client opens the pipe with read and write-data access only
// and SECURITY_IDENTIFICATION quality of service (the server may learn who
// it is but not act as it); while every instance is busy it retries for up
// to the connect deadline.

#include "transport/transport.hpp"

namespace daemoneye::eventbus::transport::pipe {

std::unique_ptr<Listener> listen(asio::any_io_executor ex, const Endpoint& endpoint, const ListenOptions& options);

asio::awaitable<Result<std::unique_ptr<Stream>>> connect(asio::any_io_executor ex, Endpoint endpoint);

}  // namespace daemoneye::eventbus::transport::pipe
