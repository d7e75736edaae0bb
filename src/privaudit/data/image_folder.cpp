#include <stb/stb_image.h>

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <cstring>
#include <filesystem>

#include "privaudit/data/loaders.h"
#include "privaudit/util/error.h"
#include "privaudit/util/files.h"

namespace privaudit::data {
namespace fs = std::filesystem;

namespace {

// A header may declare any size up to 2^24 per side (stb's own limit), and decoding allocates it
// whatever the file's length: a few hundred bytes of PNG can ask for gigabytes. Refuse sizes no
// dataset image has before decoding.
constexpr int kMaxImageSide = 8192;
constexpr int64_t kMaxImagePixels = 64'000'000;

struct ImageFile {
  fs::path path;
  int64_t label = 0;
};

// The images of a folder of class folders, in class order then file-name order.
struct FolderListing {
  std::vector<std::string> class_names;
  std::vector<ImageFile> files;
};

bool is_image_file(const fs::path& path) {
  std::string extension = path.extension().string();
  std::transform(extension.begin(), extension.end(), extension.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return extension == ".png" || extension == ".jpg" || extension == ".jpeg" || extension == ".bmp";
}

bool is_hidden(const fs::path& path) { return path.filename().string().rfind('.', 0) == 0; }

std::vector<fs::path> sorted_entries(const fs::path& dir, bool folders) {
  std::vector<fs::path> entries;
  for (const auto& entry : fs::directory_iterator(dir)) {
    if (is_hidden(entry.path())) continue;
    if (folders ? entry.is_directory() : (entry.is_regular_file() && is_image_file(entry.path()))) {
      entries.push_back(entry.path());
    }
  }
  std::sort(entries.begin(), entries.end());
  return entries;
}

FolderListing list_class_folders(const fs::path& dir) {
  FolderListing listing;
  const auto classes = sorted_entries(dir, /*folders=*/true);
  if (classes.empty()) {
    throw Error(dir.string() + ": no class folders (expected one sub-folder of images per class)");
  }
  for (const auto& class_dir : classes) {
    const auto images = sorted_entries(class_dir, /*folders=*/false);
    if (images.empty())
      throw Error(class_dir.string() + ": empty class folder (no PNG/JPEG/BMP images)");
    const auto label = static_cast<int64_t>(listing.class_names.size());
    listing.class_names.push_back(class_dir.filename().string());
    for (const auto& image : images) listing.files.push_back({image, label});
  }
  return listing;
}

struct ImageShape {
  int width = 0;
  int height = 0;
  int channels = 0;  // 1 or 3 after the colour rule
};

std::string failure_reason() {
  const char* reason = stbi_failure_reason();
  return reason != nullptr ? reason : "unknown image format";
}

// The size and component count stb read from a header (`found`), refused when too large.
ImageShape checked_header(const fs::path& path, bool found, const ImageShape& shape) {
  if (!found) throw Error(path.string() + ": cannot decode image (" + failure_reason() + ")");
  if (shape.width > kMaxImageSide || shape.height > kMaxImageSide ||
      static_cast<int64_t>(shape.width) * shape.height > kMaxImagePixels) {
    throw Error(path.string() + ": declares an image of " + std::to_string(shape.width) + "x" +
                std::to_string(shape.height) + " pixels, more than privaudit decodes (at most " +
                std::to_string(kMaxImageSide) + " a side and " +
                std::to_string(kMaxImagePixels / 1'000'000) + " million in all)");
  }
  return shape;
}

ImageShape header_of_file(const fs::path& path) {
  ImageShape shape;
  const bool found = stbi_info(path.c_str(), &shape.width, &shape.height, &shape.channels) != 0;
  return checked_header(path, found, shape);
}

ImageShape header_of_bytes(const fs::path& path, const std::string& bytes) {
  ImageShape shape;
  const bool found = bytes.size() <= static_cast<size_t>(INT32_MAX) &&
                     stbi_info_from_memory(reinterpret_cast<const stbi_uc*>(bytes.data()),
                                           static_cast<int>(bytes.size()), &shape.width,
                                           &shape.height, &shape.channels) != 0;
  return checked_header(path, found, shape);
}

// Reads every header; all sizes must match the first image's; one colour image makes all RGB.
ImageShape common_shape(const std::vector<const ImageFile*>& files) {
  ImageShape shape;
  bool colour = false;
  for (const ImageFile* file : files) {
    const auto [width, height, components] = header_of_file(file->path);
    if (shape.width == 0) {
      shape.width = width;
      shape.height = height;
    } else if (width != shape.width || height != shape.height) {
      throw Error(file->path.string() + ": is " + std::to_string(width) + "x" +
                  std::to_string(height) + ", expected " + std::to_string(shape.width) + "x" +
                  std::to_string(shape.height) + " (the size of " + files.front()->path.string() +
                  "): resize your images");
    }
    colour = colour || components >= 3;
  }
  shape.channels = colour ? 3 : 1;
  return shape;
}

// Decodes `files` into an N x C x H x W float tensor in [0,1].
torch::Tensor decode_all(const std::vector<const ImageFile*>& files, const ImageShape& shape) {
  const auto n = static_cast<int64_t>(files.size());
  auto pixels = torch::empty({n, shape.height, shape.width, shape.channels}, torch::kUInt8);
  const size_t image_bytes = static_cast<size_t>(shape.width) * shape.height * shape.channels;
  for (int64_t i = 0; i < n; ++i) {
    // Decodes the bytes whose header was just checked, not the file again: it may have changed.
    const auto bytes = read_file(files[i]->path);
    const auto declared = header_of_bytes(files[i]->path, bytes);
    if (declared.width != shape.width || declared.height != shape.height) {
      throw Error(files[i]->path.string() + ": changed size while being read");
    }
    int width = 0, height = 0, components = 0;
    unsigned char* data = stbi_load_from_memory(reinterpret_cast<const stbi_uc*>(bytes.data()),
                                                static_cast<int>(bytes.size()), &width, &height,
                                                &components, shape.channels);
    if (data == nullptr) {
      throw Error(files[i]->path.string() + ": cannot decode image (" + failure_reason() + ")");
    }
    if (width != shape.width || height != shape.height) {
      stbi_image_free(data);
      throw Error(files[i]->path.string() + ": changed size while being read");
    }
    std::memcpy(pixels.data_ptr<uint8_t>() + i * image_bytes, data, image_bytes);
    stbi_image_free(data);
  }
  return pixels.permute({0, 3, 1, 2}).to(torch::kFloat).div_(255.0f).contiguous();
}

Dataset make_dataset(const std::vector<const ImageFile*>& files, const ImageShape& shape,
                     const std::vector<std::string>& classes, const std::string& source) {
  std::vector<int64_t> labels;
  for (const ImageFile* file : files) labels.push_back(file->label);
  return {decode_all(files, shape), torch::tensor(labels, torch::kLong), classes, source};
}

std::vector<const ImageFile*> pointers(const std::vector<ImageFile>& files) {
  std::vector<const ImageFile*> out;
  for (const auto& file : files) out.push_back(&file);
  return out;
}

Splits load_split_layout(const fs::path& root) {
  const auto train = list_class_folders(root / "train");
  const auto test = list_class_folders(root / "test");
  if (test.class_names != train.class_names) {
    throw Error((root / "test").string() + ": class folders differ from those of " +
                (root / "train").string());
  }
  auto all = pointers(train.files);
  const auto test_files = pointers(test.files);
  all.insert(all.end(), test_files.begin(), test_files.end());
  const auto shape = common_shape(all);
  Splits splits;
  splits.train =
      make_dataset(pointers(train.files), shape, train.class_names, (root / "train").string());
  splits.test = make_dataset(test_files, shape, train.class_names, (root / "test").string());
  return splits;
}

Splits load_single_layout(const fs::path& root) {
  const auto listing = list_class_folders(root);
  const auto all = pointers(listing.files);
  const auto shape = common_shape(all);
  // Every 7th image of each class (in file-name order) goes to test, as MNIST's 60k/10k.
  std::vector<const ImageFile*> train, test;
  int64_t position_in_class = 0;
  for (size_t i = 0; i < all.size(); ++i) {
    if (i > 0 && all[i]->label != all[i - 1]->label) position_in_class = 0;
    (position_in_class++ % 7 == 0 ? test : train).push_back(all[i]);
  }
  if (train.empty()) {
    throw Error(root.string() +
                ": too few images to split (every 7th of each class goes to "
                "test; give a class at least 2 images, or use train/ and test/)");
  }
  Splits splits;
  splits.train = make_dataset(train, shape, listing.class_names, root.string() + " (train part)");
  splits.test = make_dataset(test, shape, listing.class_names, root.string() + " (test part)");
  return splits;
}

}  // namespace

Splits load_image_folder(const std::string& dir) {
  const fs::path root(dir);
  if (!fs::is_directory(root)) throw Error(dir + ": image folder not found");
  if (fs::is_directory(root / "train") && fs::is_directory(root / "test")) {
    return load_split_layout(root);
  }
  return load_single_layout(root);
}

}  // namespace privaudit::data
