// zmq-proxy XSUB_ENDPOINT XPUB_ENDPOINT: the broker of the comparison's
// ZeroMQ row. Publishers connect to the XSUB side and subscribers to the
// XPUB side; zmq_proxy forwards messages one way and subscriptions the
// other. High-water marks are 0 (unbounded), so it never drops a message.
//
// SIGTERM's default action ends it: it holds nothing worth flushing, and a
// signal handler could not stop zmq_proxy() reliably (it only notices a
// signal that lands while it waits, rarely the case under load). The ipc
// socket files it leaves are removed by the next bind to the same path.

#include <zmq.h>

#include <cstdio>

namespace {

int fail(const char* what) {
  std::fprintf(stderr, "zmq-proxy: %s: %s\n", what, zmq_strerror(zmq_errno()));
  return 1;
}

bool unbounded(void* socket) {
  const int zero = 0;
  return zmq_setsockopt(socket, ZMQ_SNDHWM, &zero, sizeof zero) == 0 &&
         zmq_setsockopt(socket, ZMQ_RCVHWM, &zero, sizeof zero) == 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: zmq-proxy XSUB_ENDPOINT XPUB_ENDPOINT\n");
    return 2;
  }
  void* context = zmq_ctx_new();
  void* xsub = zmq_socket(context, ZMQ_XSUB);
  void* xpub = zmq_socket(context, ZMQ_XPUB);
  if (!xsub || !xpub || !unbounded(xsub) || !unbounded(xpub)) return fail("socket");
  if (zmq_bind(xsub, argv[1]) != 0) return fail(argv[1]);
  if (zmq_bind(xpub, argv[2]) != 0) return fail(argv[2]);
  zmq_proxy(xsub, xpub, nullptr);  // returns only on an error
  return fail("proxy");
}
