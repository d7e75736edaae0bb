#include "privaudit/train/per_example.h"

#include <string>
#include <unordered_map>
#include <utility>

#include "privaudit/models/builtin_layers.h"
#include "privaudit/util/error.h"
#include "privaudit/util/torch_compat.h"

namespace privaudit::train {
namespace nn = torch::nn;

namespace {

enum class TapKind { kLinear, kConv, kNorm, kEmbed };

// One layer with parameters: what it saw, the output whose gradient is taken, and the parameters
// the pair (input, output gradient) gives the gradients of.
struct Tap {
  Tap(TapKind kind, torch::Tensor input, torch::Tensor output, torch::Tensor weight,
      torch::Tensor bias)
      : kind(kind),
        input(std::move(input)),
        output(std::move(output)),
        weight(std::move(weight)),
        bias(std::move(bias)) {}
  TapKind kind;
  torch::Tensor input;  // detached: a for linear/conv, x_hat for norms
  torch::Tensor output;
  torch::Tensor weight, bias;                              // kEmbed: positions, class token
  std::vector<int64_t> kernel, stride, padding, dilation;  // kConv
  bool channel_axis_first = false;  // kNorm: GroupNorm (B x C x ...), else LayerNorm (... x D)
};

// Runs the model stage by stage, each layer with parameters written out so that its input and
// output are recorded.
class Tape {
 public:
  torch::Tensor linear(nn::LinearImpl& layer, const torch::Tensor& x) {
    auto out = layer.forward(x);
    taps_.emplace_back(TapKind::kLinear, x.detach(), out, layer.weight, layer.bias);
    return out;
  }
  torch::Tensor conv(nn::Conv2dImpl& layer, const torch::Tensor& x) {
    if (layer.options.groups() != 1) throw Error("per-example gradients: grouped convolution");
    auto out = layer.forward(x);
    Tap tap{TapKind::kConv, x.detach(), out, layer.weight, layer.bias};
    const auto& o = layer.options;
    const auto padding = variants::get_if<torch::ExpandingArray<2>>(&o.padding());
    if (padding == nullptr) throw Error("per-example gradients: convolution padding by name");
    tap.kernel = at::ArrayRef<int64_t>(o.kernel_size()).vec();
    tap.stride = at::ArrayRef<int64_t>(o.stride()).vec();
    tap.padding = at::ArrayRef<int64_t>(*padding).vec();
    tap.dilation = at::ArrayRef<int64_t>(o.dilation()).vec();
    taps_.push_back(tap);
    return out;
  }
  torch::Tensor layer_norm(nn::LayerNormImpl& layer, const torch::Tensor& x) {
    const auto& options = layer.options;
    auto normalised = torch::layer_norm(x, options.normalized_shape(), {}, {}, options.eps());
    auto out = normalised * layer.weight + layer.bias;
    taps_.emplace_back(TapKind::kNorm, normalised.detach(), out, layer.weight, layer.bias);
    return out;
  }
  torch::Tensor group_norm(nn::GroupNormImpl& layer, const torch::Tensor& x) {
    const auto& options = layer.options;
    auto normalised = torch::group_norm(x, options.num_groups(), {}, {}, options.eps());
    std::vector<int64_t> shape(static_cast<size_t>(x.dim()), 1);
    shape[1] = x.size(1);
    auto out = normalised * layer.weight.view(shape) + layer.bias.view(shape);
    Tap tap{TapKind::kNorm, normalised.detach(), out, layer.weight, layer.bias};
    tap.channel_axis_first = true;
    taps_.push_back(tap);
    return out;
  }
  torch::Tensor embed(models::PatchEmbedImpl& layer, const torch::Tensor& x) {
    auto out = layer.assemble(conv(*layer.projection(), x), x.size(0));
    taps_.emplace_back(TapKind::kEmbed, torch::Tensor(), out, layer.positions(),
                       layer.class_token());
    return out;
  }
  torch::Tensor block(models::TransformerBlockImpl& layer, const torch::Tensor& x) {
    const int64_t batch = x.size(0), tokens = x.size(1), dim = x.size(2);
    auto& dropout = *layer.dropout();
    auto mixed =
        layer.attend(linear(*layer.qkv(), layer_norm(*layer.norm1(), x)), batch, tokens, dim);
    auto h = x + dropout.forward(linear(*layer.projection(), mixed));
    auto hidden = torch::gelu(linear(*layer.fc1(), layer_norm(*layer.norm2(), h)));
    return h + dropout.forward(linear(*layer.fc2(), dropout.forward(hidden)));
  }

  torch::Tensor run(models::StagedNetImpl& net, const torch::Tensor& images) {
    auto x = net.normalise(images);
    auto children = net.named_children();
    for (const auto& name : net.stage_names()) {
      auto stage = std::dynamic_pointer_cast<nn::SequentialImpl>(children[name]);
      for (auto& module : *stage) x = layer(module, name, x);
    }
    return x;
  }

  const std::vector<Tap>& taps() const { return taps_; }

 private:
  torch::Tensor layer(nn::AnyModule& module, const std::string& stage, const torch::Tensor& x) {
    const auto any = module.ptr();
    if (auto m = std::dynamic_pointer_cast<nn::LinearImpl>(any)) return linear(*m, x);
    if (auto m = std::dynamic_pointer_cast<nn::Conv2dImpl>(any)) return conv(*m, x);
    if (auto m = std::dynamic_pointer_cast<nn::LayerNormImpl>(any)) return layer_norm(*m, x);
    if (auto m = std::dynamic_pointer_cast<nn::GroupNormImpl>(any)) return group_norm(*m, x);
    if (auto m = std::dynamic_pointer_cast<models::PatchEmbedImpl>(any)) return embed(*m, x);
    if (auto m = std::dynamic_pointer_cast<models::TransformerBlockImpl>(any)) return block(*m, x);
    if (auto m = std::dynamic_pointer_cast<models::ClassTokenImpl>(any)) {
      return layer_norm(*m->norm(), x.select(1, 0));
    }
    if (!any->parameters().empty()) {
      throw Error("per-example gradients: stage '" + stage + "' has a layer with parameters (" +
                  any->name() + ") that DP-SGD cannot split by example");
    }
    return module.forward(x);
  }

  std::vector<Tap> taps_;
};

// One parameter's share of a tap's per-example gradients: either materialised (B x the
// parameter's shape) or, for a Linear or Conv2d weight, kept as the factors a (B x T x in) and g
// (B x T x out) whose product g_i^T a_i it is (T: tokens, or a convolution's output positions with
// a_i the unfolded input), so that its norm and its clipped sum need no B x out x in tensor.
struct Part {
  torch::Tensor parameter;
  torch::Tensor per_example;         // defined when materialised
  torch::Tensor input, output_grad;  // the factors, when not

  bool factored() const { return !per_example.defined(); }
  torch::Tensor materialise() const {
    if (!factored()) return per_example;
    auto shape = parameter.sizes().vec();
    shape.insert(shape.begin(), input.size(0));
    return torch::bmm(output_grad.transpose(1, 2), input).view(shape);
  }
  // Every example's squared norm (B).
  torch::Tensor squared_norms() const {
    const int64_t batch = factored() ? input.size(0) : per_example.size(0);
    if (!factored()) return per_example.reshape({batch, -1}).pow(2).sum(1);
    if (input.size(1) == 1) {
      return output_grad.reshape({batch, -1}).pow(2).sum(1) *
             input.reshape({batch, -1}).pow(2).sum(1);
    }
    // |sum_t g_t a_t^T|^2 = sum_{t,s} (g_t . g_s)(a_t . a_s): the token Gram matrices.
    return (torch::bmm(output_grad, output_grad.transpose(1, 2)) *
            torch::bmm(input, input.transpose(1, 2)))
        .sum({1, 2});
  }
  // sum_i scale_i * (example i's gradient), the parameter's shape.
  torch::Tensor weighted_sum(const torch::Tensor& scale) const {
    if (!factored()) return torch::tensordot(scale, per_example, {0}, {0});
    const auto weighted = output_grad * scale.view({-1, 1, 1});
    return weighted.reshape({-1, output_grad.size(2)})
        .t()
        .mm(input.reshape({-1, input.size(2)}))
        .view(parameter.sizes());
  }
};

// Whether the squared norms of g_i^T a_i are cheaper from the factors' token Gram matrices
// (B T^2 (in + out) products) than from the product itself (B T in out); always at T = 1, where
// the norm is |g_i| |a_i|.
bool factored_norm_pays(int64_t tokens, int64_t in, int64_t out) {
  return tokens == 1 || tokens * tokens * (in + out) < in * out;
}

// Per-example gradients of a tap's parameters from its input and its output's gradient g, a
// weight left factored as `factors` says.
std::vector<Part> tap_parts(const Tap& tap, const torch::Tensor& g, Factors factors) {
  const int64_t batch = g.size(0);
  const auto batched = [batch](const torch::Tensor& parameter) {
    auto shape = parameter.sizes().vec();
    shape.insert(shape.begin(), batch);
    return shape;
  };
  std::vector<Part> parts;
  const auto put = [&parts](const torch::Tensor& parameter, torch::Tensor gradient) {
    if (parameter.defined()) parts.push_back({parameter, std::move(gradient), {}, {}});
  };
  // The weight g^T a from a (B x T x in) and g (B x T x out).
  const auto put_weight = [&](const torch::Tensor& a, const torch::Tensor& go) {
    Part part{tap.weight, {}, a, go};
    if (factors == Factors::kAlways ||
        (factors == Factors::kCheaper && factored_norm_pays(a.size(1), a.size(2), go.size(2)))) {
      parts.push_back(std::move(part));
    } else {
      put(tap.weight, part.materialise());
    }
  };
  switch (tap.kind) {
    case TapKind::kLinear: {
      const auto a = tap.input.reshape({batch, -1, tap.input.size(-1)});
      const auto go = g.reshape({batch, -1, g.size(-1)});
      put_weight(a, go);
      put(tap.bias, go.sum(1));
      break;
    }
    case TapKind::kConv: {
      const auto columns =
          nn::functional::unfold(tap.input, nn::functional::UnfoldFuncOptions(tap.kernel)
                                                .padding(tap.padding)
                                                .stride(tap.stride)
                                                .dilation(tap.dilation));  // B x C k k x L
      const auto go = g.reshape({batch, g.size(1), -1});                   // B x O x L
      put_weight(columns.transpose(1, 2), go.transpose(1, 2));
      put(tap.bias, go.sum(2));
      break;
    }
    case TapKind::kNorm: {
      const auto product = g * tap.input;
      if (tap.channel_axis_first) {  // GroupNorm: gamma, beta per channel of B x C x ...
        put(tap.weight, product.reshape({batch, g.size(1), -1}).sum(2));
        put(tap.bias, g.reshape({batch, g.size(1), -1}).sum(2));
        break;
      }
      // LayerNorm: gamma, beta over the last axes, summed over the tokens before them.
      const int64_t features = tap.weight.numel();
      put(tap.weight, product.reshape({batch, -1, features}).sum(1).view(batched(tap.weight)));
      put(tap.bias, g.reshape({batch, -1, features}).sum(1).view(batched(tap.bias)));
      break;
    }
    case TapKind::kEmbed: {
      put(tap.weight, g.unsqueeze(1));                          // positions: 1 x T x D
      put(tap.bias, g.select(1, 0).unsqueeze(1).unsqueeze(1));  // class token: 1 x 1 x D
      break;
    }
  }
  return parts;
}

// Every parameter's per-example gradient as one part, in model.parameters() order: one forward
// pass recording the taps, one backward pass of the summed loss to their outputs. A parameter
// with parts from more than one tap gets their materialised sum.
struct Recorded {
  std::vector<Part> parts;  // per parameter
  torch::Tensor logits;
};

Recorded record(models::BuiltinClassifier& model, const torch::Tensor& images,
                const torch::Tensor& labels, Factors factors) {
  check_per_example_model(model);
  Tape tape;
  const auto logits = tape.run(*model.net(), images);
  const auto loss = nn::functional::cross_entropy(
      logits, labels, nn::functional::CrossEntropyFuncOptions().reduction(torch::kSum));
  std::vector<torch::Tensor> outputs;
  for (const auto& tap : tape.taps()) outputs.push_back(tap.output);
  const auto output_gradients = torch::autograd::grad({loss}, outputs, {}, /*retain_graph=*/false,
                                                      /*create_graph=*/false,
                                                      /*allow_unused=*/true);
  std::unordered_map<const void*, std::vector<Part>> by_parameter;
  torch::NoGradGuard no_grad;
  for (size_t i = 0; i < outputs.size(); ++i) {
    auto g = output_gradients[i].defined() ? output_gradients[i] : torch::zeros_like(outputs[i]);
    for (auto& part : tap_parts(tape.taps()[i], g, factors)) {
      by_parameter[part.parameter.unsafeGetTensorImpl()].push_back(std::move(part));
    }
  }
  Recorded result;
  result.logits = logits.detach();
  for (const auto& item : model.net()->named_parameters()) {
    const auto found = by_parameter.find(item.value().unsafeGetTensorImpl());
    if (found == by_parameter.end()) {
      throw Error("per-example gradients: no layer computes parameter '" + item.key() + "'");
    }
    auto& parts = found->second;
    if (parts.size() == 1) {
      result.parts.push_back(std::move(parts.front()));
      continue;
    }
    // One example's gradient is the sum of the parts: its norm is not theirs.
    auto sum = parts.front().materialise();
    for (size_t k = 1; k < parts.size(); ++k) sum = sum + parts[k].materialise();
    result.parts.push_back(Part{parts.front().parameter, sum, {}, {}});
  }
  return result;
}

}  // namespace

void check_per_example_model(const models::BuiltinClassifier& model) {
  if (model.config().batch_norm) {
    throw Error(
        "DP-SGD: the model has batch norm, which mixes the examples of a batch so no example's "
        "gradient can be clipped alone; train it with --group-norm instead of --batch-norm");
  }
}

PerExampleGradients per_example_gradients(models::BuiltinClassifier& model,
                                          const torch::Tensor& images,
                                          const torch::Tensor& labels) {
  auto recorded = record(model, images, labels, Factors::kNever);
  PerExampleGradients result;
  result.logits = recorded.logits;
  for (const auto& part : recorded.parts) result.gradients.push_back(part.per_example);
  return result;
}

torch::Tensor clip_factors(const torch::Tensor& norms, double clip_norm) {
  return (clip_norm / (norms + 1e-6)).clamp_max(1.0);
}

ClippedGradients clip_and_sum(const std::vector<torch::Tensor>& per_example, double clip_norm) {
  ClippedGradients out;
  if (per_example.empty()) return out;
  const int64_t batch = per_example.front().size(0);
  auto squared = torch::zeros({batch}, per_example.front().options());
  for (const auto& g : per_example) squared += g.reshape({batch, -1}).pow(2).sum(1);
  out.norms = squared.sqrt();
  const auto scale = clip_factors(out.norms, clip_norm);
  for (const auto& g : per_example) out.sum.push_back(torch::tensordot(scale, g, {0}, {0}));
  return out;
}

ClippedGradients clipped_gradient_sum(models::BuiltinClassifier& model, const torch::Tensor& images,
                                      const torch::Tensor& labels, double clip_norm,
                                      Factors factors) {
  auto recorded = record(model, images, labels, factors);
  torch::NoGradGuard no_grad;
  auto squared = torch::zeros({images.size(0)}, recorded.logits.options());
  for (const auto& part : recorded.parts) squared += part.squared_norms();
  ClippedGradients result;
  result.norms = squared.sqrt();
  result.logits = recorded.logits;
  const auto scale = clip_factors(result.norms, clip_norm);
  for (const auto& part : recorded.parts) result.sum.push_back(part.weighted_sum(scale));
  return result;
}

PerExampleGradients per_example_gradients_by_loop(models::BuiltinClassifier& model,
                                                  const torch::Tensor& images,
                                                  const torch::Tensor& labels) {
  check_per_example_model(model);
  const auto parameters = model.parameters();
  std::vector<std::vector<torch::Tensor>> per_parameter(parameters.size());
  std::vector<torch::Tensor> logits;
  for (int64_t i = 0; i < images.size(0); ++i) {
    const auto out = model.forward(images.slice(0, i, i + 1));
    const auto loss = nn::functional::cross_entropy(out, labels.slice(0, i, i + 1));
    const auto grads = torch::autograd::grad({loss}, parameters, {}, false, false, true);
    for (size_t p = 0; p < parameters.size(); ++p) {
      per_parameter[p].push_back(grads[p].defined() ? grads[p] : torch::zeros_like(parameters[p]));
    }
    logits.push_back(out.detach());
  }
  PerExampleGradients result;
  for (auto& gradients : per_parameter) result.gradients.push_back(torch::stack(gradients));
  result.logits = torch::cat(logits);
  return result;
}

}  // namespace privaudit::train
