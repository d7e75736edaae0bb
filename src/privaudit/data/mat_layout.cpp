#include "privaudit/data/mat_layout.h"

#include <zlib.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <vector>

#include "privaudit/util/error.h"

namespace privaudit::data {

namespace {

constexpr uint32_t kMiInt32 = 5;
constexpr uint32_t kMiUint32 = 6;
constexpr uint32_t kMiMatrix = 14;
constexpr uint32_t kMiCompressed = 15;
constexpr uint32_t kClassCell = 1, kClassStruct = 2, kClassObject = 3, kClassSparse = 5;
// The header part of a variable (flags, dimensions, name) is far smaller than this.
constexpr size_t kHeaderPrefix = 4096;

class Reader {
 public:
  Reader(const std::string& path, bool big_endian) : path_(path), big_endian_(big_endian) {}

  uint32_t word(const unsigned char* p) const {
    return big_endian_
               ? (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | p[3]
               : (uint32_t{p[3]} << 24) | (uint32_t{p[2]} << 16) | (uint32_t{p[1]} << 8) | p[0];
  }

  [[noreturn]] void fail(const std::string& problem) const {
    throw Error(path_ + ": corrupt MAT file (" + problem + ")");
  }

  // Checks a variable's header part `prefix` (the start of a miMATRIX body of `body_size` bytes).
  void check_matrix(const std::vector<unsigned char>& prefix, uint64_t body_size) const {
    uint64_t offset = 0;
    uint64_t elements = 1;
    for (int index = 0; offset < body_size; ++index) {
      if (offset + 8 > prefix.size()) {
        if (index >= 3) return;  // past flags, dimensions and name: only data follows
        fail("variable header cut short");
      }
      const uint32_t type_word = word(&prefix[offset]);
      const bool small = (type_word >> 16) != 0;
      const uint32_t type = small ? (type_word & 0xffff) : type_word;
      const uint64_t size = small ? (type_word >> 16) : word(&prefix[offset + 4]);
      if (small && size > 4) fail("small element of " + std::to_string(size) + " bytes");
      if (offset + 8 + size > body_size) {
        fail("a part of a variable claims " + std::to_string(size) + " bytes, " +
             std::to_string(body_size - offset - 8) + " remain");
      }
      const uint64_t start = offset + (small ? 4 : 8);
      if (index == 0) {
        if (type != kMiUint32 || size != 8 || start + 8 > prefix.size()) fail("bad array flags");
        const uint32_t class_id = word(&prefix[start]) & 0xff;
        if (class_id == kClassCell || class_id == kClassStruct || class_id == kClassObject) {
          throw Error(path_ + ": holds a cell, struct or object variable (not an SVHN file)");
        }
        if (class_id == kClassSparse) elements = 0;  // sized by its own parts, checked below
      } else if (index == 1) {
        if (type != kMiInt32 || size < 8 || size % 4 != 0 || start + size > prefix.size()) {
          fail("bad dimensions");
        }
        for (uint64_t d = 0; d < size / 4 && elements > 0; ++d) {
          const uint32_t dim = word(&prefix[start + 4 * d]);
          if (dim > 0x7fffffffu) fail("negative dimension");
          elements *= dim;
          // Every value takes at least one stored byte, so more values than bytes is a lie.
          if (elements > body_size) fail("dimensions claim more values than the file holds");
        }
      }
      offset += small ? 8 : 8 + ((size + 7) / 8) * 8;
    }
  }

 private:
  std::string path_;
  bool big_endian_;
};

// The first `limit` bytes that a zlib stream of `compressed` bytes inflates to.
std::vector<unsigned char> inflate_prefix(std::ifstream& in, uint64_t compressed, size_t limit) {
  std::vector<unsigned char> out(limit);
  z_stream stream{};
  if (inflateInit(&stream) != Z_OK) return {};
  stream.next_out = out.data();
  stream.avail_out = static_cast<uInt>(limit);
  std::vector<unsigned char> chunk(4096);
  int status = Z_OK;
  while (compressed > 0 && stream.avail_out > 0 && status == Z_OK) {
    const auto want = static_cast<std::streamsize>(std::min<uint64_t>(compressed, chunk.size()));
    in.read(reinterpret_cast<char*>(chunk.data()), want);
    if (in.gcount() != want) break;
    compressed -= static_cast<uint64_t>(want);
    stream.next_in = chunk.data();
    stream.avail_in = static_cast<uInt>(want);
    while (stream.avail_in > 0 && stream.avail_out > 0 && status == Z_OK) {
      status = inflate(&stream, Z_NO_FLUSH);
    }
  }
  out.resize(limit - stream.avail_out);
  inflateEnd(&stream);
  return out;
}

}  // namespace

void check_mat_layout(const std::string& path) {
  const uint64_t file_size = std::filesystem::file_size(path);
  std::ifstream in(path, std::ios::binary);
  unsigned char header[128];
  if (file_size < 128 || !in.read(reinterpret_cast<char*>(header), 128)) {
    throw Error(path + ": not a MAT file (too short)");
  }
  const bool big_endian = header[126] == 'M' && header[127] == 'I';
  if (!big_endian && !(header[126] == 'I' && header[127] == 'M')) {
    throw Error(path + ": not a MAT file (no MATLAB v5/v7.3 header)");
  }
  const unsigned version =
      big_endian ? (header[124] << 8) | header[125] : (header[125] << 8) | header[124];
  if (version == 0x0200) return;  // v7.3: HDF5
  if (version != 0x0100)
    throw Error(path + ": not a MAT file (version " + std::to_string(version) + ")");
  const Reader reader(path, big_endian);
  uint64_t offset = 128;
  while (offset + 8 <= file_size) {
    unsigned char tag[8];
    in.seekg(static_cast<std::streamoff>(offset));
    if (!in.read(reinterpret_cast<char*>(tag), 8)) reader.fail("unreadable element header");
    const uint32_t type = reader.word(tag);
    if ((type >> 16) != 0) {  // a small element: all in its 8 bytes
      offset += 8;
      continue;
    }
    const uint64_t size = reader.word(tag + 4);
    if (offset + 8 + size > file_size) {
      reader.fail("element at byte " + std::to_string(offset) + " claims " + std::to_string(size) +
                  " bytes, " + std::to_string(file_size - offset - 8) + " remain");
    }
    if (type == kMiMatrix) {
      std::vector<unsigned char> prefix(std::min<uint64_t>(size, kHeaderPrefix));
      in.read(reinterpret_cast<char*>(prefix.data()), static_cast<std::streamsize>(prefix.size()));
      reader.check_matrix(prefix, size);
    } else if (type == kMiCompressed) {
      const auto inner = inflate_prefix(in, size, kHeaderPrefix + 8);
      if (inner.size() < 8 || reader.word(inner.data()) != kMiMatrix) {
        reader.fail("compressed element at byte " + std::to_string(offset) + " holds no variable");
      }
      const uint64_t inner_size = reader.word(inner.data() + 4);
      if (inner_size > kMaxZlibExpansion * size + 1024) {
        reader.fail("compressed variable claims " + std::to_string(inner_size) + " bytes");
      }
      reader.check_matrix(std::vector<unsigned char>(inner.begin() + 8, inner.end()), inner_size);
    }
    offset += 8 + (type == kMiCompressed ? size : ((size + 7) / 8) * 8);
  }
}

}  // namespace privaudit::data
