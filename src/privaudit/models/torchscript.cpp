#include "privaudit/models/torchscript.h"

#include <caffe2/serialize/inline_container.h>

#include <cstdlib>
#include <cstring>
#include <map>
#include <set>
#include <sstream>

#include "privaudit/util/error.h"
#include "privaudit/util/watchdog.h"

namespace privaudit::models {

namespace {

constexpr const char* kAssumed =
    "the model is fed [0,1] pixels; any normalisation must be inside it";
constexpr const char* kNotAChain =
    "running the children in order does not reproduce forward(): the model has skip connections "
    "or functional code in forward";
constexpr int64_t kProbeBatch = 2;
constexpr int64_t kMaxInputValues = int64_t{1} << 24;

// The class name without its module path or TorchScript's "___torch_mangle_N" prefix.
std::string short_type_name(const torch::jit::Module& module) {
  const auto name = module.type()->name();
  return name ? name->name() : "";
}

std::string qualified_type_name(const torch::jit::Module& module) {
  const auto name = module.type()->name();
  return name ? name->qualifiedName() : "?";
}

bool is_container(const torch::jit::Module& module) {
  const auto name = short_type_name(module);
  return name == "Sequential" || name == "ModuleList";
}

// Children in order, descending into Sequential/ModuleList containers; any other module is one
// stage, since its forward may do more than run its own children.
void collect_stages(const torch::jit::Module& module, const std::string& prefix,
                    std::vector<TorchScriptStage>& stages) {
  for (const auto& child : module.named_children()) {
    const std::string name = prefix.empty() ? child.name : prefix + "." + child.name;
    if (is_container(child.value)) {
      collect_stages(child.value, name, stages);
    } else {
      stages.push_back({name, child.value});
    }
  }
}

std::string shape_text(const InputShape& shape) {
  return std::to_string(shape.channels) + "x" + std::to_string(shape.height) + "x" +
         std::to_string(shape.width);
}

std::string sizes_text(torch::IntArrayRef sizes) {
  std::string text;
  for (auto s : sizes) text += (text.empty() ? "" : "x") + std::to_string(s);
  return text.empty() ? "0-d" : text;
}

// A probe batch is two images of this shape: a module that claims a huge input shape must not
// make loading it allocate gigabytes.
void check_input_size(const InputShape& shape, const std::string& path) {
  if (shape.channels <= 0 || shape.height <= 0 || shape.width <= 0) {
    throw Error(path + ": input shape " + shape_text(shape) + " is not positive");
  }
  const double values = static_cast<double>(shape.channels) * shape.height * shape.width;
  if (values > kMaxInputValues) {
    throw Error(path + ": input shape " + shape_text(shape) + " is too large (over " +
                std::to_string(kMaxInputValues) + " values per image)");
  }
}

// The reason in an exception from forward(). The TorchScript interpreter's message opens with
// "The following operation failed in the TorchScript interpreter." and a traceback; the error
// itself ("builtins.RuntimeError: ...") is its last line.
std::string failure_reason(const std::string& message) {
  if (message.rfind("The following operation failed in the TorchScript interpreter", 0) != 0) {
    return first_line(message);
  }
  auto end = message.find_last_not_of("\n ");
  if (end == std::string::npos) return first_line(message);
  const auto start = message.rfind('\n', end);
  auto line = message.substr(start == std::string::npos ? 0 : start + 1, end - start);
  if (line.rfind("builtins.", 0) == 0) line = line.substr(9);
  return first_line(line);
}

// The probe batch's output as floating-point tensor, or an Error naming the file.
torch::Tensor probe_logits(torch::jit::Module& module, const torch::Tensor& probe,
                           const std::string& path) {
  c10::IValue out;
  try {
    ModelCallGuard guard(path, "forward()", probe.size(0));
    out = module.forward({probe});
  } catch (const std::exception& e) {
    throw Error(path + ": forward() failed on a probe batch of shape " + sizes_text(probe.sizes()) +
                " (check --input-shape): " + failure_reason(e.what()));
  }
  if (!out.isTensor()) {
    throw Error(path + ": forward() returned a " + out.tagKind() +
                ", not a tensor of logits, on a probe batch of shape " + sizes_text(probe.sizes()));
  }
  auto logits = out.toTensor();
  if (!logits.is_floating_point()) {
    throw Error(path + ": forward() returned a tensor of " +
                std::string(c10::toString(logits.scalar_type())) +
                ", not floating-point logits, on a probe batch of shape " +
                sizes_text(probe.sizes()));
  }
  return logits;
}

// Attacks differentiate with respect to every parameter, which LibTorch allows only for
// floating-point tensors.
void check_parameters(const torch::jit::Module& module, const std::string& path) {
  for (const auto& b : module.named_buffers()) {
    if (!tensor_fits_storage(b.value)) {
      throw Error(path + ": damaged model file: buffer " + b.name + " reaches beyond its storage");
    }
  }
  for (const auto& p : module.named_parameters()) {
    if (!tensor_fits_storage(p.value)) {
      throw Error(path + ": damaged model file: parameter " + p.name +
                  " reaches beyond its storage");
    }
    if (!p.value.is_floating_point()) {
      throw Error(path + ": parameter " + p.name + " is a tensor of " +
                  std::string(c10::toString(p.value.scalar_type())) +
                  "; privaudit needs floating-point parameters to take gradients");
    }
  }
}

std::optional<InputShape> shape_attribute(const torch::jit::Module& module,
                                          const std::string& path) {
  if (!module.hasattr("input_shape")) return std::nullopt;
  const auto value = module.attr("input_shape");
  std::vector<int64_t> dims;
  if (value.isIntList()) {
    dims = value.toIntVector();
  } else if (value.isTuple()) {
    for (const auto& element : value.toTuple()->elements()) {
      if (!element.isInt()) break;
      dims.push_back(element.toInt());
    }
  }
  if (dims.size() != 3 || dims[0] <= 0 || dims[1] <= 0 || dims[2] <= 0) {
    throw Error(path +
                ": the module's input_shape attribute is not three positive integers (C, H, W); "
                "pass --input-shape C,H,W");
  }
  return InputShape{dims[0], dims[1], dims[2]};
}

std::optional<int64_t> classes_attribute(const torch::jit::Module& module,
                                         const std::string& path) {
  if (!module.hasattr("num_classes")) return std::nullopt;
  const auto value = module.attr("num_classes");
  if (!value.isInt() || value.toInt() < 2) {
    throw Error(path +
                ": the module's num_classes attribute is not an integer >= 2; pass --classes K");
  }
  return value.toInt();
}

// The batch size of a model call's input, for the watchdog's limit.
int64_t call_batch(const torch::Tensor& x) {
  return x.dim() > 0 ? std::max<int64_t>(x.size(0), 1) : 1;
}

torch::Tensor run_module(torch::jit::Module& module, const torch::Tensor& x) {
  const auto out = module.forward({x});
  if (!out.isTensor()) throw Error("returns " + out.tagKind() + ", not a tensor");
  return out.toTensor();
}

// Empty when running `stages` in order reproduces `expected` on `probe`; otherwise why not.
std::string check_chain(std::vector<TorchScriptStage>& stages, const torch::Tensor& probe,
                        const torch::Tensor& expected) {
  if (stages.size() < 2) {
    return stages.empty() ? "the module has no child modules to split it at"
                          : "the module has a single child module, so there is nothing to split";
  }
  torch::Tensor x = probe;
  for (auto& stage : stages) {
    if (!stage.module.find_method("forward")) return kNotAChain;
    try {
      x = run_module(stage.module, x);
    } catch (const std::exception&) {
      return kNotAChain;
    }
  }
  if (x.sizes() != expected.sizes() || x.scalar_type() != expected.scalar_type() ||
      !torch::allclose(x, expected, 1e-4, 1e-5))
    return kNotAChain;
  return "";
}

// A pickle opcode: what follows it (fixed bytes, a little-endian length and that many bytes, or
// newline-terminated lines) and what it does to the stack. Opcodes of protocols 0-4, as
// LibTorch's pickler.h lists them; the stack as Python's unpickler keeps it, where MARK opens a
// frame and an opcode may take only items pushed since.
struct Opcode {
  enum Kind { kUnknown, kPlain, kMark, kCollect, kExtend, kStop };
  Kind kind = kUnknown;
  size_t fixed = 0;
  size_t length_bytes = 0;
  size_t lines = 0;
  size_t pops = 0;
  size_t pushes = 0;
};

Opcode opcode_of(uint8_t code) {
  const auto in = [code](const char* set) {
    return code != 0 && std::strchr(set, static_cast<char>(code)) != nullptr;
  };
  Opcode op;
  if (in("FILPSVgp")) op.lines = 1;
  if (in("ci")) op.lines = 2;
  if (in("Khq\x80\x82")) op.fixed = 1;
  if (in("M\x83")) op.fixed = 2;
  if (in("Jjr\x84")) op.fixed = 4;
  if (in("G\x95")) op.fixed = 8;
  if (in("UC\x8a\x8c")) op.length_bytes = 1;
  if (in("TXB\x8b")) op.length_bytes = 4;
  if (in("\x8d\x8e")) op.length_bytes = 8;
  const auto plain = [&op](size_t pops, size_t pushes) {
    op.kind = Opcode::kPlain;
    op.pops = pops;
    op.pushes = pushes;
  };
  if (in("NJKMILFGSTUVXBC}])cghjP\x8a\x8b\x8c\x8d\x8e\x8f\x88\x89\x82\x83\x84")) plain(0, 1);
  if (in("\x80\x95")) plain(0, 0);
  if (in("Q\x85pqr\x94")) plain(1, 1);
  if (in("2")) plain(1, 2);
  if (in("0")) plain(1, 0);
  if (in("Rba\x86\x81\x93")) plain(2, 1);
  if (in("\x87s\x92")) plain(3, 1);
  if (in("(")) op.kind = Opcode::kMark;
  if (in("tldo\x91i1")) op.kind = Opcode::kCollect;  // the frame becomes one item (none: POP_MARK)
  if (in("eu\x90")) op.kind = Opcode::kExtend;       // the frame goes into the item below it
  if (in(".")) op.kind = Opcode::kStop;
  if (code == '1') op.pushes = 0;
  if (op.kind == Opcode::kCollect && code != '1') op.pushes = 1;
  return op;
}

// What the walker knows of a stack item: enough to read the persistent ids of tensor storages,
// the tuple ('storage', torch.<Type>Storage, key, location, numel) that LibTorch's and Python's
// picklers write before BINPERSID.
struct PickleItem {
  enum Kind { kOther, kText, kInteger, kGlobal, kStorage };
  Kind kind = kOther;
  std::string text;    // kText: the string; kGlobal: "module.name"; kStorage: the record key
  int64_t number = 0;  // kInteger: the value; kStorage: the element count
  std::string type;    // kStorage: the storage type ("FloatStorage")
};

// A storage a pickle loads from the record "<pickle name without .pkl>/<key>".
struct StorageReference {
  std::string key, type;
  int64_t numel = 0;
};

// The tuple (text 'storage', global torch.XStorage, text key, text location, integer numel).
PickleItem storage_item(const std::vector<PickleItem>& items) {
  PickleItem item;
  if (items.size() != 5 || items[0].kind != PickleItem::kText || items[0].text != "storage" ||
      items[1].kind != PickleItem::kGlobal || items[1].text.rfind("torch.", 0) != 0 ||
      items[2].kind != PickleItem::kText || items[4].kind != PickleItem::kInteger) {
    return item;
  }
  item.kind = PickleItem::kStorage;
  item.type = items[1].text.substr(6);
  item.text = items[2].text;
  item.number = items[4].number;
  return item;
}

// Walks the opcodes of a pickle (Python's pickletools.py documents each) without running it.
// Returns why LibTorch's unpickler must not see it, or "" when every length and memo index fits
// and the stack never runs dry: LibTorch 1.13 checks neither, and a 3 kB file can make it
// allocate 28 GB or corrupt its heap. Appends the storages it loads to `storages`.
std::string pickle_problem(const uint8_t* data, size_t size,
                           std::vector<StorageReference>& storages) {
  size_t pos = 0;
  std::vector<PickleItem> stack;
  std::vector<size_t> marks;            // where each open MARK's frame starts on the stack
  std::map<uint64_t, PickleItem> memo;  // only the items the walker knows something of
  uint64_t memo_count = 0;
  const auto frame_size = [&] { return stack.size() - (marks.empty() ? 0 : marks.back()); };
  const auto little_endian = [&](size_t bytes) {
    uint64_t value = 0;
    for (size_t i = 0; i < bytes; ++i) value |= static_cast<uint64_t>(data[pos + i]) << (8 * i);
    return value;
  };
  while (pos < size) {
    // Where the opcode starts, made into text only for a message: not a string per opcode.
    const size_t start = pos;
    const auto at = [start] { return " at byte " + std::to_string(start); };
    const uint8_t code = data[pos++];
    const auto op = opcode_of(code);
    if (op.kind == Opcode::kUnknown) {
      char hex[8];
      std::snprintf(hex, sizeof hex, "0x%02x", code);
      return "has unknown opcode " + std::string(hex) + at();
    }
    if (size - pos < op.fixed + op.length_bytes) return "ends inside an opcode" + at();
    // LONG_BINPUT grows the memo to its index: one per opcode is the most a pickle can use.
    if (code == 'r' && little_endian(4) > size) {
      return "has memo index " + std::to_string(little_endian(4)) + at() + ", beyond its " +
             std::to_string(size) + " bytes";
    }
    PickleItem pushed;  // what a plain opcode that pushes one item pushes
    uint64_t argument = op.fixed > 0 ? little_endian(op.fixed) : 0;
    if (op.length_bytes > 0) {
      const uint64_t length = little_endian(op.length_bytes);
      pos += op.length_bytes;
      if (length > size - pos) {
        return "declares " + std::to_string(length) + " bytes" + at() + " but has " +
               std::to_string(size - pos) + " left";
      }
      if (std::strchr("XTU\x8c\x8d", static_cast<char>(code)) != nullptr) {
        pushed.kind = PickleItem::kText;
        pushed.text.assign(reinterpret_cast<const char*>(data + pos), static_cast<size_t>(length));
      } else if (code == 0x8a && length <= 8) {  // LONG1: little-endian two's complement
        uint64_t value = 0;
        for (size_t i = 0; i < length; ++i)
          value |= static_cast<uint64_t>(data[pos + i]) << (8 * i);
        if (length > 0 && length < 8 && (data[pos + length - 1] & 0x80))
          value |= ~uint64_t{0} << (8 * length);
        pushed = {PickleItem::kInteger, "", static_cast<int64_t>(value), ""};
      }
      pos += static_cast<size_t>(length);
    }
    pos += op.fixed;
    std::string lines;
    for (size_t i = 0; i < op.lines; ++i) {
      const void* newline = std::memchr(data + pos, '\n', size - pos);
      if (newline == nullptr) return "ends inside an opcode" + at();
      const auto end = static_cast<size_t>(static_cast<const uint8_t*>(newline) - data);
      lines +=
          (i > 0 ? "." : "") + std::string(reinterpret_cast<const char*>(data + pos), end - pos);
      pos = end + 1;
    }
    if (code == 'J') pushed = {PickleItem::kInteger, "", static_cast<int32_t>(argument), ""};
    if (code == 'K' || code == 'M')
      pushed = {PickleItem::kInteger, "", static_cast<int64_t>(argument), ""};
    if (code == 'c') pushed = {PickleItem::kGlobal, lines, 0, ""};
    if (code == 'g' || code == 'p') argument = std::strtoull(lines.c_str(), nullptr, 10);
    switch (op.kind) {
      case Opcode::kUnknown:
        break;
      case Opcode::kStop:
        return frame_size() >= 1 ? "" : "stops with nothing on the stack" + at();
      case Opcode::kPlain: {
        if (frame_size() < op.pops) return "takes more from the stack than it holds" + at();
        std::vector<PickleItem> popped(stack.end() - static_cast<std::ptrdiff_t>(op.pops),
                                       stack.end());
        stack.resize(stack.size() - op.pops);
        if (code == 0x93 && popped[0].kind == PickleItem::kText &&
            popped[1].kind == PickleItem::kText) {  // STACK_GLOBAL
          pushed = {PickleItem::kGlobal, popped[0].text + "." + popped[1].text, 0, ""};
        }
        if (code == 'q' || code == 'r' || code == 'p' || code == 0x94) {  // the PUTs, MEMOIZE
          const uint64_t index = code == 0x94 ? memo_count : argument;
          memo_count = std::max(memo_count, index + 1);
          if (popped[0].kind != PickleItem::kOther) memo[index] = popped[0];
          pushed = popped[0];
        }
        if (code == 'h' || code == 'j' || code == 'g') {  // BINGET, LONG_BINGET, GET
          const auto found = memo.find(argument);
          if (found != memo.end()) pushed = found->second;
        }
        if (code == 'Q' && popped[0].kind == PickleItem::kStorage) {  // BINPERSID
          storages.push_back({popped[0].text, popped[0].type, popped[0].number});
        }
        for (size_t i = 0; i < op.pushes; ++i) stack.push_back(i == 0 ? pushed : PickleItem());
        break;
      }
      case Opcode::kMark:
        marks.push_back(stack.size());
        break;
      case Opcode::kCollect:
      case Opcode::kExtend: {
        if (marks.empty()) return "closes a MARK it never opened" + at();
        std::vector<PickleItem> frame(stack.begin() + static_cast<std::ptrdiff_t>(marks.back()),
                                      stack.end());
        stack.resize(marks.back());
        marks.pop_back();
        if (op.kind == Opcode::kExtend && frame_size() < 1) {
          return "adds to a container that is not there" + at();
        }
        if (op.pushes > 0) stack.push_back(code == 't' ? storage_item(frame) : PickleItem());
        break;
      }
    }
  }
  return "ends without a STOP opcode";
}

// Bytes per element of each storage type a pickle may name ("FloatStorage": 4), as LibTorch's
// unpickler maps them to scalar types.
const std::map<std::string, size_t>& storage_element_sizes() {
  static const auto sizes = [] {
    std::map<std::string, size_t> out;
    for (int i = 0; i < static_cast<int>(c10::ScalarType::NumOptions); ++i) {
      const auto type = static_cast<c10::ScalarType>(i);
      try {
        out[std::string(c10::toString(type)) + "Storage"] = c10::elementSize(type);
      } catch (const std::exception&) {
      }
    }
    return out;
  }();
  return sizes;
}

// Why `storage` cannot be read from its record (LibTorch sizes a storage by the element count the
// pickle states, not by its record's length, and reads past a short record), or "".
std::string storage_problem(caffe2::serialize::PyTorchStreamReader& reader,
                            const std::string& pickle, const StorageReference& storage) {
  const auto record = pickle.substr(0, pickle.size() - 4) + "/" + storage.key;
  const auto& sizes = storage_element_sizes();
  const auto element = sizes.find(storage.type);
  if (element == sizes.end()) return "names an unknown storage type torch." + storage.type;
  if (storage.numel < 0) return "declares storage " + storage.key + " of negative size";
  // Nothing is read for an empty storage, and LibTorch reports a missing record itself.
  if (storage.numel == 0 || !reader.hasRecord(record)) return "";
  const auto declared = static_cast<uint64_t>(storage.numel);
  const auto held = std::get<1>(reader.getRecord(record));
  if (declared > held / element->second) {
    return "declares storage " + storage.key + " of " + std::to_string(declared) + " " +
           storage.type.substr(0, storage.type.size() - 7) + " values (" +
           (declared > UINT64_MAX / element->second ? std::string("too many")
                                                    : std::to_string(declared * element->second)) +
           " bytes) but " + record + " holds " + std::to_string(held) + " bytes (truncated)";
  }
  return "";
}

bool is_pickle(const std::string& record) {
  return record.size() >= 3 && record.compare(record.size() - 3, 3, "pkl") == 0;
}

}  // namespace

std::string pickle_problem(const uint8_t* data, size_t size) {
  std::vector<StorageReference> storages;
  return pickle_problem(data, size, storages);
}

bool tensor_fits_storage(const torch::Tensor& tensor) {
  if (!tensor.defined() || tensor.numel() == 0) return true;
  if (tensor.layout() != torch::kStrided || !tensor.has_storage()) return true;  // no view to check
  if (tensor.storage_offset() < 0) return false;
  // In floating point, so that hostile strides cannot overflow: a real storage is far below 2^53.
  double last = static_cast<double>(tensor.storage_offset());
  for (int64_t d = 0; d < tensor.dim(); ++d) {
    if (tensor.stride(d) < 0) return false;
    last += static_cast<double>(tensor.size(d) - 1) * static_cast<double>(tensor.stride(d));
  }
  return (last + 1) * static_cast<double>(tensor.element_size()) <=
         static_cast<double>(tensor.storage().nbytes());
}

void check_archive_pickles(const std::string& path) {
  std::unique_ptr<caffe2::serialize::PyTorchStreamReader> reader;
  std::vector<std::string> records;
  try {
    reader = std::make_unique<caffe2::serialize::PyTorchStreamReader>(path);
    records = reader->getAllRecords();
  } catch (const std::exception&) {
    return;  // not an archive LibTorch opens: torch::jit::load says so
  }
  for (const auto& record : records) {
    if (!is_pickle(record)) continue;
    std::tuple<at::DataPtr, size_t> bytes;
    std::vector<StorageReference> storages;
    try {
      bytes = reader->getRecord(record);
    } catch (const std::exception&) {
      return;
    }
    auto problem = pickle_problem(static_cast<const uint8_t*>(std::get<0>(bytes).get()),
                                  std::get<1>(bytes), storages);
    std::set<std::string> checked;
    for (size_t i = 0; problem.empty() && i < storages.size(); ++i) {
      if (!checked.insert(storages[i].key).second) continue;
      try {
        problem = storage_problem(*reader, record, storages[i]);
      } catch (const std::exception&) {
        return;  // a record the zip layer cannot read: LibTorch says so
      }
    }
    if (!problem.empty()) throw Error(path + ": damaged model file: " + record + " " + problem);
  }
}

TorchScriptClassifier::TorchScriptClassifier(torch::jit::Module module, std::string path,
                                             InputShape input, int64_t classes,
                                             std::vector<TorchScriptStage> stages,
                                             std::string cut_note)
    : module_(std::move(module)),
      path_(std::move(path)),
      input_(input),
      classes_(classes),
      stages_(std::move(stages)),
      cut_note_(std::move(cut_note)) {
  if (!cut_note_.empty()) stages_.clear();
  for (const auto& p : module_.parameters()) p.requires_grad_(true);
}

torch::Tensor TorchScriptClassifier::forward(const torch::Tensor& images) {
  ModelCallGuard guard(path_, "forward()", call_batch(images));
  return run_module(module_, images);
}

std::vector<torch::Tensor> TorchScriptClassifier::parameters() {
  std::vector<torch::Tensor> out;
  for (const auto& p : module_.parameters()) out.push_back(p);
  return out;
}

std::vector<std::string> TorchScriptClassifier::cut_points() const {
  std::vector<std::string> names;
  for (size_t i = 0; i + 1 < stages_.size(); ++i) names.push_back(stages_[i].name);
  return names;
}

size_t TorchScriptClassifier::stage_index(const std::string& cut) const {
  check_cut(cut);
  for (size_t i = 0; i < stages_.size(); ++i) {
    if (stages_[i].name == cut) return i;
  }
  throw Error("cut point '" + cut + "' does not exist");
}

torch::Tensor TorchScriptClassifier::run_stages(torch::Tensor x, size_t first, size_t last) {
  ModelCallGuard guard(path_, "forward() of its children", call_batch(x));
  for (size_t i = first; i < last; ++i) x = run_module(stages_[i].module, x);
  return x;
}

torch::Tensor TorchScriptClassifier::features(const torch::Tensor& images, const std::string& cut) {
  return run_stages(images, 0, stage_index(cut) + 1);
}

torch::Tensor TorchScriptClassifier::forward_from(const torch::Tensor& features,
                                                  const std::string& cut) {
  return run_stages(features, stage_index(cut) + 1, stages_.size());
}

void TorchScriptClassifier::to(torch::Device device) {
  module_.to(device);
  device_ = device;
}

bool TorchScriptClassifier::has_batch_norm() const {
  for (const auto& m : module_.modules()) {
    if (short_type_name(m).rfind("BatchNorm", 0) == 0) return true;
  }
  return false;
}

std::string TorchScriptClassifier::summary() const {
  std::ostringstream out;
  out << "torchscript " << qualified_type_name(module_) << " input " << shape_text(input_) << ", "
      << classes_ << " classes, " << cut_points().size() << " cut points";
  return out.str();
}

nlohmann::json TorchScriptClassifier::meta() const {
  nlohmann::json meta = {{"kind", "torchscript"},
                         {"type", qualified_type_name(module_)},
                         {"input_shape", {input_.channels, input_.height, input_.width}},
                         {"classes", classes_},
                         {"cut_points", cut_points()},
                         {"assumed", kAssumed}};
  if (!cut_note_.empty()) meta["cut_note"] = cut_note_;
  return meta;
}

std::unique_ptr<Classifier> load_torchscript(const std::string& path,
                                             std::optional<InputShape> input_shape,
                                             std::optional<int64_t> classes, torch::Device device) {
  check_archive_pickles(path);
  torch::jit::Module module;
  try {
    ModelCallGuard guard(path, "loading", 0);
    module = torch::jit::load(path, device);
  } catch (const c10::Error& e) {
    throw Error(path + ": not a TorchScript module: " + first_line(e.what_without_backtrace()));
  } catch (const std::exception& e) {
    // The TorchScript compiler and unpickler throw their own types (ErrorReport, JITException).
    throw Error(path + ": not a TorchScript module: " + first_line(e.what()));
  }
  if (!module.find_method("forward")) {
    throw Error(path + ": not a model: the TorchScript archive has no forward() method");
  }
  check_parameters(module, path);
  if (!input_shape) input_shape = shape_attribute(module, path);
  if (!input_shape) {
    throw Error(path +
                ": TorchScript model does not say its input shape; pass --input-shape C,H,W "
                "(or give the module an input_shape attribute)");
  }
  check_input_size(*input_shape, path);
  if (!classes) classes = classes_attribute(module, path);

  const bool was_training = module.is_training();
  module.eval();
  torch::NoGradGuard no_grad;
  auto generator = at::detail::createCPUGenerator(0);
  const auto probe = torch::rand(input_shape->with_batch(kProbeBatch), generator).to(device);
  const auto logits = probe_logits(module, probe, path);
  if (logits.dim() != 2 || logits.size(0) != kProbeBatch) {
    throw Error(path + ": forward() returned a " + sizes_text(logits.sizes()) +
                " tensor on a probe batch of shape " + sizes_text(probe.sizes()) + ", expected " +
                std::to_string(kProbeBatch) + " x K logits (check --input-shape)");
  }
  if (!classes) {
    // Neither the flag nor the module says: the width of the probe's logits does.
    if (logits.size(1) < 2) {
      throw Error(path + ": TorchScript model does not say its class count and forward() returns " +
                  sizes_text(logits.sizes()) +
                  " logits; pass --classes K (or give the module a num_classes attribute)");
    }
    classes = logits.size(1);
  }
  if (logits.size(1) != *classes) {
    throw Error(path + ": forward() of a " + sizes_text(probe.sizes()) + " input returns a " +
                sizes_text(logits.sizes()) + " tensor, expected " + std::to_string(kProbeBatch) +
                "x" + std::to_string(*classes) + " logits (check --input-shape and --classes)");
  }
  if (!torch::isfinite(logits).all().item<bool>()) {
    throw Error(path + ": forward() returned NaN or inf on a probe batch of shape " +
                sizes_text(probe.sizes()));
  }
  std::vector<TorchScriptStage> stages;
  collect_stages(module, "", stages);
  std::string note;
  {
    ModelCallGuard guard(path, "forward() of its children", probe.size(0));
    note = check_chain(stages, probe, logits);
  }
  module.train(was_training);
  auto model = std::make_unique<TorchScriptClassifier>(module, path, *input_shape, *classes,
                                                       std::move(stages), std::move(note));
  model->to(device);
  return model;
}

}  // namespace privaudit::models
