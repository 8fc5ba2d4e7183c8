#include "process.hpp"

#include <atomic>
#include <fstream>
#include <stdexcept>
#include <sstream>
#include <thread>

// The portable part of the process helpers; starting, waiting for and
// signalling processes is in process_posix.cpp / process_windows.cpp.

namespace daemoneye::testing {

std::string output_stem(const Process::Options& options) {
  if (options.output_dir.empty()) throw std::invalid_argument("Process needs an output_dir");
  static std::atomic<int> counter{0};
  return options.output_dir + "/" + (options.label.empty() ? "proc" : options.label) + "-" + std::to_string(++counter);
}

std::string Process::out() const { return read_file(out_path_); }
std::string Process::err() const { return read_file(err_path_); }
std::vector<std::string> Process::out_lines() const { return split_lines(out()); }

bool wait_until(const std::function<bool()>& pred, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    if (pred()) return true;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(5ms);
  }
}

std::string read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

std::vector<std::string> split_lines(const std::string& text) {
  std::vector<std::string> lines;
  std::size_t pos = 0;
  while (pos < text.size()) {
    const std::size_t nl = text.find('\n', pos);
    if (nl == std::string::npos) break;  // a partial last line is not a line yet
    // Windows programs end text lines with CRLF; the CR is not content.
    const std::size_t end = nl > pos && text[nl - 1] == '\r' ? nl - 1 : nl;
    lines.push_back(text.substr(pos, end - pos));
    pos = nl + 1;
  }
  return lines;
}

}  // namespace daemoneye::testing
