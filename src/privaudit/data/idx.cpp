#include "privaudit/data/idx.h"

#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include "privaudit/util/error.h"

namespace privaudit::data {

namespace {

// The most values an IDX file may hold: 2^30 (1 GiB of bytes), twenty times Fashion-MNIST's
// 47 million training pixels. A header over it is refused before anything is allocated.
constexpr uint64_t kMaxIdxValues = uint64_t{1} << 30;

// The header's dimensions and their product; `bytes` is the header's own length.
struct IdxHeader {
  std::vector<int64_t> sizes;
  uint64_t count = 1;
  size_t bytes = 0;
};

// The number of dimensions the 4-byte magic number announces, or an Error naming `name`.
int idx_dimensions(const unsigned char* magic, const std::string& name) {
  if (magic[0] != 0 || magic[1] != 0) throw Error(name + ": not an IDX file (bad magic number)");
  if (magic[2] != 0x08) {
    throw Error(name + ": IDX value type " + std::to_string(magic[2]) +
                " is not supported (only unsigned bytes, 0x08)");
  }
  const int dims = magic[3];
  if (dims < 1 || dims > 4)
    throw Error(name + ": IDX file with " + std::to_string(dims) + " dimensions");
  return dims;
}

// The sizes that follow the magic number (`dims` big-endian uint32 at `sizes`), checked against
// kMaxIdxValues without overflowing: each size is below 2^32 and the product is checked after
// every factor, so it never exceeds 2^62.
IdxHeader idx_header(const unsigned char* sizes, int dims, const std::string& name) {
  IdxHeader header;
  header.bytes = 4 + 4 * static_cast<size_t>(dims);
  std::string shape;
  for (int d = 0; d < dims; ++d) {
    const unsigned char* p = sizes + 4 * d;
    const uint64_t size =
        (uint64_t{p[0]} << 24) | (uint64_t{p[1]} << 16) | (uint64_t{p[2]} << 8) | p[3];
    header.sizes.push_back(static_cast<int64_t>(size));
    shape += (shape.empty() ? "" : "x") + std::to_string(size);
  }
  for (const auto size : header.sizes) {
    header.count *= static_cast<uint64_t>(size);
    if (header.count > kMaxIdxValues) {
      throw Error(name + ": IDX header declares " + shape + " values, more than the " +
                  std::to_string(kMaxIdxValues) + " an IDX file may hold");
    }
  }
  return header;
}

std::string count_mismatch(const std::string& name, uint64_t count, const std::string& held,
                           bool truncated) {
  return name + ": header says " + std::to_string(count) + " values but the file holds " + held +
         (truncated ? " (truncated)" : " (trailing bytes)");
}

// A gzip or plain file read in chunks (zlib reads both), closed when it goes.
class IdxStream {
 public:
  explicit IdxStream(const std::string& path) : path_(path) {
    file_ = gzopen(path.c_str(), "rb");
    if (file_ == nullptr) throw Error(path + ": cannot open: " + std::strerror(errno));
  }
  ~IdxStream() {
    if (file_ != nullptr) gzclose_r(file_);
  }
  IdxStream(const IdxStream&) = delete;
  IdxStream& operator=(const IdxStream&) = delete;

  // Reads up to `n` bytes into `out`; fewer only at the end of the data.
  size_t read(char* out, size_t n) {
    size_t done = 0;
    while (done < n) {
      const auto chunk = static_cast<unsigned>(std::min<size_t>(n - done, 1 << 20));
      const int got = gzread(file_, out + done, chunk);
      if (got < 0) {
        int code = 0;
        const std::string message = gzerror(file_, &code);
        throw Error(path_ + ": corrupt or truncated gzip data (" + message + ")");
      }
      if (got == 0) break;
      done += static_cast<size_t>(got);
    }
    return done;
  }

  // Whether the file is plain rather than gzip (after the first read).
  bool plain() { return gzdirect(file_) != 0; }

  // gzread returns 0 both at a clean end and when a gzip stream stops early; gzclose_r reports
  // the latter as Z_BUF_ERROR.
  void close() {
    const int closed = gzclose_r(file_);
    file_ = nullptr;
    if (closed != Z_OK) throw Error(path_ + ": truncated gzip data (the stream ends early)");
  }

 private:
  std::string path_;
  gzFile file_ = nullptr;
};

}  // namespace

torch::Tensor parse_idx(const std::string& bytes, const std::string& name) {
  if (bytes.size() < 4) throw Error(name + ": too short to be an IDX file");
  const auto* data = reinterpret_cast<const unsigned char*>(bytes.data());
  const int dims = idx_dimensions(data, name);
  if (bytes.size() < 4 + 4 * static_cast<size_t>(dims))
    throw Error(name + ": truncated IDX header");
  const auto header = idx_header(data + 4, dims, name);
  const uint64_t body = bytes.size() - header.bytes;
  if (body != header.count) {
    throw Error(count_mismatch(name, header.count, std::to_string(body), body < header.count));
  }
  auto out = torch::empty(header.sizes, torch::kUInt8);
  if (header.count > 0) std::memcpy(out.data_ptr<uint8_t>(), data + header.bytes, header.count);
  return out;
}

// The header is read and checked before the body, and no more of the body is read (or inflated)
// than the header's sizes call for, plus one byte to tell a clean end from trailing data: a small
// gzip bomb is refused after a few bytes of inflation, never held in memory.
torch::Tensor read_idx(const std::string& path) {
  if (!std::filesystem::exists(path)) throw Error(path + ": file not found");
  IdxStream stream(path);
  unsigned char head[4 + 4 * 4];
  if (stream.read(reinterpret_cast<char*>(head), 4) < 4)
    throw Error(path + ": too short to be an IDX file");
  const int dims = idx_dimensions(head, path);
  if (stream.read(reinterpret_cast<char*>(head + 4), 4 * dims) < 4 * static_cast<size_t>(dims))
    throw Error(path + ": truncated IDX header");
  const auto header = idx_header(head + 4, dims, path);
  if (stream.plain()) {  // the body's length is known before reading it
    std::error_code error;
    const auto size = std::filesystem::file_size(path, error);
    if (!error && size - header.bytes != header.count) {
      const uint64_t body = size - header.bytes;
      throw Error(count_mismatch(path, header.count, std::to_string(body), body < header.count));
    }
  }
  auto out = torch::empty(header.sizes, torch::kUInt8);
  const size_t got = stream.read(reinterpret_cast<char*>(out.data_ptr<uint8_t>()), header.count);
  if (got < header.count) {
    stream.close();  // a gzip stream that stops early says so first
    throw Error(count_mismatch(path, header.count, std::to_string(got), true));
  }
  char extra = 0;
  if (stream.read(&extra, 1) > 0) throw Error(count_mismatch(path, header.count, "more", false));
  stream.close();
  return out;
}

IdxPair read_idx_pair(const std::string& images_path, const std::string& labels_path) {
  const auto images = read_idx(images_path);
  const auto labels = read_idx(labels_path);
  if (images.dim() != 3) {
    throw Error(images_path + ": expected an IDX image file (N x H x W), got " +
                std::to_string(images.dim()) + " dimensions");
  }
  if (labels.dim() != 1) {
    throw Error(labels_path + ": expected an IDX label file (N), got " +
                std::to_string(labels.dim()) + " dimensions");
  }
  if (images.size(0) != labels.size(0)) {
    throw Error(labels_path + ": " + std::to_string(labels.size(0)) + " labels for " +
                std::to_string(images.size(0)) + " images in " + images_path);
  }
  if (images.size(0) == 0) throw Error(images_path + ": no images");
  IdxPair pair;
  pair.images = images.unsqueeze(1).to(torch::kFloat).div_(255.0f);
  pair.labels = labels.to(torch::kLong);
  return pair;
}

}  // namespace privaudit::data
