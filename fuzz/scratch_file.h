// The scratch file a fuzz target writes each input to when the code under test reads only named
// files (matio, LibTorch's archive reader, our MAT check): in /dev/shm (memory) where there is
// one, named by the process so that parallel fuzzers do not share it, removed at exit.
#pragma once

#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>

namespace privaudit::fuzz {

// A plain array, not a std::string: the atexit handler runs after static strings are destroyed.
inline const char* scratch_path() {
  static char path[128] = "";
  if (path[0] == 0) {
    const char* folder = std::filesystem::is_directory("/dev/shm") ? "/dev/shm" : "/tmp";
    std::snprintf(path, sizeof path, "%s/privaudit-fuzz-%d", folder, static_cast<int>(::getpid()));
    std::atexit([] { std::remove(scratch_path()); });
  }
  return path;
}

// Writes the input to the scratch file; false when it cannot (the input is then skipped).
inline bool write_scratch(const uint8_t* data, size_t size) {
  FILE* file = std::fopen(scratch_path(), "wb");
  if (file == nullptr) return false;
  const bool written = std::fwrite(data, 1, size, file) == size;
  return std::fclose(file) == 0 && written;
}

}  // namespace privaudit::fuzz
