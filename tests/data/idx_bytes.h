// Bytes of IDX files (the MNIST format) for tests that write their own: big-endian integers and
// the two headers the loaders read.
#pragma once

#include <cstdint>
#include <string>

namespace privaudit::testing {

inline std::string be32(uint32_t value) {
  return {static_cast<char>(value >> 24), static_cast<char>(value >> 16),
          static_cast<char>(value >> 8), static_cast<char>(value)};
}

// Magic 0x00000803 (unsigned bytes, 3 dimensions), then n, h, w.
inline std::string idx_images_header(uint32_t n, uint32_t h, uint32_t w) {
  return std::string("\0\0\x08\x03", 4) + be32(n) + be32(h) + be32(w);
}

// Magic 0x00000801 (unsigned bytes, 1 dimension), then n.
inline std::string idx_labels_header(uint32_t n) { return std::string("\0\0\x08\x01", 4) + be32(n); }

}  // namespace privaudit::testing
