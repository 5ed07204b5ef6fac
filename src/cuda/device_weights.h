// Every weight of a model on the device, as stored in the checkpoint (FP8/BF16 as they are, no
// dequantized copies), in one allocation uploaded through pinned staging buffers; the small
// float vectors (norms, router bias) decoded to float32. Views for the kernels per layer.
#pragma once

#include <algorithm>
#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include "cpu/linear.h"
#include "cuda/device_memory.h"
#include "kernels/cuda_check.h"
#include "kernels/launch.h"
#include "model/weights.h"

namespace r1::cuda {

// A linear layer on the device: its view (for kernels taking it by value) and the same view
// in device memory (for the grouped kernel, which reads an array of them).
struct DeviceLinear {
  WeightView view;
  const WeightView* device_view = nullptr;
};

struct DeviceMlp {
  DeviceLinear gate, up, down;
};

struct DeviceExperts {  // expert 0's view; device_view starts [n_routed_experts] contiguous views
  DeviceLinear gate, up, down;
  std::vector<WeightView> views[3];  // every expert's gate, up, down views on the host (for cuBLASLt)
};

struct DeviceLayer {
  float *input_norm = nullptr, *post_attention_norm = nullptr, *q_a_norm = nullptr, *kv_a_norm = nullptr;
  float* router_bias = nullptr;
  DeviceLinear q_a, q_b, q_proj, kv_a, kv_b, o_proj, router;
  DeviceMlp mlp, shared_experts;
  DeviceExperts experts;
};

inline WeightType weight_type(DType dtype) {
  switch (dtype) {
    case DType::F32: return WeightType::f32;
    case DType::F16: return WeightType::f16;
    case DType::BF16: return WeightType::bf16;
    case DType::F8_E4M3: return WeightType::e4m3;
    default: fail("internal: dtype {} is not a weight type", dtype_name(dtype));
  }
}

// Places every weight of the model in one device allocation, tensors as stored in the
// checkpoint, and the small float vectors (norms, router bias) decoded to float32.
class DeviceWeights {
 public:
  explicit DeviceWeights(const ModelWeights& w) {
    plan(w);
    arena_ = static_cast<char*>(device_alloc(arena_bytes_, "model weights"));
    Uploader uploader;
    size_t done = 0, last_percent = 0;
    for (const auto& [tensor, offset] : tensor_offsets_) {
      uploader.upload(arena_ + offset, tensor->data, tensor->bytes);
      done += tensor->bytes;
      const size_t percent = done * 100 / std::max<size_t>(tensor_bytes_, 1);
      if (percent >= last_percent + 10 && tensor_bytes_ > (size_t(256) << 20)) {
        std::fprintf(stderr, "\rloading weights to the GPU: %3zu%%", percent);
        last_percent = percent;
      }
    }
    if (last_percent > 0) std::fprintf(stderr, "\n");
    for (auto& [name, values] : float_vectors_) uploader.upload(arena_ + vector_offsets_[name], values.data(), values.size() * 4);
    uploader.finish();
    bind(w);
  }
  ~DeviceWeights() { cudaFree(arena_); }

  std::vector<DeviceLayer> layers;
  void* embed = nullptr;
  WeightType embed_type = WeightType::f32;
  float* final_norm = nullptr;
  DeviceLinear lm_head;
  size_t bytes() const { return arena_bytes_; }

 private:
  static size_t align(size_t n) { return (n + 255) / 256 * 256; }

  void add_tensor(const TensorView* t) {
    if (!t || tensor_offsets_.count(t)) return;
    tensor_offsets_[t] = arena_bytes_;
    arena_bytes_ += align(t->bytes);
    tensor_bytes_ += t->bytes;
  }
  void add_vector(const TensorView* t) {
    if (!t) return;
    std::vector<float> values(size_t(t->numel()));
    decode_floats(*t, 0, int(values.size()), values.data());
    vector_offsets_[t->name] = arena_bytes_;
    arena_bytes_ += align(values.size() * 4);
    float_vectors_[t->name] = std::move(values);
  }
  void add_linear(const Linear& l) {
    if (!l.weight) return;
    add_tensor(l.weight);
    add_tensor(l.scale_inv);
    ++linear_count_;
  }
  void add_mlp(const MlpWeights& m) {
    add_linear(m.gate);
    add_linear(m.up);
    add_linear(m.down);
  }

  void plan(const ModelWeights& w) {
    add_tensor(w.embed_tokens);
    add_vector(w.norm);
    add_linear(w.lm_head);
    for (const LayerWeights& l : w.layers) {
      for (const TensorView* v : {l.input_layernorm, l.post_attention_layernorm, l.q_a_layernorm,
                                  l.kv_a_layernorm, l.router_bias})
        add_vector(v);
      for (const Linear* lin : {&l.q_a, &l.q_b, &l.q_proj, &l.kv_a, &l.kv_b, &l.o_proj, &l.router}) add_linear(*lin);
      add_mlp(l.mlp);
      add_mlp(l.shared_experts);
      for (const MlpWeights& e : l.experts) add_mlp(e);
    }
    views_offset_ = arena_bytes_;
    arena_bytes_ += align(linear_count_ * sizeof(WeightView));
  }

  float* vector(const TensorView* t) {
    return t ? reinterpret_cast<float*>(arena_ + vector_offsets_.at(t->name)) : nullptr;
  }

  // Fills the view and stores it in the next slot of the device view table.
  DeviceLinear linear(const Linear& l) {
    DeviceLinear d;
    if (!l.weight) return d;
    d.view.data = arena_ + tensor_offsets_.at(l.weight);
    d.view.scale_inv = l.scale_inv ? reinterpret_cast<const float*>(arena_ + tensor_offsets_.at(l.scale_inv)) : nullptr;
    d.view.type = weight_type(l.weight->dtype);
    d.view.out = l.out;
    d.view.in = l.in;
    d.view.block = l.block > 0 ? l.block : 128;
    WeightView* slot = reinterpret_cast<WeightView*>(arena_ + views_offset_) + views_used_++;
    CUDA_CHECK(cudaMemcpy(slot, &d.view, sizeof d.view, cudaMemcpyHostToDevice));
    d.device_view = slot;
    return d;
  }
  DeviceMlp mlp(const MlpWeights& m) { return {linear(m.gate), linear(m.up), linear(m.down)}; }

  void bind(const ModelWeights& w) {
    embed = arena_ + tensor_offsets_.at(w.embed_tokens);
    embed_type = weight_type(w.embed_tokens->dtype);
    final_norm = vector(w.norm);
    lm_head = linear(w.lm_head);
    for (const LayerWeights& l : w.layers) {
      DeviceLayer d;
      d.input_norm = vector(l.input_layernorm);
      d.post_attention_norm = vector(l.post_attention_layernorm);
      d.q_a_norm = vector(l.q_a_layernorm);
      d.kv_a_norm = vector(l.kv_a_layernorm);
      d.router_bias = vector(l.router_bias);
      d.q_a = linear(l.q_a);
      d.q_b = linear(l.q_b);
      d.q_proj = linear(l.q_proj);
      d.kv_a = linear(l.kv_a);
      d.kv_b = linear(l.kv_b);
      d.o_proj = linear(l.o_proj);
      d.router = linear(l.router);
      d.mlp = mlp(l.mlp);
      d.shared_experts = mlp(l.shared_experts);
      // Experts' views go into the table one projection at a time, so each projection's
      // views are contiguous: the grouped kernel indexes them by expert.
      DeviceLinear first[3];
      for (int proj = 0; proj < 3; ++proj)
        for (size_t e = 0; e < l.experts.size(); ++e) {
          const Linear& lin = proj == 0 ? l.experts[e].gate : proj == 1 ? l.experts[e].up : l.experts[e].down;
          DeviceLinear dl = linear(lin);
          if (e == 0) first[proj] = dl;
          d.experts.views[proj].push_back(dl.view);
        }
      d.experts.gate = first[0];
      d.experts.up = first[1];
      d.experts.down = first[2];
      layers.push_back(d);
    }
  }

  char* arena_ = nullptr;
  size_t arena_bytes_ = 0, tensor_bytes_ = 0, views_offset_ = 0, linear_count_ = 0, views_used_ = 0;
  std::map<const TensorView*, size_t> tensor_offsets_;
  std::map<std::string, size_t> vector_offsets_;
  std::map<std::string, std::vector<float>> float_vectors_;
};
}  // namespace r1::cuda
