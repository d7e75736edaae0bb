#include "privaudit/data/idx.h"

#include <zlib.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "privaudit/util/error.h"

namespace privaudit::data {

std::string read_maybe_gzipped(const std::string& path) {
  if (!std::filesystem::exists(path)) throw Error(path + ": file not found");
  gzFile file = gzopen(path.c_str(), "rb");
  if (file == nullptr) throw Error(path + ": cannot open: " + std::strerror(errno));
  std::string bytes;
  char buffer[1 << 16];
  while (true) {
    const int got = gzread(file, buffer, sizeof buffer);
    if (got < 0) {
      int code = 0;
      const std::string message = gzerror(file, &code);
      gzclose(file);
      throw Error(path + ": corrupt or truncated gzip data (" + message + ")");
    }
    if (got == 0) break;
    bytes.append(buffer, got);
  }
  // gzread returns 0 both at a clean end and when a gzip stream stops early; gzclose_r reports the
  // latter as Z_BUF_ERROR.
  const int closed = gzclose_r(file);
  if (closed != Z_OK) throw Error(path + ": truncated gzip data (the stream ends early)");
  return bytes;
}

torch::Tensor parse_idx(const std::string& bytes, const std::string& name) {
  if (bytes.size() < 4) throw Error(name + ": too short to be an IDX file");
  const auto* data = reinterpret_cast<const unsigned char*>(bytes.data());
  if (data[0] != 0 || data[1] != 0) throw Error(name + ": not an IDX file (bad magic number)");
  if (data[2] != 0x08) {
    throw Error(name + ": IDX value type " + std::to_string(data[2]) +
                " is not supported (only unsigned bytes, 0x08)");
  }
  const int dims = data[3];
  if (dims < 1 || dims > 4)
    throw Error(name + ": IDX file with " + std::to_string(dims) + " dimensions");
  const size_t header = 4 + 4 * static_cast<size_t>(dims);
  if (bytes.size() < header) throw Error(name + ": truncated IDX header");
  std::vector<int64_t> sizes;
  uint64_t count = 1;
  for (int d = 0; d < dims; ++d) {
    const unsigned char* p = data + 4 + 4 * d;
    const uint64_t size =
        (uint64_t{p[0]} << 24) | (uint64_t{p[1]} << 16) | (uint64_t{p[2]} << 8) | p[3];
    sizes.push_back(static_cast<int64_t>(size));
    count *= size;
    if (count > (uint64_t{1} << 40)) throw Error(name + ": IDX header sizes are implausibly large");
  }
  const uint64_t body = bytes.size() - header;
  if (body != count) {
    throw Error(name + ": header says " + std::to_string(count) + " values but the file holds " +
                std::to_string(body) + (body < count ? " (truncated)" : " (trailing bytes)"));
  }
  auto out = torch::empty(sizes, torch::kUInt8);
  if (count > 0) std::memcpy(out.data_ptr<uint8_t>(), data + header, count);
  return out;
}

torch::Tensor read_idx(const std::string& path) {
  return parse_idx(read_maybe_gzipped(path), path);
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
