#include "privaudit/models/attention.h"

#include <ATen/Parallel.h>

#include "privaudit/models/attention_kernels.h"

namespace privaudit::models {

namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// Matrices per parallel chunk under --threads > 1 (each is a few microseconds of work).
constexpr int64_t kGrain = 16;

bool fused_applies(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v) {
  // Contiguous inputs only: they are saved as they are, so that a double backward reaches them.
  for (const auto* t : {&q, &k, &v}) {
    if (!t->device().is_cpu() || t->scalar_type() != torch::kFloat || t->dim() != 3 ||
        !t->is_contiguous())
      return false;
  }
  return q.sizes() == k.sizes() && q.sizes() == v.sizes() && q.size(1) > 0 && q.size(2) > 0;
}

class FusedAttention : public torch::autograd::Function<FusedAttention> {
 public:
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& q, const torch::Tensor& k,
                               const torch::Tensor& v, double scale) {
    const int64_t n = q.size(0), t = q.size(1), d = q.size(2);
    auto out = torch::empty_like(q);
    auto probs = torch::empty({n, t, t}, q.options());
    const float* qp = q.data_ptr<float>();
    const float* kp = k.data_ptr<float>();
    const float* vp = v.data_ptr<float>();
    float* op = out.data_ptr<float>();
    float* pp = probs.data_ptr<float>();
    at::parallel_for(0, n, kGrain, [&](int64_t begin, int64_t end) {
      kernels::attention_forward(qp, kp, vp, op, pp, begin, end, t, d, static_cast<float>(scale));
    });
    ctx->save_for_backward({q, k, v});
    ctx->saved_data["probs"] = probs;
    ctx->saved_data["scale"] = scale;
    return out;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    const auto saved = ctx->get_saved_variables();
    const auto& q = saved[0];
    const auto& k = saved[1];
    const auto& v = saved[2];
    const double scale = ctx->saved_data["scale"].toDouble();
    const auto grad = grad_outputs[0].contiguous();
    if (torch::GradMode::is_enabled()) {
      // create_graph: the same gradients in differentiable ops of the saved inputs.
      // softmax's own backward op (one pass, and differentiable) rather than its formula.
      const auto p = torch::softmax(torch::bmm(q, k.transpose(1, 2)) * scale, -1);
      const auto dp = torch::bmm(grad, v.transpose(1, 2));
      const auto ds = torch::_softmax_backward_data(dp, p, -1, p.scalar_type()) * scale;
      return {torch::bmm(ds, k), torch::bmm(ds.transpose(1, 2), q),
              torch::bmm(p.transpose(1, 2), grad), torch::Tensor()};
    }
    const auto probs = ctx->saved_data["probs"].toTensor();
    const int64_t n = q.size(0), t = q.size(1), d = q.size(2);
    auto dq = torch::empty_like(q), dk = torch::empty_like(k), dv = torch::empty_like(v);
    const float* qp = q.data_ptr<float>();
    const float* kp = k.data_ptr<float>();
    const float* vp = v.data_ptr<float>();
    const float* pp = probs.data_ptr<float>();
    const float* gp = grad.data_ptr<float>();
    float* dqp = dq.data_ptr<float>();
    float* dkp = dk.data_ptr<float>();
    float* dvp = dv.data_ptr<float>();
    at::parallel_for(0, n, kGrain, [&](int64_t begin, int64_t end) {
      kernels::attention_backward(qp, kp, vp, pp, gp, dqp, dkp, dvp, begin, end, t, d,
                                  static_cast<float>(scale));
    });
    return {dq, dk, dv, torch::Tensor()};
  }
};

}  // namespace

torch::Tensor scaled_dot_attention_reference(const torch::Tensor& q, const torch::Tensor& k,
                                             const torch::Tensor& v, double scale) {
  return torch::bmm(torch::softmax(torch::bmm(q, k.transpose(1, 2)) * scale, -1), v);
}

torch::Tensor scaled_dot_attention(const torch::Tensor& q, const torch::Tensor& k,
                                   const torch::Tensor& v, double scale) {
  if (!fused_applies(q, k, v)) return scaled_dot_attention_reference(q, k, v, scale);
  return FusedAttention::apply(q, k, v, scale);
}

}  // namespace privaudit::models
